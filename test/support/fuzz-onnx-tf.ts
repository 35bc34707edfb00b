// The ONNX / TFLite / SavedModel / TF.js detectors fuzzed: mutated fixtures
// (bit flips, insertions, truncations, varint and u32 length fields, …) must
// resolve or throw InvalidModelFileError, fast, and keep the safety contract.
// test/formats-onnx-tf.test.ts runs this in a child process
// (process-memory.ts's runInChild) to measure its memory from outside.
import assert from 'node:assert/strict';
import { bufferSource } from '../../src/formats/sources.ts';
import { detectOnnx } from '../../src/formats/onnx.ts';
import { detectSavedModelPb, detectTfjs } from '../../src/formats/tensorflow.ts';
import { detectTflite } from '../../src/formats/tflite.ts';
import { InvalidModelFileError, type Detector } from '../../src/formats/types.ts';
import { PbWriter, onnxModel, onnxNestedIf, savedModel, tfliteModel, tfjsModelJson } from './fixtures-onnx-tf.ts';
import { prng } from './prng.ts';
import { assertSafetyContract } from './safety-contract.ts';

export interface FuzzCounts {
  results: number;
  cutShort: number;
  undefined: number;
  invalid: number;
  ms: number;
  slowestMs: number;
}

const INTERESTING_VARINTS = [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2n ** 63n, 2n ** 64n - 1n];
const INTERESTING_U32 = [0, 1, 4, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff];

function mutate(rnd: () => number, src: Uint8Array, flat: boolean): Uint8Array {
  const int = (n: number): number => Math.floor(rnd() * n);
  let b = src.slice();
  const rounds = 1 + int(3);
  for (let k = 0; k < rounds; k++) {
    const at = int(b.length + 1);
    switch (int(8)) {
      case 0: // bit flip
        if (b.length) b[at % b.length]! ^= 1 << int(8);
        break;
      case 1: // random byte
        if (b.length) b[at % b.length] = int(256);
        break;
      case 2: // interesting byte
        if (b.length) b[at % b.length] = [0, 0x7f, 0x80, 0xff, 1, 0x0a, 0x12][int(7)]!;
        break;
      case 3: {
        // insertion
        const ins = Uint8Array.from({ length: 1 + int(8) }, () => int(256));
        b = Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
        break;
      }
      case 4: // deletion
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + int(16))]);
        break;
      case 5: // truncation
        b = b.slice(0, at);
        break;
      case 6: {
        // length-field mutation: a varint (protobuf) or a u32 offset/length (flatbuffer)
        if (flat) {
          if (b.length >= 4) {
            const p = int(b.length >> 2) * 4;
            const v = rnd() < 0.5 ? INTERESTING_U32[int(INTERESTING_U32.length)]! : int(b.length * 2);
            new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(p, v >>> 0, true);
          }
        } else {
          const v = INTERESTING_VARINTS[int(INTERESTING_VARINTS.length)]!;
          const enc = new PbWriter().varint(v).finish();
          const cut = 1 + int(3);
          b = Uint8Array.from([...b.subarray(0, at), ...enc, ...b.subarray(at + cut)]);
        }
        break;
      }
      default: {
        // duplicate a chunk somewhere else
        const from = int(b.length + 1);
        const chunk = b.slice(from, from + 1 + int(64));
        b = Uint8Array.from([...b.subarray(0, at), ...chunk, ...b.subarray(at)]);
      }
    }
  }
  return b;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs PER_DETECTOR mutated inputs through each detector: each resolves or
 * throws InvalidModelFileError, within 2 s, and keeps the safety contract.
 * Throws at the first that does not; the counts per detector.
 */
export async function fuzzOnnxTf(PER_DETECTOR: number): Promise<Record<string, FuzzCounts>> {
  const cases: Array<{ name: string; detect: Detector; fixtures: Uint8Array[]; paths: string[]; flat: boolean; prefix?: Uint8Array }> = [
    // each with a fixture whose walk is cut short (too deep, too many subgraphs), so that path is fuzzed too
    { name: 'onnx', detect: detectOnnx, fixtures: [onnxModel(), onnxNestedIf(34)], paths: ['m.onnx', 'm.bin'], flat: false },
    { name: 'tflite', detect: detectTflite, fixtures: [tfliteModel(), tfliteModel({ extraSubgraphs: 64 })], paths: ['m.tflite', 'm.bin'], flat: true, prefix: Uint8Array.from([16, 0, 0, 0, 0x54, 0x46, 0x4c, 0x33]) },
    { name: 'savedmodel', detect: detectSavedModelPb, fixtures: [savedModel(), savedModel({ pyFunc: true })], paths: ['saved_model.pb', 'graph.pb'], flat: false },
    { name: 'tfjs', detect: detectTfjs, fixtures: [tfjsModelJson()], paths: ['model.json', 'x.json', 'blob'], flat: false, prefix: new TextEncoder().encode('{"weightsManifest":') },
  ];
  const summary: Record<string, FuzzCounts> = {};
  for (const c of cases) {
    const rnd = prng(0xca1 + c.name.length * 7919);
    const s = (summary[c.name] = { results: 0, cutShort: 0, undefined: 0, invalid: 0, ms: 0, slowestMs: 0 });
    const caseStarted = performance.now();
    // also run each mutation against the other formats' fixtures now and then
    const others = [onnxModel(), tfliteModel(), savedModel(), tfjsModelJson()];
    for (let i = 0; i < PER_DETECTOR; i++) {
      let input: Uint8Array;
      const roll = rnd();
      if (roll < 0.08) input = Uint8Array.from({ length: Math.floor(rnd() * 1024) }, () => Math.floor(rnd() * 256));
      else if (roll < 0.12 && c.prefix) input = Uint8Array.from([...c.prefix, ...Array.from({ length: Math.floor(rnd() * 512) }, () => Math.floor(rnd() * 256))]);
      else if (roll < 0.15) input = mutate(rnd, others[Math.floor(rnd() * others.length)]!, c.flat);
      else input = mutate(rnd, c.fixtures[Math.floor(rnd() * c.fixtures.length)]!, c.flat);
      const path = c.paths[i % c.paths.length]!;
      const callStarted = performance.now();
      try {
        const r = await withTimeout(c.detect(bufferSource(path, input)), 2000, `${c.name} #${i}`);
        if (r === undefined) s.undefined++;
        else {
          s.results++;
          assert.equal(typeof r.format, 'string');
          assert.ok(JSON.stringify(r).length < 1 << 20, 'result stays small');
          // never `safe` when the walk was cut short by a budget or depth limit
          if (assertSafetyContract(r, `${c.name} #${i}`)) s.cutShort++;
        }
      } catch (e) {
        if (e instanceof InvalidModelFileError) s.invalid++;
        else assert.fail(`${c.name} #${i} (${path}, ${input.length} bytes, ${Buffer.from(input).toString('base64').slice(0, 200)}): ${(e as Error)?.stack ?? String(e)}`);
      }
      s.slowestMs = Math.max(s.slowestMs, Math.round(performance.now() - callStarted));
    }
    s.ms = Math.round(performance.now() - caseStarted);
    assert.ok(s.results > 0 && s.invalid > 0, `${c.name}: ${JSON.stringify(s)}`);
    if (c.name === 'onnx' || c.name === 'tflite') assert.ok(s.cutShort > 0, `${c.name}: the cut-short path was fuzzed: ${JSON.stringify(s)}`);
  }
  return summary;
}
