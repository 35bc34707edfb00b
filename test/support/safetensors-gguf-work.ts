// Work the safetensors/GGUF tests run in a child process, so that its memory
// is measured from outside (process-memory.ts's runInChild): the seeded fuzz
// of both detectors — mutated files (bit flips, truncations, huge length and
// count fields, …) must resolve or throw InvalidModelFileError, fast, and keep
// the safety contract — and a GGUF header that claims 2^33 strings.
import assert from 'node:assert/strict';
import { bufferSource } from '../../src/formats/sources.ts';
import { detectGguf } from '../../src/formats/gguf.ts';
import { detectSafetensors } from '../../src/formats/safetensors.ts';
import { InvalidModelFileError, type FileFormat, type FileSource } from '../../src/formats/types.ts';
import { buildGguf, buildSafetensors, concat, GGML, patternBytes, prng, rawSafetensors, validGguf, validSafetensors, type Built } from './fixtures-safetensors-gguf.ts';
import { virtualSource } from './fixtures-pickle-zip.ts';
import { assertSafetyContract } from './safety-contract.ts';

const HUGE = [2n ** 64n - 1n, 2n ** 63n, 2n ** 63n - 1n, 2n ** 62n, 2n ** 53n + 1n, 2n ** 32n, 2n ** 32n - 1n, 2n ** 31n, 100_000_000n, 100_000_001n, 0n, 1n, 7n, 255n, 65_536n];

export function mutate(base: Built, rnd: () => number, lengthFieldsLE: boolean): Uint8Array {
  const pick = <T,>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const b = base.bytes.slice();
  const kind = Math.floor(rnd() * 8);
  const dv = new DataView(b.buffer);
  switch (kind) {
    case 0: { // bit flips
      const n = 1 + Math.floor(rnd() * 8);
      for (let i = 0; i < n && b.length; i++) b[Math.floor(rnd() * b.length)]! ^= 1 << Math.floor(rnd() * 8);
      return b;
    }
    case 1: // truncation
      return b.subarray(0, Math.floor(rnd() * b.length));
    case 2: { // u64 length/count fields set to huge or off-by-some values
      const n = 1 + Math.floor(rnd() * 2);
      for (let i = 0; i < n; i++) {
        const at = base.u64Fields.length ? pick(base.u64Fields) : 0;
        if (at + 8 > b.length) continue;
        const old = dv.getBigUint64(at, lengthFieldsLE);
        const v = rnd() < 0.6 ? pick(HUGE) : old + BigInt(Math.floor(rnd() * 64) - 32);
        dv.setBigUint64(at, v < 0n ? 0n : v & (2n ** 64n - 1n), lengthFieldsLE);
      }
      return b;
    }
    case 3: { // u32 type/ndims fields
      const at = base.u32Fields.length ? pick(base.u32Fields) : 4;
      if (at + 4 <= b.length) dv.setUint32(at, pick([0, 1, 4, 8, 9, 12, 13, 39, 40, 255, 0xffffffff, Math.floor(rnd() * 64)]), lengthFieldsLE);
      return b;
    }
    case 4: { // random overwrite of a region
      const at = Math.floor(rnd() * b.length);
      const n = Math.min(b.length - at, 1 + Math.floor(rnd() * 32));
      b.set(patternBytes(n, Math.floor(rnd() * 1e9)), at);
      return b;
    }
    case 5: { // splice: duplicate or delete a region
      const at = Math.floor(rnd() * b.length);
      const n = Math.floor(rnd() * 64);
      return rnd() < 0.5 ? concat([b.subarray(0, at), b.subarray(at, at + n), b.subarray(at)]) : concat([b.subarray(0, at), b.subarray(at + n)]);
    }
    case 6: { // printable-ASCII swaps (JSON-level mutations for safetensors)
      const n = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < n && b.length; i++) b[Math.floor(rnd() * b.length)] = pick([0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x30, 0x31, 0x39, 0x2d, 0x2e, 0x65, 0x5c, 0x20, 0x00, 0xff]);
      return b;
    }
    default: { // random bytes, sometimes behind the real prefix
      const n = Math.floor(rnd() * 600);
      const keep = rnd() < 0.5 ? Math.floor(rnd() * Math.min(64, b.length)) : 0;
      return concat([b.subarray(0, keep), patternBytes(n, Math.floor(rnd() * 1e9))]);
    }
  }
}

async function fuzz(name: string, detector: (f: FileSource) => Promise<FileFormat | undefined>, corpus: Array<{ built: Built; le: boolean }>, paths: string[], seed: number, count: number): Promise<FuzzCounts> {
  const rnd = prng(seed ^ name.length * 7919);
  const stats = { resolved: 0, claimed: 0, rejected: 0, maxMs: 0 };
  for (let i = 0; i < count; i++) {
    const base = corpus[i % corpus.length]!;
    const input = mutate(base.built, rnd, base.le);
    const path = paths[i % paths.length]!;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: call ${i} timed out`)), 2000);
    });
    try {
      const r = await Promise.race([detector(bufferSource(path, input)), timeout]);
      stats.resolved++;
      if (r !== undefined) {
        stats.claimed++;
        // these walks have no budget that stops early (every limit rejects the file): never cut short
        assert.equal(assertSafetyContract(r, `${name} #${i}`), false);
      }
    } catch (e) {
      if (!(e instanceof InvalidModelFileError)) {
        const hex = Buffer.from(input.subarray(0, 256)).toString('hex');
        assert.fail(`${name} #${i} (seed ${seed}, path ${path}, ${input.byteLength} bytes, head ${hex}) threw ${e instanceof Error ? e.stack : String(e)}`);
      }
      stats.rejected++;
    } finally {
      clearTimeout(timer);
    }
    stats.maxMs = Math.max(stats.maxMs, performance.now() - started);
  }
  assert.ok(stats.maxMs < 2000, `${name}: slowest call ${stats.maxMs} ms`);
  return stats;
}

/** the safetensors header-length field plus every JSON integer's position is not a u64, so aim at offset 0 */
function stBuilt(x: { bytes: Uint8Array }): Built {
  return { bytes: x.bytes, u64Fields: [0], u32Fields: [], dataStart: 0 };
}

export interface FuzzCounts {
  resolved: number;
  claimed: number;
  rejected: number;
  maxMs: number;
}

/** `count` mutated safetensors or GGUF files (seeded) through their detector; throws at the first that misbehaves. */
export async function fuzzSafetensorsGguf(format: 'safetensors' | 'gguf', seed: number, count: number): Promise<FuzzCounts> {
  if (format === 'safetensors') {
    const corpus = [
      stBuilt(validSafetensors()),
      stBuilt(buildSafetensors([{ name: 'a', dtype: 'F4', shape: [4] }, { name: 'b', dtype: 'BF16', shape: [3, 3] }], { metadata: { k: 'v' }, leading: ' ' })),
      stBuilt(rawSafetensors('{"w":["F32",[2],[0,8]],"e":{"dtype":"U8","shape":[0],"data_offsets":[8,8],"x":[{"y":[1e5,-2,"\\u00e9\\ud83d\\ude00"]}]}}', 8)),
      stBuilt(rawSafetensors('{}', 0)),
    ].map((built) => ({ built, le: true }));
    return fuzz('safetensors', detectSafetensors, corpus, ['m.safetensors', 'blob', 'x.SAFETENSORS', 'model.gguf'], seed, count);
  }
  const corpus = [
    { built: validGguf(), le: true },
    { built: validGguf({ version: 2 }), le: true },
    { built: validGguf({ bigEndian: true }), le: false },
    { built: buildGguf({ kv: [['general.alignment', { type: 'u32', value: 8 }], ['a', { type: 'array', item: 'array', value: [{ type: 'array', item: 'string', value: ['x', 'y'] }] }]], alignment: 8, tensors: [{ name: 'w', dims: [8, 2], type: 0 }, { name: 'q', dims: [32], type: GGML.Q8_0[0] }, { name: 'u', dims: [3], type: 77, bytes: 5 }] }), le: true },
  ];
  return fuzz('gguf', detectGguf, corpus, ['m.gguf', 'blob', 'model.safetensors'], seed, count);
}

/** detectGguf on a 100 GiB (virtual) file whose string array claims 2^33 entries: its error and how long it took. */
export async function ggufHugeStringArray(): Promise<{ error: string; ms: number }> {
  const b = buildGguf({ kv: [['tokenizer.ggml.tokens', { type: 'array', item: 'string', value: ['a'] }]] });
  const head = b.bytes.slice(0, b.u64Fields[3]! + 8);
  new DataView(head.buffer).setBigUint64(b.u64Fields[3]!, 2n ** 33n, true);
  const started = performance.now();
  try {
    await detectGguf(virtualSource('m.gguf', head, 100 * 2 ** 30).source);
  } catch (e) {
    if (!(e instanceof InvalidModelFileError)) throw e;
    return { error: e.message, ms: performance.now() - started };
  }
  throw new Error('detectGguf accepted a 2^33-entry string array');
}
