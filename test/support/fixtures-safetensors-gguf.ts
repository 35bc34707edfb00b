// Test fixtures for the safetensors and GGUF detectors, built byte by byte.
// Builders record where their length/count fields are so that the fuzzer can
// aim mutations at them.
import type { FileSource } from '../../src/formats/types.ts';

// ---------------------------------------------------------------------------
// deterministic PRNG

export { prng } from './prng.ts';

export function patternBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** wraps a source and records every read */
export function recordingSource(inner: FileSource): FileSource & { reads: Array<[number, number]>; maxRead: number; totalRead: number } {
  const reads: Array<[number, number]> = [];
  const src = {
    path: inner.path,
    size: inner.size,
    reads,
    maxRead: 0,
    totalRead: 0,
    async read(offset: number, length: number) {
      reads.push([offset, length]);
      const b = await inner.read(offset, length);
      src.maxRead = Math.max(src.maxRead, length);
      src.totalRead += b.byteLength;
      return b;
    },
  };
  return src;
}

// ---------------------------------------------------------------------------
// safetensors

/** bits per element, as in the reference */
export const ST_BITS: Record<string, number> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
};

export interface StTensor {
  name: string;
  dtype: string;
  shape: number[];
}

export interface StOptions {
  metadata?: Record<string, string> | null;
  /** bytes before the JSON (e.g. whitespace) */
  leading?: string;
  /** pad the header with spaces to a multiple of 8 (default true) */
  pad?: boolean;
  /** extra bytes after the data buffer */
  trailing?: number;
}

/** a valid safetensors file: tensors laid out in the given order */
export function buildSafetensors(tensors: StTensor[], opts: StOptions = {}): { bytes: Uint8Array; headerSize: number; dataStart: number } {
  const entries: string[] = [];
  if (opts.metadata !== undefined) entries.push(`"__metadata__":${JSON.stringify(opts.metadata)}`);
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const size = (n * ST_BITS[t.dtype]!) / 8;
    entries.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + size}]}`);
    offset += size;
  }
  return rawSafetensors(`${opts.leading ?? ''}{${entries.join(',')}}`, offset + (opts.trailing ?? 0), opts.pad ?? true);
}

/** a header given as JSON text followed by `dataLength` pattern bytes */
export function rawSafetensors(headerJson: string | Uint8Array, dataLength: number, pad = true, lengthField?: bigint): { bytes: Uint8Array; headerSize: number; dataStart: number } {
  let header = typeof headerJson === 'string' ? new TextEncoder().encode(headerJson) : headerJson;
  if (pad && header.byteLength % 8) header = concat([header, new Uint8Array(8 - (header.byteLength % 8)).fill(0x20)]);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, lengthField ?? BigInt(header.byteLength), true);
  return { bytes: concat([len, header, patternBytes(dataLength, header.byteLength)]), headerSize: header.byteLength, dataStart: 8 + header.byteLength };
}

/** the main valid fixture: BF16, F32 and I8 tensors plus __metadata__ */
export const ST_VALID_TENSORS: StTensor[] = [
  { name: 'encoder.weight', dtype: 'BF16', shape: [16, 8] },
  { name: 'encoder.bias', dtype: 'F32', shape: [16] },
  { name: 'quant.scales', dtype: 'I8', shape: [3, 5] },
  { name: 'head.weight', dtype: 'F32', shape: [4, 16] },
  { name: 'scalar', dtype: 'F32', shape: [] },
];
export const ST_VALID_METADATA = { format: 'pt', producer: 'cairn-test', long: 'x'.repeat(5000) };

export function validSafetensors(): { bytes: Uint8Array; headerSize: number; dataStart: number } {
  return buildSafetensors(ST_VALID_TENSORS, { metadata: ST_VALID_METADATA });
}

// ---------------------------------------------------------------------------
// GGUF

export const GGUF_TYPE = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6,
  BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

/** ggml types used by fixtures: [block size, bytes per block] */
export const GGML = {
  F32: [0, 1, 4], F16: [1, 1, 2], Q4_0: [2, 32, 18], Q8_0: [8, 32, 34], Q4_K: [12, 256, 144], Q6_K: [14, 256, 210],
  I8: [24, 1, 1], BF16: [30, 1, 2], IQ4_XS: [23, 256, 136], TQ2_0: [35, 256, 66],
} as const satisfies Record<string, readonly [number, number, number]>;

export type GgufValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'u64' | 'i64' | 'f64'; value: number | bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; item: GgufItemType; value: Array<number | bigint | boolean | string | GgufValue> };
type GgufItemType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'u64' | 'i64' | 'f64' | 'bool' | 'string' | 'array';

const TYPE_ID: Record<GgufItemType, number> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};

export interface GgufTensor {
  name: string;
  /** ggml dims, innermost first */
  dims: number[];
  /** ggml type id */
  type: number;
  /** data bytes; computed from the type when omitted (types outside GGML need it) */
  bytes?: number;
  /** override the computed offset */
  offset?: bigint;
}

export interface GgufOptions {
  version?: number;
  bigEndian?: boolean;
  kv?: Array<[string, GgufValue]>;
  tensors?: GgufTensor[];
  /** the alignment used for layout (write `general.alignment` yourself in kv) */
  alignment?: number;
  tensorCount?: bigint;
  kvCount?: bigint;
  /** drop this many bytes from the end */
  cut?: number;
}

export interface Built {
  bytes: Uint8Array;
  /** offsets of u64 count/length fields (fuzz targets) */
  u64Fields: number[];
  /** offsets of u32 type/ndims fields */
  u32Fields: number[];
  dataStart: number;
}

function ggmlBytes(t: GgufTensor): number {
  if (t.bytes !== undefined) return t.bytes;
  const traits = Object.values(GGML).find(([id]) => id === t.type);
  if (!traits) throw new Error(`fixture: give bytes for ggml type ${t.type}`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  return (n / traits[1]) * traits[2];
}

class Writer {
  parts: number[] = [];
  u64Fields: number[] = [];
  u32Fields: number[] = [];
  constructor(readonly le: boolean) {}
  get pos(): number {
    return this.parts.length;
  }
  private num(bytes: number, set: (v: DataView) => void): void {
    const b = new Uint8Array(bytes);
    set(new DataView(b.buffer));
    for (const x of b) this.parts.push(x);
  }
  u8(v: number): void { this.num(1, (d) => d.setUint8(0, v)); }
  i8(v: number): void { this.num(1, (d) => d.setInt8(0, v)); }
  u16(v: number): void { this.num(2, (d) => d.setUint16(0, v, this.le)); }
  i16(v: number): void { this.num(2, (d) => d.setInt16(0, v, this.le)); }
  u32(v: number, field = false): void {
    if (field) this.u32Fields.push(this.pos);
    this.num(4, (d) => d.setUint32(0, v, this.le));
  }
  i32(v: number): void { this.num(4, (d) => d.setInt32(0, v, this.le)); }
  f32(v: number): void { this.num(4, (d) => d.setFloat32(0, v, this.le)); }
  f64(v: number): void { this.num(8, (d) => d.setFloat64(0, v, this.le)); }
  u64(v: number | bigint, field = false): void {
    if (field) this.u64Fields.push(this.pos);
    this.num(8, (d) => d.setBigUint64(0, BigInt(v), this.le));
  }
  i64(v: number | bigint): void { this.num(8, (d) => d.setBigInt64(0, BigInt(v), this.le)); }
  bytes(b: Uint8Array): void {
    for (const x of b) this.parts.push(x);
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.byteLength, true);
    this.bytes(b);
  }
  item(type: GgufItemType, v: number | bigint | boolean | string | GgufValue): void {
    switch (type) {
      case 'u8': return this.u8(Number(v));
      case 'i8': return this.i8(Number(v));
      case 'u16': return this.u16(Number(v));
      case 'i16': return this.i16(Number(v));
      case 'u32': return this.u32(Number(v));
      case 'i32': return this.i32(Number(v));
      case 'f32': return this.f32(Number(v));
      case 'f64': return this.f64(Number(v));
      case 'u64': return this.u64(v as number | bigint);
      case 'i64': return this.i64(v as number | bigint);
      case 'bool': return this.u8(v ? 1 : 0);
      case 'string': return this.string(String(v));
      case 'array': {
        const a = v as GgufValue & { type: 'array' };
        this.u32(TYPE_ID[a.item], true);
        this.u64(a.value.length, true);
        for (const x of a.value) this.item(a.item, x);
      }
    }
  }
  value(v: GgufValue): void {
    this.u32(TYPE_ID[v.type], true);
    this.item(v.type, v.type === 'array' ? v : v.value);
  }
}

export function buildGguf(o: GgufOptions = {}): Built {
  const w = new Writer(!o.bigEndian);
  const version = o.version ?? 3;
  const kv = o.kv ?? [];
  const tensors = o.tensors ?? [];
  const alignment = o.alignment ?? 32;
  w.bytes(new TextEncoder().encode('GGUF'));
  w.u32(version);
  w.u64(o.tensorCount ?? tensors.length, true);
  w.u64(o.kvCount ?? kv.length, true);
  for (const [k, v] of kv) {
    w.string(k);
    w.value(v);
  }
  let offset = 0n;
  const sizes = tensors.map(ggmlBytes);
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length, true);
    for (const d of t.dims) w.u64(d, true);
    w.u32(t.type, true);
    w.u64(t.offset ?? offset, true);
    offset += BigInt(Math.ceil(sizes[i]! / alignment) * alignment);
  });
  while (w.pos % alignment) w.u8(0);
  const dataStart = w.pos;
  tensors.forEach((_, i) => {
    w.bytes(patternBytes(sizes[i]!, i + 7));
    while ((w.pos - dataStart) % alignment) w.u8(0);
  });
  let bytes = Uint8Array.from(w.parts);
  if (o.cut) bytes = bytes.subarray(0, bytes.byteLength - o.cut);
  return { bytes, u64Fields: w.u64Fields, u32Fields: w.u32Fields, dataStart };
}

export const CHAT_TEMPLATE = "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '</s>\\n' }}{% endfor %}";

/** a small llama-like GGUF v3 (or v2) with arrays, strings and several tensor types */
export function validGguf(o: Partial<GgufOptions> = {}): Built {
  const tokens = Array.from({ length: 300 }, (_, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i]! : `tok${i}`));
  return buildGguf({
    version: 3,
    kv: [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['general.name', { type: 'string', value: 'Cairn Tiny Llama' }],
      ['general.file_type', { type: 'u32', value: 15 }],
      ['general.quantization_version', { type: 'u32', value: 2 }],
      ['general.alignment', { type: 'u32', value: 64 }],
      ['llama.context_length', { type: 'u32', value: 4096 }],
      ['llama.embedding_length', { type: 'u32', value: 256 }],
      ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
      ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
      ['general.size_bytes', { type: 'u64', value: 2n ** 60n }],
      ['general.signed', { type: 'i64', value: -5n }],
      ['general.flag', { type: 'bool', value: true }],
      ['general.tags', { type: 'array', item: 'string', value: ['text-generation', 'test'] }],
      ['llama.rope.sections', { type: 'array', item: 'i32', value: [1, 2, 3, 4] }],
      ['general.nested', { type: 'array', item: 'array', value: [{ type: 'array', item: 'u8', value: [1, 2] }, { type: 'array', item: 'string', value: ['a'] }] }],
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: 'array', item: 'string', value: tokens }],
      ['tokenizer.ggml.scores', { type: 'array', item: 'f32', value: tokens.map((_, i) => -i) }],
      ['tokenizer.ggml.token_type', { type: 'array', item: 'i32', value: tokens.map(() => 1) }],
      ['tokenizer.chat_template', { type: 'string', value: CHAT_TEMPLATE }],
      ['general.description', { type: 'string', value: 'd'.repeat(1000) }],
    ],
    alignment: 64,
    tensors: [
      { name: 'token_embd.weight', dims: [256, 300], type: GGML.Q4_K[0] },
      { name: 'blk.0.attn_q.weight', dims: [256, 256], type: GGML.Q6_K[0] },
      { name: 'blk.0.attn_norm.weight', dims: [256], type: GGML.F32[0] },
      { name: 'blk.0.ffn_up.weight', dims: [64, 32], type: GGML.Q8_0[0] },
      { name: 'blk.0.ffn_down.weight', dims: [32, 64], type: GGML.Q4_0[0] },
      { name: 'blk.0.ffn_gate.weight', dims: [32, 8], type: GGML.F16[0] },
      { name: 'blk.0.bf16.weight', dims: [8, 2, 2], type: GGML.BF16[0] },
      { name: 'output.weight', dims: [256, 4], type: GGML.IQ4_XS[0] },
    ],
    ...o,
  });
}
