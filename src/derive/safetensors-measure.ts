// Measured, not claimed: reads a parent and a derived safetensors file side by
// side and reports, per tensor, how far the derived values are from the
// parent's (BF16/F16 widened back to float, I8 dequantised with its
// `<name>.scale`, F32 as is). Non-float tensors are compared byte for byte.
// Streams both files in element-aligned blocks.
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { BFLOAT16, decodeFloats, FLOAT16, FLOAT32, type FloatKind } from './numeric.ts';
import { readSafetensorsLayout, type SafetensorsEntry } from './safetensors-file.ts';
import { channelLayout } from './tensor-ops.ts';

const BLOCK = 1 << 18; // elements per block

const FLOAT_KINDS: Record<string, FloatKind> = { F32: FLOAT32, F16: FLOAT16, BF16: BFLOAT16 };

export interface TensorRoundTrip {
  name: string;
  from: string;
  to: string;
  elements: number;
  /** float tensors: the largest |derived − parent| (0 when identical; NaN where a NaN moved or appeared) */
  maxAbsError?: number;
  meanAbsError?: number;
  /** zeros / elements in the derived tensor */
  sparsity?: number;
  /** non-float tensors: whether the bytes are identical */
  identical?: boolean;
}

export interface SafetensorsRoundTrip {
  tensors: TensorRoundTrip[];
  /** the largest per-tensor maxAbsError */
  maxAbsError: number;
}

async function readExact(file: FileSource, offset: number, length: number): Promise<Uint8Array> {
  const b = await file.read(offset, length);
  if (b.byteLength !== length) throw new CairnError('INVALID_MODEL_FILE', `${file.path}: truncated at ${offset}`);
  return b;
}

/** The derived tensor's values, block by block, as float: I8 dequantised with `scale`. */
async function derivedValues(
  file: FileSource,
  t: SafetensorsEntry,
  scale: Float32Array | undefined,
  first: number,
  count: number,
): Promise<Float32Array | Float64Array> {
  if (t.dtype === 'I8') {
    if (!scale) throw new CairnError('INVALID_ARGUMENT', `${t.name} is I8 without a ${t.name}.scale tensor`);
    const q = new Int8Array(new Uint8Array(await readExact(file, t.begin + first, count)).buffer); // a copy: reads may share a pool
    const layout = channelLayout(t.shape, 0);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) out[i] = q[i]! * scale[Math.floor((first + i) / layout.inner) % layout.channels]!;
    return out;
  }
  const kind = FLOAT_KINDS[t.dtype];
  if (!kind) throw new CairnError('INVALID_ARGUMENT', `${t.name}: cannot compare a float tensor with ${t.dtype}`);
  return decodeFloats(kind, await readExact(file, t.begin + first * kind.bytes, count * kind.bytes));
}

export async function compareSafetensors(parent: FileSource, derivedFile: FileSource): Promise<SafetensorsRoundTrip> {
  const [a, b] = await Promise.all([readSafetensorsLayout(parent), readSafetensorsLayout(derivedFile)]);
  const byName = new Map(b.tensors.map((t) => [t.name, t]));
  const tensors: TensorRoundTrip[] = [];
  let worst = 0;
  for (const p of a.tensors) {
    const d = byName.get(p.name);
    if (!d) throw new CairnError('INVALID_ARGUMENT', `the derived file has no tensor ${p.name}`);
    const elements = p.shape.reduce((n, x) => n * x, 1);
    const kind = FLOAT_KINDS[p.dtype];
    const entry: TensorRoundTrip = { name: p.name, from: p.dtype, to: d.dtype, elements };
    tensors.push(entry);
    if (!kind) {
      entry.identical = d.dtype === p.dtype && (await sameBytes(parent, p, derivedFile, d));
      continue;
    }
    const scaleEntry = byName.get(`${p.name}.scale`);
    const scale =
      d.dtype === 'I8' && scaleEntry ? new Float32Array(new Uint8Array(await readExact(derivedFile, scaleEntry.begin, scaleEntry.end - scaleEntry.begin)).buffer) : undefined;
    let max = 0;
    let sum = 0;
    let zeros = 0;
    for (let first = 0; first < elements; first += BLOCK) {
      const count = Math.min(BLOCK, elements - first);
      const x = decodeFloats(kind, await readExact(parent, p.begin + first * kind.bytes, count * kind.bytes));
      const y = await derivedValues(derivedFile, d, scale, first, count);
      for (let i = 0; i < count; i++) {
        const xi = x[i]!;
        const yi = y[i]!;
        if (yi === 0) zeros++;
        if (xi === yi || (Number.isNaN(xi) && Number.isNaN(yi))) continue;
        const e = Math.abs(yi - xi);
        if (Number.isNaN(e)) max = NaN;
        else {
          if (e > max) max = e;
          sum += e;
        }
      }
    }
    entry.maxAbsError = max;
    entry.meanAbsError = elements ? sum / elements : 0;
    entry.sparsity = elements ? zeros / elements : 0;
    if (!(max <= worst)) worst = max;
  }
  return { tensors, maxAbsError: worst };
}

async function sameBytes(fa: FileSource, a: SafetensorsEntry, fb: FileSource, b: SafetensorsEntry): Promise<boolean> {
  if (a.end - a.begin !== b.end - b.begin) return false;
  for (let at = 0; at < a.end - a.begin; at += BLOCK) {
    const n = Math.min(BLOCK, a.end - a.begin - at);
    if (Buffer.compare(await readExact(fa, a.begin + at, n), await readExact(fb, b.begin + at, n)) !== 0) return false;
  }
  return true;
}
