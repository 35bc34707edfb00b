// The pickle, PyTorch, NumPy, Keras/HDF5, TorchServe detectors and the zip
// reader fuzzed: mutated valid fixtures and random bytes; every call resolves
// or rejects with InvalidModelFileError, quickly, and keeps the safety
// contract. test/formats-pickle-zip.test.ts runs each target in a child
// process (process-memory.ts's runInChild) to measure its memory from outside.
import assert from 'node:assert/strict';
import { bufferSource } from '../../src/formats/sources.ts';
import { detectH5, detectKeras } from '../../src/formats/keras.ts';
import { detectNumpy } from '../../src/formats/numpy.ts';
import { detectPickle, detectPytorch } from '../../src/formats/pytorch.ts';
import { detectTorchserve } from '../../src/formats/torchserve.ts';
import { InvalidModelFileError, type Detector, type FileFormat } from '../../src/formats/types.ts';
import { readZipDirectory, readZipMember, readZipMemberPrefix } from '../../src/formats/zip.ts';
import {
  concatBytes, craftedJoblib, float32Bytes, h5File, joblibFile, kerasFile, makeNpy, makeZip, marFile, MALICIOUS, numpyArrayPickle,
  pytorchLegacy, pytorchZip, stateDictPickle, zlibCompress, STATE_DICT,
} from './fixtures-pickle-zip.ts';
import { assertSafetyContract } from './safety-contract.ts';

const enc = new TextEncoder();

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function mutate(base: Uint8Array, r: () => number): Uint8Array {
  const kind = Math.floor(r() * 6);
  const b = base.slice();
  const at = Math.floor(r() * Math.max(1, b.length));
  switch (kind) {
    case 0: { // byte flips
      const n = 1 + Math.floor(r() * 4);
      for (let i = 0; i < n; i++) {
        const p = Math.floor(r() * b.length);
        b[p] = b[p]! ^ (1 << Math.floor(r() * 8));
      }
      return b;
    }
    case 1: // truncation
      return b.subarray(0, at);
    case 2: { // length-field mutation: a 4-byte value set to something extreme
      const vals = [0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff, b.length, b.length + 1, Math.floor(r() * 0x100000000)];
      const v = vals[Math.floor(r() * vals.length)]!;
      const p = Math.min(at, Math.max(0, b.length - 4));
      if (b.length >= 4) new DataView(b.buffer, b.byteOffset).setUint32(p, v >>> 0, true);
      return b;
    }
    case 3: { // random bytes spliced in
      const n = 1 + Math.floor(r() * 16);
      for (let i = 0; i < n && at + i < b.length; i++) b[at + i] = Math.floor(r() * 256);
      return b;
    }
    case 4: { // duplicate a slice (repeated structures, absurd counts)
      const len = Math.floor(r() * 64);
      return concatBytes(b.subarray(0, at), b.subarray(at, at + len), b.subarray(at));
    }
    default: { // random bytes
      const n = Math.floor(r() * 256);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
      if (r() < 0.5 && base.length >= 4) out.set(base.subarray(0, Math.min(4, n))); // keep a magic
      return out;
    }
  }
}

interface FuzzTarget {
  name: string;
  run: (path: string, bytes: Uint8Array) => Promise<unknown>;
  fixtures: Uint8Array[];
  paths: string[];
}

const zipRun = async (path: string, bytes: Uint8Array): Promise<unknown> => {
  const f = bufferSource(path, bytes);
  const dir = await readZipDirectory(f);
  for (const e of dir.entries.slice(0, 8)) {
    await readZipMember(f, dir, e);
    await readZipMemberPrefix(f, dir, e, 64);
  }
  return dir;
};
const det = (d: Detector) => (path: string, bytes: Uint8Array) => d(bufferSource(path, bytes));

const targets = (): FuzzTarget[] => [
  { name: 'zip', run: zipRun, fixtures: [makeZip([{ name: 'a', data: enc.encode('hello') }, { name: 'b', data: enc.encode('x'.repeat(300)), method: 8 }]), makeZip([{ name: 'a', data: enc.encode('z') }], { zip64: true })], paths: ['x.zip'] },
  {
    name: 'pickle',
    run: det(detectPickle),
    fixtures: [
      stateDictPickle(STATE_DICT), numpyArrayPickle(), joblibFile({ sklearn: true }), joblibFile({ objectArray: true }), ...Object.values(MALICIOUS).slice(0, 8).map((m) => m.bytes),
      enc.encode("(dp0\nS'a'\np1\nI1\ns."), zlibCompress(joblibFile()),
      ...Object.values(craftedJoblib()).map((c) => c.bytes), // including walks that stop early (unknown)
    ],
    paths: ['m.pkl', 'm.joblib', 'blob'],
  },
  {
    name: 'pytorch',
    run: det(detectPytorch),
    // the last has more .pkl members than are walked (unknown)
    fixtures: [pytorchZip(), pytorchZip({ zip64: true }), pytorchLegacy(), pytorchZip({ extra: Array.from({ length: 64 }, (_, i) => ({ name: `archive/p${i}.pkl`, data: Uint8Array.from([0x4e, 0x2e]) })) })],
    paths: ['model.pt', 'model.bin', 'blob'],
  },
  {
    name: 'numpy',
    run: det(detectNumpy),
    fixtures: [makeNpy('<f4', [2, 3], float32Bytes(6)), makeNpy('|O', [1], MALICIOUS['INST opcode']!.bytes, { version: 2 }), makeZip([{ name: 'a.npy', data: makeNpy('<f4', [3], float32Bytes(3)) }, { name: 'b.npy', data: makeNpy('<i8', [2], new Uint8Array(16)), method: 8 }])],
    paths: ['a.npy', 'a.npz', 'blob'],
  },
  {
    name: 'keras',
    run: async (p, b) => {
      const found = [await detectKeras(bufferSource(p, b)), await detectH5(bufferSource(p, b))].filter((f) => f !== undefined);
      return found.length > 0 ? found : undefined;
    },
    fixtures: [kerasFile({ lambda: true }), kerasFile(), h5File({ size: 1200, text: '"class_name": "Lambda"' })],
    paths: ['model.keras', 'model.h5', 'blob'],
  },
  { name: 'torchserve', run: det(detectTorchserve), fixtures: [marFile()], paths: ['x.mar', 'blob'] },
];

/** The fuzz targets' names. */
export const FUZZ_TARGETS = ['zip', 'pickle', 'pytorch', 'numpy', 'keras', 'torchserve'];
// targets with a fixture whose check is cut short: that path must come up while fuzzing
const CUT_SHORT = new Set(['pickle', 'pytorch', 'keras']);

export interface FuzzCounts {
  resolved: number;
  found: number;
  cutShort: number;
  rejected: number;
  slowestMs: number;
}

/** Runs `count` mutated inputs through one target; throws at the first that misbehaves. */
export async function fuzzPickleZip(name: string, count: number): Promise<FuzzCounts> {
  const t = targets().find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target ${name}`);
  const r = rng(0x5eed + t.name.length * 7919);
  const counts = { resolved: 0, found: 0, cutShort: 0, rejected: 0, slowestMs: 0 };
  for (let i = 0; i < count; i++) {
    const base = t.fixtures[i % t.fixtures.length]!;
    const bytes = mutate(base, r);
    const path: string = t.paths[i % t.paths.length]!;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), 2000); });
    try {
      const found = await Promise.race([t.run(path, bytes), timeout]);
      if (found !== undefined) counts.found++;
      // every detector result keeps the safety contract: a check cut short is never `safe`
      for (const f of [found].flat()) if (f && typeof f === 'object' && 'safety' in f && assertSafetyContract(f as FileFormat, `${t.name} #${i} (${path})`)) counts.cutShort++;
      counts.resolved++;
    } catch (err) {
      if (!(err instanceof InvalidModelFileError)) {
        assert.fail(`${t.name} #${i} (${path}, ${bytes.length} bytes) threw ${(err as Error)?.stack ?? String(err)}\ninput: ${Buffer.from(bytes).toString('base64')}`);
      }
      counts.rejected++;
    } finally {
      clearTimeout(timer);
    }
    counts.slowestMs = Math.max(counts.slowestMs, performance.now() - started);
  }
  assert.ok(counts.slowestMs < 2000, `slowest call ${counts.slowestMs} ms`);
  assert.equal(counts.resolved + counts.rejected, count);
  if (CUT_SHORT.has(t.name)) assert.ok(counts.cutShort > 0, `${t.name}: no input was cut short`);
  return counts;
}
