// Element conversions on raw IEEE-754 bit patterns, bit-exact with the
// references the tests check against: float32 → bfloat16 as ml_dtypes does
// (round to nearest even; NaN → sign | 0x7fc0), float32 → float16 as numpy
// and ml_dtypes do (round to nearest even, subnormals included; NaN keeps its
// top payload bits and stays a NaN). PyTorch agrees on every non-NaN value
// (its vectorised bfloat16 path writes NaN as 0xffff).
import os from 'node:os';

if (os.endianness() !== 'LE') throw new Error('derive: tensor data is little-endian; this host is not');

export const F32_INF = 0x7f800000;

/** bfloat16 bits of the float32 with bits `x` (a uint32). */
export function bf16FromF32(x: number): number {
  if ((x & 0x7fffffff) > F32_INF) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits of the float32 with bits `x` (a uint32). */
export function f16FromF32(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const a = x & 0x7fffffff;
  if (a >= F32_INF) {
    if (a === F32_INF) return sign | 0x7c00;
    const nan = 0x7c00 | ((a & 0x7fffff) >>> 13);
    return sign | (nan === 0x7c00 ? 0x7c01 : nan);
  }
  if (a >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds (to even) past 65504
  if (a >= 0x38800000) {
    // normal: rebias the exponent (127 → 15), round 23 mantissa bits to 10
    const v = a - 0x38000000;
    return sign | ((v + 0xfff + ((v >>> 13) & 1)) >>> 13);
  }
  // subnormal result: |x| < 2^-14, counted in units of 2^-24
  const exp = a >>> 23;
  if (exp < 102) return sign; // < 2^-25: rounds to zero
  const m = (a & 0x7fffff) | 0x800000;
  const shift = 126 - exp; // 14 … 24
  const q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 value of float16 bits `h`. */
export function f32FromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** The float32 value of bfloat16 bits `b`. */
export function f32FromBf16(b: number): number {
  u32[0] = (b << 16) >>> 0;
  return f32[0]!;
}

/** float32 bits of `v` (rounded to float32). */
export function f32Bits(v: number): number {
  f32[0] = v;
  return u32[0]!;
}

/** Round half to even (numpy's rint). */
export function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** Float element types the transforms read: how wide, how to get a value, how to get a magnitude key. */
export interface FloatKind {
  name: 'float32' | 'float16' | 'bfloat16';
  bytes: 2 | 4;
  /** magnitude bits: ordering keys of |x| (NaN above every number); 31 or 15 bits */
  keyBits: 31 | 15;
}

export const FLOAT32: FloatKind = { name: 'float32', bytes: 4, keyBits: 31 };
export const FLOAT16: FloatKind = { name: 'float16', bytes: 2, keyBits: 15 };
export const BFLOAT16: FloatKind = { name: 'bfloat16', bytes: 2, keyBits: 15 };

/** The values of a window of `kind` elements as float64s (for statistics and quantisation). */
export function decodeFloats(kind: FloatKind, bytes: Uint8Array): Float64Array | Float32Array {
  const aligned = alignedCopy(bytes, kind.bytes);
  if (kind.bytes === 4) return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const h = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  const out = new Float32Array(h.length);
  const convert = kind === FLOAT16 ? f32FromF16 : f32FromBf16;
  for (let i = 0; i < h.length; i++) out[i] = convert(h[i]!);
  return out;
}

/** Magnitude keys (|x| as unsigned bits) of a window of `kind` elements. */
export function magnitudeKeys(kind: FloatKind, bytes: Uint8Array): Uint32Array | Uint16Array {
  const aligned = alignedCopy(bytes, kind.bytes);
  if (kind.bytes === 4) {
    const src = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    const keys = new Uint32Array(src.length);
    for (let i = 0; i < src.length; i++) keys[i] = src[i]! & 0x7fffffff;
    return keys;
  }
  const src = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  const keys = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) keys[i] = src[i]! & 0x7fff;
  return keys;
}

/** `bytes` itself when its offset is a multiple of `align`, else a copy that is (typed-array views need it). */
export function alignedCopy(bytes: Uint8Array, align: number): Uint8Array {
  if (bytes.byteOffset % align === 0) return bytes;
  return new Uint8Array(bytes);
}
