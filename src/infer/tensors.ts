// Tensors as the server handles them: a flat typed array (or strings), its
// element type as ONNX Runtime names it, and its dims. This module turns JSON
// values into such tensors — checking every element against the input's type
// and shape, so that bad input is a message naming the input, never a crash in
// the runtime — and writes them back as JSON, nested (TF Serving) or flat (OIP).
import { Buffer } from 'node:buffer';

/** Element types ONNX Runtime's Node binding can feed and fetch. */
export type ElementType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string';

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

export interface Tensor {
  type: ElementType;
  dims: number[];
  data: TensorData;
}

/** An input or output of a model: a dim is a size, or a symbolic name ('' when unnamed). */
export interface TensorSpec {
  name: string;
  type: ElementType;
  shape: Array<number | string>;
}

interface TypeInfo {
  tf: string;
  oip: string;
  bytes: number; // per element in the OIP binary extension (0: variable, BYTES)
  min?: number;
  max?: number;
}

const TYPES: Record<ElementType, TypeInfo> = {
  float32: { tf: 'DT_FLOAT', oip: 'FP32', bytes: 4 },
  float64: { tf: 'DT_DOUBLE', oip: 'FP64', bytes: 8 },
  float16: { tf: 'DT_HALF', oip: 'FP16', bytes: 2 },
  int8: { tf: 'DT_INT8', oip: 'INT8', bytes: 1, min: -128, max: 127 },
  uint8: { tf: 'DT_UINT8', oip: 'UINT8', bytes: 1, min: 0, max: 255 },
  int16: { tf: 'DT_INT16', oip: 'INT16', bytes: 2, min: -32768, max: 32767 },
  uint16: { tf: 'DT_UINT16', oip: 'UINT16', bytes: 2, min: 0, max: 65535 },
  int32: { tf: 'DT_INT32', oip: 'INT32', bytes: 4, min: -2147483648, max: 2147483647 },
  uint32: { tf: 'DT_UINT32', oip: 'UINT32', bytes: 4, min: 0, max: 4294967295 },
  int64: { tf: 'DT_INT64', oip: 'INT64', bytes: 8 },
  uint64: { tf: 'DT_UINT64', oip: 'UINT64', bytes: 8 },
  bool: { tf: 'DT_BOOL', oip: 'BOOL', bytes: 1 },
  string: { tf: 'DT_STRING', oip: 'BYTES', bytes: 0 },
};

export function isElementType(t: string): t is ElementType {
  return Object.hasOwn(TYPES, t);
}

export function tfDtype(t: ElementType): string {
  return TYPES[t].tf;
}

export function oipDatatype(t: ElementType): string {
  return TYPES[t].oip;
}

export function elementTypeOfOip(datatype: string): ElementType | undefined {
  for (const [t, info] of Object.entries(TYPES)) if (info.oip === datatype) return t as ElementType;
  return undefined;
}

/** The problem with a request's tensors: always a 400, the message says which input and what was expected. */
export class TensorInputError extends Error {
  override readonly name = 'TensorInputError';
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function allocate(type: ElementType, count: number): TensorData {
  switch (type) {
    case 'float32':
      return new Float32Array(count);
    case 'float64':
      return new Float64Array(count);
    case 'float16':
    case 'uint16':
      return new Uint16Array(count);
    case 'int8':
      return new Int8Array(count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(count);
    case 'int16':
      return new Int16Array(count);
    case 'int32':
      return new Int32Array(count);
    case 'uint32':
      return new Uint32Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'uint64':
      return new BigUint64Array(count);
    case 'string':
      return new Array<string>(count).fill('');
  }
}

// ---- JSON in ---------------------------------------------------------------

/**
 * JSON.parse, plus the bare `NaN`, `Infinity` and `-Infinity` tokens that TF
 * Serving accepts in requests (api_rest.md, "JSON conformance"). Outside
 * strings they become a marker string that float inputs read back.
 */
export function parseJsonLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (!/NaN|Infinity/.test(text)) throw err;
    const rewritten = rewriteNonFinite(text);
    if (rewritten === text) throw err;
    return JSON.parse(rewritten);
  }
}

const NON_FINITE_MARK = '\u0000';
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

function rewriteNonFinite(text: string): string {
  const parts: string[] = [];
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    for (const token of ['-Infinity', 'Infinity', 'NaN']) {
      if (text.startsWith(token, i)) {
        parts.push(text.slice(from, i), `"\\u0000${token}"`);
        i += token.length - 1;
        from = i + 1;
        break;
      }
    }
  }
  parts.push(text.slice(from));
  return parts.join('');
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    if (value.startsWith(NON_FINITE_MARK)) return value.slice(1);
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function where(path: number[]): string {
  return path.map((i) => `[${i}]`).join('');
}

/** Deeper nesting than any tensor has: refused before any recursion. */
export const MAX_RANK = 32;

/** The shape of a nested list: the lengths down its first elements. Scalars have []. */
function nestedShape(value: unknown, input: string): number[] {
  const dims: number[] = [];
  let v = value;
  while (Array.isArray(v)) {
    if (dims.length === MAX_RANK) throw new TensorInputError(`input '${input}': lists nested deeper than ${MAX_RANK} levels`);
    dims.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  return dims;
}

/** Leaves of a nested list, counted without recursion; past `limit` it stops counting. */
function countLeaves(value: unknown[], limit: number, input: string): number {
  let n = 0;
  const stack: Array<{ list: unknown[]; depth: number }> = [{ list: value, depth: 1 }];
  while (stack.length) {
    const { list, depth } = stack.pop()!;
    for (const e of list) {
      if (!Array.isArray(e)) n++;
      else if (depth >= MAX_RANK) throw new TensorInputError(`input '${input}': lists nested deeper than ${MAX_RANK} levels`);
      else stack.push({ list: e, depth: depth + 1 });
      if (n > limit) return n;
    }
  }
  return n;
}

/**
 * Writes one JSON element into `out[at]`; throws a TensorInputError naming
 * the input, the element's position and what was expected.
 */
function putElement(out: TensorData, at: number, type: ElementType, value: unknown, input: string, path: number[]): void {
  const fail = (expected: string): never => {
    const which = path.length ? `element ${where(path)}` : 'the value';
    throw new TensorInputError(`input '${input}': ${which} is ${describe(value)}; expected ${expected} (${TYPES[type].tf} / ${TYPES[type].oip})`);
  };
  switch (type) {
    case 'float32':
    case 'float64':
    case 'float16': {
      let n: number;
      if (typeof value === 'number') n = value;
      else if (typeof value === 'string' && NON_FINITE[value.startsWith(NON_FINITE_MARK) ? value.slice(1) : value] !== undefined) {
        n = NON_FINITE[value.startsWith(NON_FINITE_MARK) ? value.slice(1) : value]!;
      } else return fail('a number');
      if (type === 'float16') (out as Uint16Array)[at] = toHalf(n);
      else (out as Float32Array | Float64Array)[at] = n;
      return;
    }
    case 'bool':
      if (typeof value !== 'boolean') return fail('true or false');
      (out as Uint8Array)[at] = value ? 1 : 0;
      return;
    case 'string':
      if (typeof value === 'string') {
        if (value.startsWith(NON_FINITE_MARK)) return fail('a string');
        (out as string[])[at] = value;
        return;
      }
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const b64 = (value as { b64?: unknown }).b64;
        if (typeof b64 === 'string' && Object.keys(value).length === 1) {
          (out as string[])[at] = decodeB64(b64, input, path);
          return;
        }
      }
      return fail('a string or {"b64": "<base64>"}');
    case 'int64':
    case 'uint64': {
      let big: bigint;
      if (typeof value === 'number') {
        if (!Number.isInteger(value)) return fail('an integer');
        if (!Number.isSafeInteger(value)) return fail('an integer within ±2^53 (send larger ones as decimal strings)');
        big = BigInt(value);
      } else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) {
        big = BigInt(value);
      } else return fail('an integer');
      const ok = type === 'int64' ? big >= -(2n ** 63n) && big < 2n ** 63n : big >= 0n && big < 2n ** 64n;
      if (!ok) return fail(type === 'int64' ? 'an integer in the int64 range' : 'an integer in the uint64 range');
      (out as BigInt64Array | BigUint64Array)[at] = big as never;
      return;
    }
    default: {
      const { min, max } = TYPES[type];
      if (typeof value !== 'number' || !Number.isInteger(value)) return fail('an integer');
      if (value < min! || value > max!) return fail(`an integer in [${min}, ${max}]`);
      (out as Int32Array)[at] = value;
    }
  }
}

function decodeB64(b64: string, input: string, path: number[]): string {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw new TensorInputError(`input '${input}': element ${where(path)}: "b64" is not base64`);
  const bytes = Buffer.from(b64, 'base64');
  try {
    // ONNX Runtime's Node binding holds strings as JS strings: bytes must be UTF-8
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TensorInputError(`input '${input}': element ${where(path)}: the b64 bytes are not UTF-8, and ONNX Runtime's string tensors hold text only`);
  }
}

/**
 * Copies a list of plain numbers into `out` from `at`, checking each in one
 * tight loop: every element a number (integers in range for integer types).
 * False at the first element that is anything else — the caller then goes
 * element by element, for the message. Types without a fast path say false.
 */
function fillNumbers(list: unknown[], out: TensorData, at: number, type: ElementType): boolean {
  const n = list.length;
  if (type === 'float32' || type === 'float64') {
    const o = out as Float32Array;
    for (let i = 0; i < n; i++) {
      const v = list[i];
      if (typeof v !== 'number') return false;
      o[at + i] = v;
    }
    return true;
  }
  const info = TYPES[type];
  if (info.min === undefined) return false; // int64, uint64, bool, string, float16: element by element
  const { min, max } = info as { min: number; max: number };
  const o = out as Int32Array;
  for (let i = 0; i < n; i++) {
    const v = list[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return false;
    o[at + i] = v;
  }
  return true;
}

/**
 * A nested JSON list (or a scalar) as a tensor of `type`. Every row must have
 * the same length as its siblings (no ragged lists).
 */
export function tensorFromNested(value: unknown, type: ElementType, input: string): Tensor {
  const dims = nestedShape(value, input);
  const count = elementCount(dims);
  const data = allocate(type, count);
  let at = 0;
  const path: number[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth === dims.length) {
      if (Array.isArray(v)) throw new TensorInputError(`input '${input}': element ${where(path)} is a list, but its siblings are not (ragged nested list)`);
      putElement(data, at++, type, v, input, path);
      return;
    }
    if (!Array.isArray(v)) throw new TensorInputError(`input '${input}': ${where(path) || 'the value'} is ${describe(v)}, but its siblings are lists of ${dims[depth]} (ragged nested list)`);
    if (v.length !== dims[depth]) throw new TensorInputError(`input '${input}': ${where(path)} has ${v.length} elements, its siblings ${dims[depth]} (ragged nested list)`);
    if (depth === dims.length - 1 && fillNumbers(v, data, at, type)) {
      at += v.length;
      return;
    }
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      walk(v[i], depth + 1);
      path.pop();
    }
  };
  walk(value, 0);
  return { type, dims, data };
}

/**
 * OIP `data`: the elements in row-major order, flat or nested as `shape`
 * (inference_rest.md, "Tensor Data"); the count must match the shape.
 */
export function tensorFromFlat(value: unknown, type: ElementType, dims: number[], input: string): Tensor {
  if (!Array.isArray(value)) throw new TensorInputError(`input '${input}': "data" must be a list`);
  if (dims.length > MAX_RANK) throw new TensorInputError(`input '${input}': shape has more than ${MAX_RANK} dimensions`);
  const count = elementCount(dims);
  // counted before anything is allocated: the shape is the client's word, the data is what came
  const given = countLeaves(value, count, input);
  if (given !== count) throw new TensorInputError(`input '${input}': "data" has ${given > count ? `more than ${count}` : given} elements; shape [${dims.join(', ')}] needs ${count}`);
  const data = allocate(type, count);
  let at = 0;
  const path: number[] = [];
  const walk = (v: unknown[]): void => {
    if (!Array.isArray(v[0]) && at + v.length <= count && fillNumbers(v, data, at, type)) {
      at += v.length;
      return;
    }
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      path.push(i);
      if (Array.isArray(e)) walk(e);
      else putElement(data, at++, type, e, input, path);
      path.pop();
    }
  };
  walk(value);
  return { type, dims, data };
}

/** Raw little-endian bytes (OIP binary extension) as a tensor. */
export function tensorFromBytes(bytes: Uint8Array, type: ElementType, dims: number[], input: string): Tensor {
  const count = elementCount(dims);
  if (type === 'string') {
    const out: string[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    while (at < bytes.byteLength) {
      if (at + 4 > bytes.byteLength) throw new TensorInputError(`input '${input}': binary BYTES data ends inside a length prefix`);
      const len = view.getUint32(at, true);
      at += 4;
      if (at + len > bytes.byteLength) throw new TensorInputError(`input '${input}': binary BYTES element ${out.length} runs past the data`);
      try {
        out.push(decoder.decode(bytes.subarray(at, at + len)));
      } catch {
        throw new TensorInputError(`input '${input}': binary BYTES element ${out.length} is not UTF-8 (ONNX Runtime's string tensors hold text only)`);
      }
      at += len;
    }
    if (out.length !== count) throw new TensorInputError(`input '${input}': binary data holds ${out.length} BYTES elements; shape [${dims.join(', ')}] needs ${count}`);
    return { type, dims, data: out };
  }
  const size = TYPES[type].bytes;
  if (bytes.byteLength !== count * size) {
    throw new TensorInputError(`input '${input}': binary data is ${bytes.byteLength} bytes; shape [${dims.join(', ')}] of ${TYPES[type].oip} needs ${count * size}`);
  }
  const data = allocate(type, count) as Exclude<TensorData, string[]>;
  // copy: the request's buffer is not aligned for the element size
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  if (type === 'bool') for (let i = 0; i < count; i++) if (data[i]! > 1) throw new TensorInputError(`input '${input}': binary BOOL element ${i} is ${data[i]}, not 0 or 1`);
  return { type, dims, data };
}

// ---- checks against the model ------------------------------------------------

/** Dims that a tensor must have for `spec`: fixed sizes must match, symbolic ones take anything. */
export function checkShape(t: Tensor, spec: TensorSpec): void {
  const expected = `[${spec.shape.map((d) => (typeof d === 'number' ? d : -1)).join(', ')}]`;
  if (t.dims.length !== spec.shape.length) {
    throw new TensorInputError(`input '${spec.name}': got shape [${t.dims.join(', ')}] (rank ${t.dims.length}); the model takes rank ${spec.shape.length}, ${expected} (-1: any size)`);
  }
  spec.shape.forEach((d, i) => {
    if (typeof d === 'number' && t.dims[i] !== d) {
      throw new TensorInputError(`input '${spec.name}': got shape [${t.dims.join(', ')}]; dimension ${i} must be ${d}: the model takes ${expected} (-1: any size)`);
    }
  });
}

// ---- JSON out ----------------------------------------------------------------

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** IEEE 754 half (as its 16 bits) from a number, rounding to nearest even. */
export function toHalf(value: number): number {
  F32[0] = value;
  const x = U32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow: Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow: zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++; // carries into the exponent correctly
  return half;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export type NonFinite = 'bare' | 'string';

export interface JsonStyle {
  /** how NaN and ±Infinity print: bare tokens (TF Serving) or strings (valid JSON) */
  nonFinite: NonFinite;
  /** strings as {"b64": …} (TF Serving, for outputs named *_bytes) */
  b64?: boolean;
}

function hasNonFinite(data: TensorData, type: ElementType): boolean {
  if (type === 'float16') return (data as Uint16Array).some((h) => (h & 0x7c00) === 0x7c00);
  if (type !== 'float32' && type !== 'float64') return false;
  const d = data as Float32Array;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return true;
  return false;
}

function nonFiniteJson(v: number, nonFinite: NonFinite): string {
  const token = Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return nonFinite === 'bare' ? token : `"${token}"`;
}

/**
 * Elements [from, to) as a JSON list. Floats print as JSON.stringify prints
 * the (exact) double of each element — several times faster than looking for
 * the shortest float32 decimal; non-finite floats as TF Serving writes them
 * (bare `NaN`) or as strings (valid JSON, for OIP).
 */
function listJson(t: Tensor, from: number, to: number, style: JsonStyle, slow: boolean): string {
  const { data, type } = t;
  const { nonFinite } = style;
  switch (type) {
    case 'float16': {
      const out = new Array<string>(to - from);
      for (let i = from; i < to; i++) {
        const v = fromHalf((data as Uint16Array)[i]!);
        out[i - from] = Number.isFinite(v) ? String(v) : nonFiniteJson(v, nonFinite);
      }
      return `[${out.join(',')}]`;
    }
    case 'float32':
    case 'float64': {
      const d = (data as Float32Array).subarray(from, to);
      if (!slow) return JSON.stringify(Array.from(d));
      return `[${Array.from(d, (v) => (Number.isFinite(v) ? String(v) : nonFiniteJson(v, nonFinite))).join(',')}]`;
    }
    case 'bool':
      return `[${Array.from((data as Uint8Array).subarray(from, to), (v) => (v ? 'true' : 'false')).join(',')}]`;
    case 'string': {
      const strings = (data as string[]).slice(from, to);
      if (!style.b64) return JSON.stringify(strings);
      return `[${strings.map((s) => `{"b64":"${Buffer.from(s, 'utf8').toString('base64')}"}`).join(',')}]`;
    }
    case 'int64':
    case 'uint64':
      return `[${Array.from((data as BigInt64Array).subarray(from, to), String).join(',')}]`;
    default:
      return JSON.stringify(Array.from((data as Int32Array).subarray(from, to)));
  }
}

/** The tensor as nested JSON lists (a scalar for rank 0), TF Serving's form. */
export function nestedJson(t: Tensor, style: JsonStyle): string {
  const slow = hasNonFinite(t.data, t.type);
  if (t.dims.length === 0) return listJson(t, 0, 1, style, slow).slice(1, -1);
  const inner = t.dims[t.dims.length - 1]!;
  const parts: string[] = [];
  let at = 0;
  const walk = (depth: number): void => {
    if (depth === t.dims.length - 1) {
      parts.push(listJson(t, at, at + inner, style, slow));
      at += inner;
      return;
    }
    parts.push('[');
    for (let i = 0; i < t.dims[depth]!; i++) {
      if (i) parts.push(',');
      walk(depth + 1);
    }
    parts.push(']');
  };
  walk(0);
  return parts.join('');
}

/** All elements as one flat JSON list, OIP's form. */
export function flatJson(t: Tensor, style: JsonStyle): string {
  return listJson(t, 0, t.data.length, style, hasNonFinite(t.data, t.type));
}

/** The tensor's elements as OIP binary data: raw little-endian, BYTES with 4-byte length prefixes. */
export function tensorBytes(t: Tensor): Uint8Array {
  if (t.type === 'string') {
    const pieces = (t.data as string[]).map((s) => Buffer.from(s, 'utf8'));
    const out = Buffer.allocUnsafe(pieces.reduce((n, p) => n + 4 + p.byteLength, 0));
    let at = 0;
    for (const p of pieces) {
      out.writeUInt32LE(p.byteLength, at);
      p.copy(out, at + 4);
      at += 4 + p.byteLength;
    }
    return out;
  }
  const d = t.data as Exclude<TensorData, string[]>;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

// ---- slicing along dim 0 ---------------------------------------------------------

/** Rows [from, to) along dim 0. Shares the buffer for typed arrays. */
export function sliceRows(t: Tensor, from: number, to: number): Tensor {
  const row = elementCount(t.dims.slice(1));
  const dims = [to - from, ...t.dims.slice(1)];
  const data = Array.isArray(t.data) ? t.data.slice(from * row, to * row) : (t.data as Float32Array).subarray(from * row, to * row);
  return { type: t.type, dims, data: data as TensorData };
}

/** Tensors with equal type and trailing dims, stacked along dim 0. */
export function concatRows(parts: Tensor[]): Tensor {
  const first = parts[0]!;
  const rows = parts.reduce((n, p) => n + p.dims[0]!, 0);
  const dims = [rows, ...first.dims.slice(1)];
  if (first.type === 'string') return { type: first.type, dims, data: parts.flatMap((p) => p.data as string[]) };
  const data = allocate(first.type, elementCount(dims)) as Float32Array;
  let at = 0;
  for (const p of parts) {
    data.set(p.data as Float32Array, at);
    at += p.data.length;
  }
  return { type: first.type, dims, data };
}

/** Tensors of one more dimension: `items` stacked as rows (TF Serving's row form). */
export function stack(items: Tensor[]): Tensor {
  return concatRows(items.map((t) => ({ ...t, dims: [1, ...t.dims] })));
}
