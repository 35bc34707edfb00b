// GGUF (llama.cpp / ggml): magic `GGUF`, version u32, tensor_count u64,
// metadata_kv_count u64, the key/value pairs, the tensor infos, then (at
// `general.alignment`, default 32) the tensor data.
//
// Versions 2 and 3 are read, in either byte order (v3 allows big-endian files;
// the magic stays `GGUF`, the version reads byte-swapped). Version 1 (u32
// counts and lengths, obsolete since 2023 and refused by llama.cpp) is
// rejected with a clear message.
//
// The header is streamed through a bounded window (1 MiB reads): token arrays
// make real headers tens of MiB. Every count and length is checked against the
// bytes left before anything is read or allocated, the header may not exceed
// 256 MiB, tensors ≤ 1,048,576, key/value pairs ≤ 65,536, nesting of arrays ≤ 3.
// Checks mirror llama.cpp's gguf loader: unique keys and tensor names, key
// ≤ 65,535 bytes, tensor name ≤ 64 bytes (the spec's limit), ≤ 4 dimensions,
// element count within int64, row size a multiple of the type's block size,
// `general.alignment` a power of two, tensor offsets multiples of it, and every
// tensor's data inside the file without overlapping another.
import { InvalidModelFileError, SAFE, type FileFormat, type FileSource } from './types.ts';

const FORMAT = 'gguf';
const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const WINDOW = 1 << 20;
const MAX_HEADER_BYTES = 256 * 1024 * 1024;
const MAX_TENSORS = 1 << 20;
const MAX_KV = 1 << 16;
const MAX_KEY_BYTES = 65_535;
const MAX_TENSOR_NAME_BYTES = 64;
const MAX_DIMS = 4;
const MAX_ARRAY_DEPTH = 3;
const DEFAULT_ALIGNMENT = 32;
const INT64_MAX = (1n << 63n) - 1n;
// bounds on what goes into `details`
const STRING_KEEP = 256;
const TEMPLATE_KEEP = 1024;
const ARRAY_INLINE = 8;
const ARRAY_HEAD = 5;
const DETAILS_MAX_KV = 256;
const LARGEST = 5;

const T = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6,
  BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
const VALUE_TYPE_NAMES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'];
const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** ggml_type id → [name, block size, bytes per block]; ids removed from ggml are absent */
const GGML_TYPES: Record<number, readonly [string, number, number]> = {
  0: ['F32', 1, 4],
  1: ['F16', 1, 2],
  2: ['Q4_0', 32, 18],
  3: ['Q4_1', 32, 20],
  6: ['Q5_0', 32, 22],
  7: ['Q5_1', 32, 24],
  8: ['Q8_0', 32, 34],
  9: ['Q8_1', 32, 36],
  10: ['Q2_K', 256, 84],
  11: ['Q3_K', 256, 110],
  12: ['Q4_K', 256, 144],
  13: ['Q5_K', 256, 176],
  14: ['Q6_K', 256, 210],
  15: ['Q8_K', 256, 292],
  16: ['IQ2_XXS', 256, 66],
  17: ['IQ2_XS', 256, 74],
  18: ['IQ3_XXS', 256, 98],
  19: ['IQ1_S', 256, 50],
  20: ['IQ4_NL', 32, 18],
  21: ['IQ3_S', 256, 110],
  22: ['IQ2_S', 256, 82],
  23: ['IQ4_XS', 256, 136],
  24: ['I8', 1, 1],
  25: ['I16', 1, 2],
  26: ['I32', 1, 4],
  27: ['I64', 1, 8],
  28: ['F64', 1, 8],
  29: ['IQ1_M', 256, 56],
  30: ['BF16', 1, 2],
  34: ['TQ1_0', 256, 54],
  35: ['TQ2_0', 256, 66],
  39: ['MXFP4', 32, 17],
};
/** Cairn's lower-case dtype names for the plain types; quantized ones are the ggml name lower-cased */
const PLAIN_DTYPES: Record<string, string> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I8: 'int8', I16: 'int16', I32: 'int32', I64: 'int64',
};

/** llama_ftype (general.file_type) */
const FILE_TYPES: Record<number, string> = {
  0: 'ALL_F32', 1: 'MOSTLY_F16', 2: 'MOSTLY_Q4_0', 3: 'MOSTLY_Q4_1', 4: 'MOSTLY_Q4_1_SOME_F16', 5: 'MOSTLY_Q4_2', 6: 'MOSTLY_Q4_3',
  7: 'MOSTLY_Q8_0', 8: 'MOSTLY_Q5_0', 9: 'MOSTLY_Q5_1', 10: 'MOSTLY_Q2_K', 11: 'MOSTLY_Q3_K_S', 12: 'MOSTLY_Q3_K_M',
  13: 'MOSTLY_Q3_K_L', 14: 'MOSTLY_Q4_K_S', 15: 'MOSTLY_Q4_K_M', 16: 'MOSTLY_Q5_K_S', 17: 'MOSTLY_Q5_K_M', 18: 'MOSTLY_Q6_K',
  19: 'MOSTLY_IQ2_XXS', 20: 'MOSTLY_IQ2_XS', 21: 'MOSTLY_Q2_K_S', 22: 'MOSTLY_IQ3_XS', 23: 'MOSTLY_IQ3_XXS', 24: 'MOSTLY_IQ1_S',
  25: 'MOSTLY_IQ4_NL', 26: 'MOSTLY_IQ3_S', 27: 'MOSTLY_IQ3_M', 28: 'MOSTLY_IQ2_S', 29: 'MOSTLY_IQ2_M', 30: 'MOSTLY_IQ4_XS',
  31: 'MOSTLY_IQ1_M', 32: 'MOSTLY_BF16', 33: 'MOSTLY_Q4_0_4_4', 34: 'MOSTLY_Q4_0_4_8', 35: 'MOSTLY_Q4_0_8_8',
  36: 'MOSTLY_TQ1_0', 37: 'MOSTLY_TQ2_0', 38: 'MOSTLY_MXFP4_MOE', 1024: 'GUESSED',
};

export const ggmlTypeName = (id: number): string => GGML_TYPES[id]?.[0] ?? `type_${id}`;
const dtypeName = (id: number): string => {
  const n = GGML_TYPES[id]?.[0];
  return n === undefined ? `type_${id}` : (PLAIN_DTYPES[n] ?? n.toLowerCase());
};

function fail(message: string): never {
  throw new InvalidModelFileError(FORMAT, `invalid GGUF file: ${message}`);
}

/** The file ends inside its header: what a prefix of a file still streaming in also looks like. */
export class GgufTruncatedError extends InvalidModelFileError {}

function truncated(message: string): never {
  throw new GgufTruncatedError(FORMAT, `invalid GGUF file: truncated: ${message}`);
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // replacement characters, never throws
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Sequential reads through a bounded window over the file. */
class Reader {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(0));
  private bufStart = 0;
  le = true;
  constructor(private readonly file: FileSource) {}

  get size(): number {
    return this.file.size;
  }
  get remaining(): number {
    return this.file.size - this.pos;
  }

  /**
   * Makes [pos, pos + n) available in the window (n ≤ WINDOW). Returns
   * undefined when it already is (the common case: no promise, no await),
   * else a promise to await before reading.
   */
  need(n: number, what: string): Promise<void> | undefined {
    if (n > this.remaining) truncated(`${what} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
    if (this.pos + n > MAX_HEADER_BYTES) fail(`header larger than ${MAX_HEADER_BYTES} bytes`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.byteLength) return undefined;
    return this.fill(n);
  }

  private async fill(n: number): Promise<void> {
    const chunk = await this.file.read(this.pos, Math.max(n, Math.min(WINDOW, this.remaining)));
    if (chunk.byteLength < n) truncated(`could read only ${chunk.byteLength} of ${n} bytes at offset ${this.pos}`);
    this.buf = chunk;
    this.view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.bufStart = this.pos;
  }

  /** moves forward without reading */
  skip(n: number, what: string): void {
    if (n > this.remaining) truncated(`${what} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
    this.pos += n;
    if (this.pos > MAX_HEADER_BYTES) fail(`header larger than ${MAX_HEADER_BYTES} bytes`);
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }
  // the accessors below require a preceding need()
  u8(): number { return this.view.getUint8(this.at(1)); }
  i8(): number { return this.view.getInt8(this.at(1)); }
  u16(): number { return this.view.getUint16(this.at(2), this.le); }
  i16(): number { return this.view.getInt16(this.at(2), this.le); }
  u32(): number { return this.view.getUint32(this.at(4), this.le); }
  i32(): number { return this.view.getInt32(this.at(4), this.le); }
  f32(): number { return this.view.getFloat32(this.at(4), this.le); }
  u64(): bigint { return this.view.getBigUint64(this.at(8), this.le); }
  i64(): bigint { return this.view.getBigInt64(this.at(8), this.le); }
  f64(): number { return this.view.getFloat64(this.at(8), this.le); }
  bytes(n: number): Uint8Array {
    const o = this.at(n);
    return this.buf.subarray(o, o + n);
  }

  /** a u64 as a number; lengths ≥ 2^53 come back as Infinity (they never fit a file) */
  u64n(): number {
    const o = this.at(8);
    const lo = this.view.getUint32(this.le ? o : o + 4, this.le);
    const hi = this.view.getUint32(this.le ? o + 4 : o, this.le);
    return hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + lo;
  }

  async readU32(what: string): Promise<number> {
    const p = this.need(4, what);
    if (p) await p;
    return this.u32();
  }
  async readU64(what: string): Promise<bigint> {
    const p = this.need(8, what);
    if (p) await p;
    return this.u64();
  }

  /** reads a string length (after need(8)) and checks it against the bytes left */
  length(what: string): number {
    const at = this.pos;
    const n = this.u64n();
    if (n > this.remaining) fail(`${what} length ${Number.isFinite(n) ? n : '≥ 2^53'} at offset ${at} exceeds the ${this.remaining} bytes left`);
    return n;
  }

  /** a GGUF string: the first `keep` bytes decoded, the rest skipped */
  async string(what: string, keep: number): Promise<{ text: string; length: number }> {
    let p = this.need(8, what);
    if (p) await p;
    const length = this.length(what);
    const take = Math.min(length, keep);
    p = this.need(take, what);
    if (p) await p;
    const text = utf8.decode(this.bytes(take));
    this.skip(length - take, what);
    return { text, length };
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const int = (v: bigint): number | string => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());
const float = (v: number): number | string => (Number.isFinite(v) ? v : String(v));
const shown = (s: { text: string; length: number }, keep: number): string => {
  const t = s.text.length > keep ? s.text.slice(0, keep) : s.text;
  return s.length > keep || t !== s.text ? `${t}… [${s.length} bytes]` : t;
};

async function scalar(r: Reader, type: number): Promise<number | string | boolean> {
  const p = r.need(SCALAR_SIZE[type]!, VALUE_TYPE_NAMES[type]!);
  if (p) await p;
  switch (type) {
    case T.UINT8: return r.u8();
    case T.INT8: return r.i8();
    case T.UINT16: return r.u16();
    case T.INT16: return r.i16();
    case T.UINT32: return r.u32();
    case T.INT32: return r.i32();
    case T.FLOAT32: return float(r.f32());
    case T.BOOL: return r.u8() !== 0;
    case T.UINT64: return int(r.u64());
    case T.INT64: return int(r.i64());
    default: return float(r.f64()); // FLOAT64
  }
}

/** smallest encoded size of one value of a type (for bounding counts) */
const minSize = (type: number): number => (type === T.STRING ? 8 : type === T.ARRAY ? 12 : SCALAR_SIZE[type] ?? 1);

/** reads one value; strings kept to `keep` bytes, arrays summarised beyond ARRAY_INLINE items */
async function value(r: Reader, type: number, what: string, keep: number, depth: number): Promise<Json> {
  if (type === T.STRING) return shown(await r.string(what, keep), keep);
  if (type !== T.ARRAY) {
    if (SCALAR_SIZE[type] === undefined) fail(`${what} has unknown value type ${type}`);
    return scalar(r, type);
  }
  if (depth >= MAX_ARRAY_DEPTH) fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
  const itemType = await r.readU32(`${what} array type`);
  if (itemType > T.FLOAT64) fail(`${what} has unknown array item type ${itemType}`);
  const count = await r.readU64(`${what} array count`);
  const min = minSize(itemType);
  if (count * BigInt(min) > BigInt(r.remaining)) fail(`${what}: array of ${count} ${VALUE_TYPE_NAMES[itemType]} values cannot fit in the ${r.remaining} bytes left`);
  const n = Number(count);
  const inline = n <= ARRAY_INLINE;
  const head: Json[] = [];
  const wanted = inline ? n : ARRAY_HEAD;
  let i = 0;
  for (; i < Math.min(n, wanted); i++) head.push(await value(r, itemType, `${what}[${i}]`, Math.min(keep, STRING_KEEP), depth + 1));
  if (i < n) {
    const rest = n - i;
    if (itemType === T.STRING) {
      const item = `${what} item`;
      for (; i < n; i++) {
        const p = r.need(8, item);
        if (p) await p;
        r.skip(r.length(item), item);
      }
    } else if (itemType === T.ARRAY) {
      for (; i < n; i++) await value(r, itemType, `${what}[${i}]`, 0, depth + 1);
    } else r.skip(rest * SCALAR_SIZE[itemType]!, what);
  }
  if (inline) return head;
  return { type: 'array', item_type: VALUE_TYPE_NAMES[itemType]!, count: n, head };
}

interface TensorRecord {
  name: string;
  type: number;
  dims: bigint[];
  elements: bigint;
}

/**
 * Detects GGUF by its magic; a `.gguf` name without the magic, or a GGUF
 * whose structure is broken, is an InvalidModelFileError.
 */
export async function detectGguf(file: FileSource): Promise<FileFormat | undefined> {
  return (await parseGguf(file, { dataSection: true, maxTensors: MAX_TENSORS }))?.format;
}

/** Where a GGUF file's tensors lie: offsets from `dataStart`, in header order, with their ggml type ids. */
export interface GgufTensorLayout {
  littleEndian: boolean;
  /** where the tensor data starts (the header, padded to the alignment) */
  dataStart: number;
  tensors: Array<{ offset: number; type: number }>;
}

/**
 * The tensor layout of a GGUF file, from its header alone (for cutting
 * storage chunks at tensor boundaries while the file streams in): validated
 * as detectGguf does, but the data section is not checked, since the file
 * may not be all there yet; at most `maxTensors` tensors. Undefined without
 * the magic; InvalidModelFileError when the header is broken, its subclass
 * GgufTruncatedError when the file ends inside it.
 */
export async function ggufTensorLayout(file: FileSource, maxTensors: number): Promise<GgufTensorLayout | undefined> {
  return (await parseGguf(file, { dataSection: false, maxTensors }))?.layout;
}

async function parseGguf(file: FileSource, options: { dataSection: boolean; maxTensors: number }): Promise<{ format: FileFormat; layout: GgufTensorLayout } | undefined> {
  const hinted = /\.gguf$/i.test(file.path);
  const head = await file.read(0, Math.min(file.size, 24));
  const magic = head.byteLength >= 4 && MAGIC.every((b, i) => head[i] === b);
  if (!magic) {
    if (hinted) fail(head.byteLength < 4 ? `file is ${file.size} bytes, too short for the magic` : 'bad magic (expected "GGUF")');
    return undefined;
  }
  const r = new Reader(file);
  r.skip(4, 'magic');
  await r.need(4, 'version');
  let version = r.u32();
  if (version > 0xffff) {
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
    if (swapped >= 1 && swapped <= 0xffff) {
      r.le = false;
      version = swapped;
    }
  }
  if (version === 1) fail('GGUF version 1 is not supported (obsolete since 2023, refused by llama.cpp); re-convert the model to GGUF v3');
  if (version !== 2 && version !== 3) fail(`unsupported GGUF version ${version}`);
  if (!r.le && version !== 3) fail('big-endian GGUF requires version 3');

  const tensorCount = await r.readU64('tensor_count');
  const kvCount = await r.readU64('metadata_kv_count');
  if (tensorCount > BigInt(options.maxTensors)) fail(`tensor_count ${tensorCount} exceeds the limit of ${options.maxTensors}`);
  if (kvCount > BigInt(MAX_KV)) fail(`metadata_kv_count ${kvCount} exceeds the limit of ${MAX_KV}`);
  // every key/value needs ≥ 13 bytes (key length, type, 1-byte value), every tensor info ≥ 24
  if (kvCount * 13n + tensorCount * 24n > BigInt(r.remaining)) {
    fail(`${kvCount} key/value pairs and ${tensorCount} tensor infos cannot fit in the ${r.remaining} bytes left`);
  }

  // --- key/value metadata
  const keys = new Set<string>();
  const metadata: Record<string, Json> = {};
  let shownKeys = 0;
  let architecture: string | undefined;
  let name: string | undefined;
  let fileType: number | undefined;
  let alignment = DEFAULT_ALIGNMENT;
  const contextLengths = new Map<string, number | string>();
  let chatTemplate: { length: number; head: string } | undefined;
  const namedTemplates: string[] = [];
  for (let k = 0; k < Number(kvCount); k++) {
    let p = r.need(8, 'key');
    if (p) await p;
    const keyLen = r.length(`key #${k}`);
    if (keyLen > MAX_KEY_BYTES) fail(`key #${k} is ${keyLen} bytes long (limit ${MAX_KEY_BYTES})`);
    p = r.need(keyLen + 4, 'key and value type');
    if (p) await p;
    const keyBytes = r.bytes(keyLen);
    const key = utf8.decode(keyBytes);
    const rawKey = latin1(keyBytes); // byte-exact identity (decoding could merge invalid sequences)
    if (keys.has(rawKey)) fail(`duplicate key ${JSON.stringify(key.slice(0, 200))}`);
    keys.add(rawKey);
    const label = JSON.stringify(key.slice(0, 200));
    const type = r.u32();
    if (type > T.FLOAT64) fail(`key ${label} has unknown value type ${type}`);
    let v: Json;
    if (type === T.STRING) {
      const keep = key === 'tokenizer.chat_template' ? TEMPLATE_KEEP : STRING_KEEP;
      const s = await r.string(`value of ${label}`, keep);
      v = shown(s, STRING_KEEP);
      if (key === 'general.alignment') fail('general.alignment must be an unsigned integer, found string');
      if (key === 'general.architecture') architecture = shown(s, STRING_KEEP);
      else if (key === 'general.name') name = shown(s, STRING_KEEP);
      else if (key === 'tokenizer.chat_template') chatTemplate = { length: s.length, head: s.text.slice(0, TEMPLATE_KEEP) };
      else if (key.startsWith('tokenizer.chat_template.')) namedTemplates.push(key.slice('tokenizer.chat_template.'.length, 200));
    } else {
      v = await value(r, type, `value of ${label}`, STRING_KEEP, 0);
      const integer = typeof v === 'number' && type !== T.FLOAT32 && type !== T.FLOAT64 && type !== T.BOOL && type !== T.ARRAY;
      if (key === 'general.alignment') {
        if (!integer || typeof v !== 'number') fail(`general.alignment must be an unsigned integer, found ${VALUE_TYPE_NAMES[type]}`);
        if (v <= 0 || v > 2 ** 30 || (v & (v - 1)) !== 0) fail(`general.alignment ${v} is not a power of two`);
        alignment = v;
      } else if (key === 'general.file_type' && integer && typeof v === 'number') fileType = v;
      else if (key.endsWith('.context_length') && (typeof v === 'number' || (typeof v === 'string' && type !== T.FLOAT32 && type !== T.FLOAT64))) contextLengths.set(key, v);
    }
    if (shownKeys < DETAILS_MAX_KV) {
      metadata[key.length > STRING_KEEP ? `${key.slice(0, STRING_KEEP)}…` : key] = v;
      shownKeys++;
    }
  }

  // --- tensor infos
  const nTensors = Number(tensorCount);
  const names = new Set<string>();
  const offsets = new Float64Array(nTensors);
  const types = new Uint32Array(nTensors);
  const sizes = new Float64Array(nTensors); // bytes; NaN for unknown types
  const typeCounts: Record<string, number> = {};
  const dtypes: Record<string, number> = {};
  let parameters = 0n;
  let unknownTypes = false;
  const largest: TensorRecord[] = [];
  for (let t = 0; t < nTensors; t++) {
    let p = r.need(8, 'tensor name');
    if (p) await p;
    const nameLen = r.length(`tensor #${t} name`);
    if (nameLen > MAX_TENSOR_NAME_BYTES) fail(`tensor #${t} name is ${nameLen} bytes long (limit ${MAX_TENSOR_NAME_BYTES})`);
    p = r.need(nameLen + 4, 'tensor info');
    if (p) await p;
    const nameBytes = r.bytes(nameLen);
    const tname = utf8.decode(nameBytes);
    const label = JSON.stringify(tname);
    const rawName = latin1(nameBytes);
    if (names.has(rawName)) fail(`duplicate tensor name ${label}`);
    names.add(rawName);
    const nDims = r.u32();
    if (nDims > MAX_DIMS) fail(`tensor ${label} has ${nDims} dimensions (limit ${MAX_DIMS})`);
    p = r.need(nDims * 8 + 12, 'tensor info');
    if (p) await p;
    const dims: bigint[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const ne = r.u64();
      if (ne > INT64_MAX) fail(`tensor ${label} dimension ${d} is ${ne}`);
      dims.push(ne);
      elements *= ne;
      if (elements > INT64_MAX) fail(`tensor ${label} element count overflows int64`);
    }
    const type = r.u32();
    const offset = r.u64();
    if (offset % BigInt(alignment) !== 0n) fail(`tensor ${label} offset ${offset} is not a multiple of the alignment ${alignment}`);
    if (offset > BigInt(r.size)) fail(`tensor ${label} offset ${offset} is beyond the end of the file`);
    offsets[t] = Number(offset);
    types[t] = type;
    const traits = GGML_TYPES[type];
    if (traits) {
      const [, block, bytes] = traits;
      const ne0 = dims[0] ?? 1n;
      if (ne0 % BigInt(block) !== 0n) fail(`tensor ${label} of type ${traits[0]} has ${ne0} elements per row, not a multiple of the block size ${block}`);
      const nbytes = (elements / BigInt(block)) * BigInt(bytes);
      if (nbytes > BigInt(r.size)) fail(`tensor ${label} needs ${nbytes} bytes, more than the file holds`);
      sizes[t] = Number(nbytes);
    } else {
      unknownTypes = true;
      sizes[t] = NaN;
    }
    const tn = ggmlTypeName(type);
    typeCounts[tn] = (typeCounts[tn] ?? 0) + 1;
    const dn = dtypeName(type);
    dtypes[dn] = (dtypes[dn] ?? 0) + Number(elements);
    parameters += elements;
    if (largest.length < LARGEST || elements > largest[largest.length - 1]!.elements) {
      largest.push({ name: tname, type, dims, elements });
      largest.sort((a, b) => (a.elements > b.elements ? -1 : a.elements < b.elements ? 1 : 0));
      if (largest.length > LARGEST) largest.pop();
    }
  }

  // --- data section
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  if (options.dataSection && nTensors > 0) {
    if (dataStart > r.size) fail(`data section starts at ${dataStart}, beyond the end of the ${r.size}-byte file`);
    const dataSize = r.size - dataStart;
    const order = Array.from({ length: nTensors }, (_, i) => i).sort((a, b) => offsets[a]! - offsets[b]!);
    let prevEnd = 0;
    let prev = -1;
    for (const i of order) {
      const off = offsets[i]!;
      const size = sizes[i]!;
      if (off < prevEnd) fail(`tensor data overlap: tensor #${i} at offset ${off} starts before tensor #${prev} ends (${prevEnd})`);
      const end = off + (Number.isNaN(size) ? 0 : size);
      if (end > dataSize) fail(`tensor #${i} data [${dataStart + off}, ${dataStart + end}) extends past the end of the ${r.size}-byte file (truncated?)`);
      prevEnd = end;
      prev = i;
    }
  }

  const details: Record<string, unknown> = {
    version,
    ...(r.le ? {} : { endianness: 'big' }),
    tensors: nTensors,
    metadata_keys: Number(kvCount),
    alignment,
    data_offset: dataStart,
    header_size: r.pos,
    tensor_types: typeCounts,
  };
  if (architecture !== undefined) details.architecture = architecture;
  if (name !== undefined) details.name = name;
  if (fileType !== undefined) details.file_type = { id: fileType, name: FILE_TYPES[fileType] ?? `unknown_${fileType}` };
  const ctx = architecture !== undefined ? contextLengths.get(`${architecture}.context_length`) : undefined;
  if (ctx !== undefined) details.context_length = ctx;
  if (chatTemplate) details.chat_template = { present: true, length: chatTemplate.length, head: chatTemplate.head, ...(namedTemplates.length ? { named: namedTemplates.slice(0, 16) } : {}) };
  else if (namedTemplates.length) details.chat_template = { present: true, named: namedTemplates.slice(0, 16) };
  if (unknownTypes) details.unknown_tensor_types = true;
  details.largest_tensors = largest.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), shape: t.dims.map(int), elements: int(t.elements) }));
  details.metadata = metadata;
  if (shownKeys < Number(kvCount)) details.metadata_truncated = true;

  return {
    format: { format: FORMAT, framework: 'gguf', parameters: Number(parameters), dtypes, safety: { ...SAFE, findings: [] }, details },
    layout: { littleEndian: r.le, dataStart, tensors: Array.from(offsets, (offset, i) => ({ offset, type: types[i]! })) },
  };
}
