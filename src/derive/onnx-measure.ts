// Measured, not claimed: runs the parent and the derived ONNX model with ONNX
// Runtime (onnxruntime-node, CPU, one thread each so numbers compare) on the
// same inputs and records, per output, the max and mean absolute error and
// the cosine similarity (over all samples, and the worst single sample), plus
// the median latency of each model.
//
// Inputs come from a samples file (safetensors: a tensor named after each
// model input gives one sample; tensors named `<i>/<input>` give sample i) or
// are generated from the parent's input signature with a seeded generator
// (floats: standard normal; integers: uniform in [0, 100) unless a value is
// given; symbolic dimensions: 1 unless a shape is given).
import type * as ort from 'onnxruntime-node';
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { f16FromF32, f32FromF16, f32Bits } from './numeric.ts';
import { readSafetensorsLayout } from './safetensors-file.ts';

export const ONNXRUNTIME_VERSION = '1.30.0';

export type Feed = Record<string, ort.Tensor>;

export interface GenerateSamples {
  count: number;
  seed: number;
  /** full shapes for inputs with symbolic dimensions */
  shapes?: Record<string, number[]>;
  /** a constant for an input (e.g. a sample rate) */
  values?: Record<string, number>;
}

export interface OutputAgreement {
  name: string;
  /** elements compared, over all samples */
  elements: number;
  maxAbsError: number;
  meanAbsError: number;
  /** cosine similarity of the outputs over all samples */
  cosine: number;
  /** the lowest per-sample cosine */
  minCosine: number;
}

export interface OnnxMeasurement {
  runtime: string;
  threads: number;
  samples: { count: number; source: 'file' | 'generated'; seed?: number; shapes: Record<string, number[]> };
  outputs: OutputAgreement[];
  latencyMs: { parent: number; derived: number; runs: number };
}

export interface MeasureOptions {
  /** the models: a path or the bytes */
  parent: string | Uint8Array;
  derived: string | Uint8Array;
  /** explicit inputs (from loadSamples), or how to generate them */
  samples: Feed[] | GenerateSamples;
  /** timed runs per model and sample (default 3; each sample is also run once untimed first) */
  repeat?: number;
  threads?: number;
}

const SAFETENSORS_TYPES: Record<string, ort.Tensor.Type> = {
  F32: 'float32',
  F16: 'float16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  U16: 'uint16',
  BOOL: 'bool',
};

const SAMPLE_LIMIT = 256 << 20;

/** ONNX Runtime, loaded on first use: its native library costs memory a server that never measures should not pay. */
const runtime = (): Promise<typeof ort> => import('onnxruntime-node');

/** Samples from a safetensors file: `<input>` is one sample; `<i>/<input>` is sample i. */
export async function loadSamples(file: FileSource): Promise<Feed[]> {
  const { Tensor } = await runtime();
  const layout = await readSafetensorsLayout(file);
  const total = layout.tensors.reduce((n, t) => n + t.end - t.begin, 0);
  if (total > SAMPLE_LIMIT) throw new CairnError('INVALID_ARGUMENT', `samples file ${file.path} holds ${total} bytes of tensors; at most ${SAMPLE_LIMIT}`);
  const feeds = new Map<number, Feed>();
  for (const t of layout.tensors) {
    const m = /^(\d+)\/(.+)$/.exec(t.name);
    const index = m ? Number(m[1]) : 0;
    const input = m ? m[2]! : t.name;
    const type = SAFETENSORS_TYPES[t.dtype];
    if (!type) throw new CairnError('INVALID_ARGUMENT', `samples: ${t.name} has dtype ${t.dtype}, which cannot feed a model`);
    const bytes = new Uint8Array(await file.read(t.begin, t.end - t.begin)); // a copy: aligned, owned
    const data = typedArray(type, bytes);
    const feed = feeds.get(index) ?? feeds.set(index, {}).get(index)!;
    feed[input] = new Tensor(type, data as never, t.shape);
  }
  if (feeds.size === 0) throw new CairnError('INVALID_ARGUMENT', `samples file ${file.path} has no tensors`);
  return [...feeds.entries()].sort((a, b) => a[0] - b[0]).map(([, f]) => f);
}

function typedArray(type: ort.Tensor.Type, b: Uint8Array): ArrayBufferView {
  const buf = b.buffer;
  switch (type) {
    case 'float32':
      return new Float32Array(buf, 0, b.byteLength / 4);
    case 'float16':
    case 'uint16':
      return new Uint16Array(buf, 0, b.byteLength / 2);
    case 'float64':
      return new Float64Array(buf, 0, b.byteLength / 8);
    case 'int64':
      return new BigInt64Array(buf, 0, b.byteLength / 8);
    case 'int32':
      return new Int32Array(buf, 0, b.byteLength / 4);
    case 'int16':
      return new Int16Array(buf, 0, b.byteLength / 2);
    case 'int8':
      return new Int8Array(buf, 0, b.byteLength);
    case 'bool':
    case 'uint8':
      return new Uint8Array(buf, 0, b.byteLength);
    default:
      throw new CairnError('INVALID_ARGUMENT', `samples: cannot make ${type} inputs`);
  }
}

/** A small seeded generator (mulberry32): the same seed gives the same inputs everywhere. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Inputs for `session`'s signature: seeded, one Feed per sample. */
export async function generateSamples(
  inputs: readonly ort.InferenceSession.ValueMetadata[],
  spec: GenerateSamples,
): Promise<{ feeds: Feed[]; shapes: Record<string, number[]> }> {
  const { Tensor } = await runtime();
  const next = random(spec.seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const shapes: Record<string, number[]> = {};
  for (const m of inputs) {
    if (!m.isTensor) throw new CairnError('INVALID_ARGUMENT', `cannot generate input ${m.name}: not a tensor`);
    const given = spec.shapes?.[m.name];
    shapes[m.name] = given ?? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
  }
  const feeds: Feed[] = [];
  for (let s = 0; s < spec.count; s++) {
    const feed: Feed = {};
    for (const m of inputs) {
      if (!m.isTensor) continue;
      const shape = shapes[m.name]!;
      const n = shape.reduce((a, d) => a * d, 1);
      const constant = spec.values?.[m.name];
      const value = (float: boolean): number => (constant !== undefined ? constant : float ? normal() : Math.floor(next() * 100));
      let data: ArrayBufferView;
      switch (m.type) {
        case 'float32':
          data = Float32Array.from({ length: n }, () => value(true));
          break;
        case 'float64':
          data = Float64Array.from({ length: n }, () => value(true));
          break;
        case 'float16':
          data = Uint16Array.from({ length: n }, () => f16FromF32(f32Bits(value(true))));
          break;
        case 'int64':
          data = BigInt64Array.from({ length: n }, () => BigInt(Math.round(value(false))));
          break;
        case 'int32':
          data = Int32Array.from({ length: n }, () => value(false));
          break;
        case 'bool':
          data = Uint8Array.from({ length: n }, () => (constant !== undefined ? (constant ? 1 : 0) : next() < 0.5 ? 1 : 0));
          break;
        default:
          throw new CairnError('INVALID_ARGUMENT', `cannot generate ${m.type} input ${m.name}; give samples instead`);
      }
      feed[m.name] = new Tensor(m.type, data as never, shape);
    }
    feeds.push(feed);
  }
  return { feeds, shapes };
}

function asNumbers(t: ort.Tensor): ArrayLike<number> {
  const d = t.data as ArrayLike<number | bigint>;
  if (t.type === 'float16') return Float64Array.from(d as ArrayLike<number>, (h) => f32FromF16(h));
  if (t.type === 'int64' || t.type === 'uint64') return Float64Array.from(d as ArrayLike<bigint>, (v) => Number(v));
  if (t.type === 'string') throw new CairnError('INVALID_ARGUMENT', 'cannot compare string outputs');
  return d as ArrayLike<number>;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timedRuns(session: ort.InferenceSession, feeds: Feed[], repeat: number): Promise<{ outputs: ort.InferenceSession.ReturnType[]; times: number[] }> {
  const outputs: ort.InferenceSession.ReturnType[] = [];
  const times: number[] = [];
  for (const feed of feeds) {
    outputs.push(await session.run(feed)); // untimed: the first run of a shape pays for allocations
    for (let r = 0; r < repeat; r++) {
      const t0 = process.hrtime.bigint();
      await session.run(feed);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return { outputs, times };
}

export async function measureOnnx(options: MeasureOptions): Promise<OnnxMeasurement> {
  const threads = options.threads ?? 1;
  const repeat = options.repeat ?? 3;
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ['cpu'] };
  const { InferenceSession } = await runtime();
  const open = (m: string | Uint8Array): Promise<ort.InferenceSession> =>
    (typeof m === 'string' ? InferenceSession.create(m, sessionOptions) : InferenceSession.create(m, sessionOptions)).catch((e: Error) => { // (two overloads)
      throw new CairnError('INVALID_MODEL_FILE', `ONNX Runtime cannot load the model: ${e.message}`);
    });
  const parent = await open(options.parent);
  try {
    const derived = await open(options.derived);
    try {
      let feeds: Feed[];
      let samples: OnnxMeasurement['samples'];
      if (Array.isArray(options.samples)) {
        feeds = options.samples;
        const shapes = Object.fromEntries(Object.entries(feeds[0] ?? {}).map(([k, t]) => [k, [...t.dims]]));
        samples = { count: feeds.length, source: 'file', shapes };
      } else {
        const g = await generateSamples(parent.inputMetadata, options.samples);
        feeds = g.feeds;
        samples = { count: feeds.length, source: 'generated', seed: options.samples.seed, shapes: g.shapes };
      }
      if (feeds.length === 0) throw new CairnError('INVALID_ARGUMENT', 'measure: no samples');
      const run = async (s: ort.InferenceSession, which: string): ReturnType<typeof timedRuns> => {
        try {
          return await timedRuns(s, feeds, repeat);
        } catch (e) {
          throw new CairnError('INVALID_ARGUMENT', `ONNX Runtime cannot run the ${which} model on the samples: ${(e as Error).message}`);
        }
      };
      const a = await run(parent, 'parent');
      const b = await run(derived, 'derived');
      const outputs = parent.outputNames.map((name) => compareOutput(name, a.outputs, b.outputs));
      return {
        runtime: `onnxruntime-node ${ONNXRUNTIME_VERSION}`,
        threads,
        samples,
        outputs,
        latencyMs: { parent: median(a.times), derived: median(b.times), runs: a.times.length },
      };
    } finally {
      await derived.release();
    }
  } finally {
    await parent.release();
  }
}

function compareOutput(name: string, a: ort.InferenceSession.ReturnType[], b: ort.InferenceSession.ReturnType[]): OutputAgreement {
  let elements = 0;
  let max = 0;
  let sum = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  let minCosine = 1;
  const cosine = (d: number, x: number, y: number): number => (x === 0 && y === 0 ? 1 : x === 0 || y === 0 ? 0 : d / Math.sqrt(x * y));
  for (let s = 0; s < a.length; s++) {
    const ta = a[s]![name];
    const tb = b[s]![name];
    if (!ta || !tb) throw new CairnError('INVALID_ARGUMENT', `measure: the derived model has no output ${name}`);
    const x = asNumbers(ta);
    const y = asNumbers(tb);
    if (x.length !== y.length) throw new CairnError('INVALID_ARGUMENT', `measure: output ${name} has ${y.length} elements, the parent's ${x.length}`);
    let sd = 0;
    let sa = 0;
    let sb = 0;
    for (let i = 0; i < x.length; i++) {
      const xi = x[i]!;
      const yi = y[i]!;
      const e = Math.abs(xi - yi);
      if (Number.isNaN(e)) max = NaN;
      else if (e > max) max = e;
      sum += e;
      sd += xi * yi;
      sa += xi * xi;
      sb += yi * yi;
    }
    elements += x.length;
    dot += sd;
    na += sa;
    nb += sb;
    minCosine = Math.min(minCosine, cosine(sd, sa, sb));
  }
  return { name, elements, maxAbsError: max, meanAbsError: elements ? sum / elements : 0, cosine: cosine(dot, na, nb), minCosine };
}
