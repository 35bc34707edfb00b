// Per-tensor operations, each a pass over a tensor's bytes in windows (never
// the whole tensor in memory): float32 → float16/bfloat16, per-channel int8
// (a statistics pass, then a quantising pass), magnitude pruning (one or two
// histogram passes find the exact k-th smallest magnitude, then a writing
// pass). Memory per tensor: one window in, one window out, and per-channel
// scales (4 bytes a channel) or 32768/65536-bin histograms.
import {
  alignedCopy,
  bf16FromF32,
  decodeFloats,
  f16FromF32,
  f32Bits,
  F32_INF,
  FLOAT32,
  magnitudeKeys,
  rint,
  type FloatKind,
} from './numeric.ts';
import { readWindows, type ByteRange, type ByteStream } from './stream.ts';

export interface FloatTensor {
  range: ByteRange;
  kind: FloatKind;
  elements: number;
}

// --- cast --------------------------------------------------------------------

/** onnxconverter-common's clamp before float16: magnitudes below/above the bounds move to them (0, inf, NaN stay). */
export interface Float16Clamp {
  minPositive: number;
  maxFinite: number;
}

export interface CastCounts {
  /** finite inputs that became ±inf */
  overflowToInf: number;
  /** non-zero finite inputs that became ±0 */
  underflowToZero: number;
  /** values moved by the clamp (fp16 ONNX) */
  clamped: number;
}

export const emptyCastCounts = (): CastCounts => ({ overflowToInf: 0, underflowToZero: 0, clamped: 0 });

/** float32 elements as float16 or bfloat16 (round to nearest even), counting overflows into `counts`. */
export function castFloat32(t: FloatTensor, to: 'float16' | 'bfloat16', counts: CastCounts, clamp?: Float16Clamp): ByteStream {
  if (t.kind !== FLOAT32) throw new Error(`castFloat32: ${t.kind.name} input`);
  const convert = to === 'float16' ? f16FromF32 : bf16FromF32;
  const lo = clamp ? f32Bits(clamp.minPositive) : 0;
  const hi = clamp ? f32Bits(clamp.maxFinite) : 0;
  return {
    byteLength: t.elements * 2,
    async *chunks() {
      for await (const window of readWindows(t.range)) {
        const bytes = alignedCopy(window, 4);
        const src = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        const out = new Uint16Array(src.length);
        for (let i = 0; i < src.length; i++) {
          let x = src[i]!;
          const a = x & 0x7fffffff;
          if (clamp && a !== 0 && a < F32_INF) {
            if (a < lo) {
              x = (x & 0x80000000) | lo;
              counts.clamped++;
            } else if (a > hi) {
              x = (x & 0x80000000) | hi;
              counts.clamped++;
            }
            x >>>= 0;
          }
          const h = convert(x);
          const ha = h & 0x7fff;
          if (a < F32_INF) {
            if (ha === (to === 'float16' ? 0x7c00 : 0x7f80)) counts.overflowToInf++;
            else if (ha === 0 && a !== 0) counts.underflowToZero++;
          }
          out[i] = h;
        }
        yield new Uint8Array(out.buffer);
      }
    },
  };
}

// --- per-channel int8 ----------------------------------------------------------

/** Element i belongs to channel ⌊i / inner⌋ mod channels (the channel axis of a row-major tensor). */
export interface ChannelLayout {
  channels: number;
  inner: number;
}

/** The layout of axis `axis` of a row-major tensor with dimensions `dims`. */
export function channelLayout(dims: number[], axis: number): ChannelLayout {
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  return { channels: dims[axis]!, inner };
}

export interface ChannelStats {
  maxAbs: Float64Array;
  /** NaN or ±inf elements (a tensor with any is not quantised) */
  nonFinite: number;
}

export async function channelMaxAbs(t: FloatTensor, layout: ChannelLayout): Promise<ChannelStats> {
  const maxAbs = new Float64Array(layout.channels);
  let nonFinite = 0;
  let index = 0;
  for await (const window of readWindows(t.range)) {
    const values = decodeFloats(t.kind, window);
    for (let i = 0; i < values.length; i++, index++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) {
        nonFinite++;
        continue;
      }
      const c = Math.floor(index / layout.inner) % layout.channels;
      const a = Math.abs(v);
      if (a > maxAbs[c]!) maxAbs[c] = a;
    }
  }
  return { maxAbs, nonFinite };
}

/** Symmetric int8 scales, float32: max|w| / 127 per channel; an all-zero channel gets 1 (any scale dequantises 0 to 0). */
export function int8Scales(maxAbs: Float64Array): Float32Array {
  const scales = new Float32Array(maxAbs.length);
  for (let c = 0; c < maxAbs.length; c++) scales[c] = maxAbs[c]! > 0 ? Math.fround(maxAbs[c]! / 127) : 1;
  // a scale so small it rounds to 0 in float32 would divide by zero: such channels are zeros in practice
  for (let c = 0; c < scales.length; c++) if (scales[c] === 0) scales[c] = 1;
  return scales;
}

/** q = clamp(rint(w / scale[channel]), −127, 127), as int8 bytes. */
export function quantizeInt8(t: FloatTensor, layout: ChannelLayout, scales: Float32Array): ByteStream {
  return {
    byteLength: t.elements,
    async *chunks() {
      let index = 0;
      for await (const window of readWindows(t.range)) {
        const values = decodeFloats(t.kind, window);
        const out = new Int8Array(values.length);
        for (let i = 0; i < values.length; i++, index++) {
          const c = Math.floor(index / layout.inner) % layout.channels;
          const q = rint(values[i]! / scales[c]!);
          out[i] = q > 127 ? 127 : q < -127 ? -127 : q;
        }
        yield new Uint8Array(out.buffer);
      }
    },
  };
}

// --- magnitude pruning -----------------------------------------------------------

/**
 * Which elements to zero: every element whose magnitude key is below
 * `threshold`, and the first `ties` (in element order) whose key equals it —
 * exactly `pruned` elements, the smallest by magnitude.
 */
export interface PrunePlan {
  pruned: number;
  threshold: number;
  ties: number;
}

/** Elements to zero for `sparsity` (0…1): ⌈sparsity × n⌉, so the achieved sparsity is never below the target. */
export function pruneCount(elements: number, sparsity: number): number {
  return Math.min(elements, Math.ceil(sparsity * elements - 1e-9));
}

/** Finds the exact k-th smallest magnitude key by radix selection over histograms (two passes for 31-bit keys, one for 15-bit). */
export async function prunePlan(t: FloatTensor, k: number): Promise<PrunePlan> {
  if (k <= 0) return { pruned: 0, threshold: 0, ties: 0 };
  const wide = t.kind.keyBits === 31;
  // pass 1: the high part of the key (bits 16…30), or the whole 15-bit key
  const first = new Float64Array(1 << 15);
  for await (const window of readWindows(t.range)) {
    const keys = magnitudeKeys(t.kind, window);
    if (wide) for (let i = 0; i < keys.length; i++) first[keys[i]! >>> 16]!++;
    else for (let i = 0; i < keys.length; i++) first[keys[i]!]!++;
  }
  let below = 0;
  let bin = 0;
  while (below + first[bin]! < k) below += first[bin++]!;
  if (!wide) return { pruned: k, threshold: bin, ties: k - below };
  // pass 2: the low 16 bits among keys whose high part is `bin`
  const second = new Float64Array(1 << 16);
  for await (const window of readWindows(t.range)) {
    const keys = magnitudeKeys(t.kind, window) as Uint32Array;
    for (let i = 0; i < keys.length; i++) if (keys[i]! >>> 16 === bin) second[keys[i]! & 0xffff]!++;
  }
  let low = 0;
  while (below + second[low]! < k) below += second[low++]!;
  return { pruned: k, threshold: bin * 0x10000 + low, ties: k - below };
}

export interface PruneCounts {
  /** zero elements in the output (pruned ones and those that were zero already) */
  zeros: number;
  /** the largest magnitude set to zero (the round-trip error of the tensor) */
  maxPruned: number;
}

/** The tensor with the plan's elements set to +0; everything else byte-identical. */
export function pruneStream(t: FloatTensor, plan: PrunePlan, counts: PruneCounts): ByteStream {
  return {
    byteLength: t.elements * t.kind.bytes,
    async *chunks() {
      let ties = plan.ties;
      for await (const window of readWindows(t.range)) {
        const out = new Uint8Array(window); // a copy: the source's bytes are never written
        const keys = magnitudeKeys(t.kind, out);
        const values = t.kind.bytes === 4 ? new Uint32Array(out.buffer) : new Uint16Array(out.buffer);
        const decoded = decodeFloats(t.kind, window);
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i]!;
          if (key < plan.threshold || (key === plan.threshold && ties > 0)) {
            if (key === plan.threshold) ties--;
            const a = Math.abs(decoded[i]!);
            if (a > counts.maxPruned) counts.maxPruned = a;
            values[i] = 0;
            counts.zeros++;
          } else if (key === 0) counts.zeros++; // −0 left as it was
        }
        yield out;
      }
    },
  };
}
