// An ONNX model held as its skeleton: everything but the payloads of large
// tensors, decoded with protobufjs; the payloads stay in the source file.
//
// Reading: a walk over the wire format (src/formats/protobuf.ts) copies the
// model's bytes field by field, descending only into the messages that can
// hold tensors (graph → node → attribute → tensor, initializers, sparse
// tensors, subgraphs). A TensorProto whose data fields (raw_data, float_data,
// …) total STRIP_AT bytes or more is copied without them, marked with an
// `external_data` entry naming where they are; protobufjs then decodes the
// stripped copy, and the marks become entries of `payloads`.
//
// Writing: messages without a large payload below them are encoded by
// protobufjs; the others field by field, in field-number order, with each
// large payload streamed: the original fields copied from the file, or a
// transform's new raw_data. Every length is known before the first byte.
//
// Memory: the skeleton (about the size of the model minus its large tensors),
// decoded and re-encoded, plus one window per streamed payload.
import { CairnError } from '../errors.ts';
import { ProtobufError, PbReader, WIRE_LEN, type PbField } from '../formats/protobuf.ts';
import { cachedSource, bufferSource } from '../formats/sources.ts';
import type { FileSource } from '../formats/types.ts';
import protobuf from 'protobufjs';
import { DT, onnxSchema, toNumber, type GraphProto, type ModelProto, type NodeProto, type SparseTensorProto, type TensorProto } from './onnx-schema.ts';
import { rangeStream, type ByteRange, type ByteStream } from './stream.ts';

/** Tensor payloads at least this large stay in the file while the skeleton is in memory. */
export const STRIP_AT = 4096;
const MARK = 'cairn.derive.payload';
const READ_PIECE = 16 << 20;

type Kind = 'model' | 'graph' | 'node' | 'attribute' | 'tensor' | 'sparse';

/** Which fields of which message can hold tensors (everything else is copied as is). */
const CHILDREN: Record<Kind, Record<number, Kind>> = {
  model: { 7: 'graph' },
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  node: { 5: 'attribute' },
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  sparse: { 1: 'tensor', 2: 'tensor' },
  tensor: {},
};

/** TensorProto data fields: float_data, int32_data, int64_data, raw_data, double_data, uint64_data. */
const DATA_FIELDS = new Set([4, 5, 7, 9, 10, 11]);

interface SourceField {
  num: number;
  /** the whole field, tag included: [tagAt, end) */
  tagAt: number;
  end: number;
  /** its payload */
  offset: number;
  length: number;
}

/** A payload: the original data fields in the file, or new raw_data. */
type Payload = { kind: 'source'; fields: SourceField[] } | { kind: 'new'; data: ByteStream };

/** Element widths of the types whose payload can be read as little-endian raw bytes. */
const WIDTH: Record<number, number> = {
  [DT.FLOAT]: 4,
  [DT.UINT8]: 1,
  [DT.INT8]: 1,
  [DT.INT32]: 4,
  [DT.INT64]: 8,
  [DT.FLOAT16]: 2,
  [DT.DOUBLE]: 8,
  [DT.BFLOAT16]: 2,
};

function invalid(message: string): CairnError {
  return new CairnError('INVALID_MODEL_FILE', `invalid ONNX model: ${message}`);
}

// --- wire helpers ----------------------------------------------------------------

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** Tag and length of a length-delimited field. */
function lenPrefix(num: number, length: number): Uint8Array {
  const tag = varint(num * 8 + WIRE_LEN);
  const len = varint(length);
  const out = new Uint8Array(tag.byteLength + len.byteLength);
  out.set(tag);
  out.set(len, tag.byteLength);
  return out;
}

type Part = Uint8Array | ByteStream;

const partsLength = (parts: Part[]): number => parts.reduce((n, p) => n + p.byteLength, 0);

async function readBytes(file: FileSource, begin: number, end: number): Promise<Uint8Array> {
  const out = new Uint8Array(end - begin);
  for (let at = begin; at < end; at += READ_PIECE) {
    const n = Math.min(READ_PIECE, end - at);
    const b = await file.read(at, n);
    if (b.byteLength !== n) throw invalid(`truncated at ${at}`);
    out.set(b, at - begin);
  }
  return out;
}

// --- reading ---------------------------------------------------------------------

class Stripper {
  readonly payloads: SourceField[][] = [];
  constructor(readonly file: FileSource) {}

  /** The message in `r` with large tensor payloads cut out, as parts (all in memory). */
  async strip(r: PbReader, kind: Kind, depth: number): Promise<Uint8Array[]> {
    if (depth > 64) throw invalid('graphs nested more than 64 deep');
    const parts: Uint8Array[] = [];
    const data: SourceField[] = [];
    let runStart = r.pos;
    let runEnd = r.pos;
    const flush = async (): Promise<void> => {
      if (runEnd > runStart) parts.push(await readBytes(this.file, runStart, runEnd));
    };
    for (;;) {
      const tagAt = r.pos;
      let f: PbField | undefined;
      try {
        f = await r.next();
      } catch (e) {
        if (e instanceof ProtobufError) throw invalid(e.message);
        throw e;
      }
      if (!f) break;
      const child = CHILDREN[kind][f.num];
      const isData = kind === 'tensor' && DATA_FIELDS.has(f.num) && f.wire === WIRE_LEN;
      if (kind === 'tensor' && (f.num === 13 || (f.num === 14 && f.value !== 0))) {
        throw new CairnError('INVALID_ARGUMENT', 'ONNX models with external data (tensors stored in other files) cannot be derived; save the model as one file');
      }
      if ((child && f.wire === WIRE_LEN) || isData) {
        await flush();
        if (isData) data.push({ num: f.num, tagAt, end: r.pos, offset: f.offset, length: f.length });
        else {
          const sub = await this.strip(await r.message(f), child!, depth + 1);
          parts.push(lenPrefix(f.num, sub.reduce((n, p) => n + p.byteLength, 0)), ...sub);
        }
        runStart = runEnd = r.pos;
      } else runEnd = r.pos;
    }
    await flush();
    if (data.length > 0) {
      const total = data.reduce((n, d) => n + d.length, 0);
      if (total >= STRIP_AT) {
        const id = this.payloads.push(data) - 1;
        const { StringStringEntryProto } = onnxSchema();
        const entry = StringStringEntryProto.encode({ key: MARK, value: String(id) }).finish();
        parts.push(lenPrefix(13, entry.byteLength), entry);
      } else {
        for (const d of data) parts.push(await readBytes(this.file, d.tagAt, d.end));
      }
    }
    return parts;
  }
}

export class OnnxModel {
  readonly file: FileSource;
  readonly proto: ModelProto;
  private readonly payloads = new Map<TensorProto, Payload>();

  private constructor(file: FileSource, proto: ModelProto) {
    this.file = file;
    this.proto = proto;
  }

  /** Reads `file`'s skeleton; large tensor payloads are left in the file. */
  static async read(source: FileSource): Promise<OnnxModel> {
    const file = cachedSource(source);
    const stripper = new Stripper(file);
    const parts = await stripper.strip(PbReader.of(file), 'model', 0);
    const skeleton = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      skeleton.set(p, at);
      at += p.byteLength;
    }
    let proto: ModelProto;
    try {
      proto = onnxSchema().ModelProto.decode(skeleton) as unknown as ModelProto;
    } catch (e) {
      throw invalid((e as Error).message);
    }
    if (!proto.graph) throw invalid('no graph');
    const model = new OnnxModel(file, proto);
    forEachTensor(proto.graph, (t) => {
      const mark = t.external_data?.find((e) => e.key === MARK);
      if (!mark) return;
      t.external_data = t.external_data!.filter((e) => e !== mark);
      model.payloads.set(t, { kind: 'source', fields: stripper.payloads[Number(mark.value)]! });
    });
    return model;
  }

  /** The tensor's payload as raw little-endian bytes, readable in windows; undefined when its type or encoding has none. */
  rawData(t: TensorProto): ByteRange | undefined {
    const width = WIDTH[t.data_type ?? 0];
    if (!width) return undefined;
    const elements = tensorElements(t);
    const payload = this.payloads.get(t);
    let range: ByteRange | undefined;
    if (payload) {
      if (payload.kind !== 'source' || payload.fields.length !== 1) return undefined;
      const f = payload.fields[0]!;
      const raw = f.num === 9 || (f.num === 4 && t.data_type === DT.FLOAT) || (f.num === 10 && t.data_type === DT.DOUBLE);
      if (!raw) return undefined;
      range = { file: this.file, begin: f.offset, end: f.offset + f.length };
    } else {
      const bytes = inMemoryRaw(t);
      if (!bytes) return undefined;
      range = { file: bufferSource(t.name ?? '', bytes), begin: 0, end: bytes.byteLength };
    }
    if (range.end - range.begin !== elements * width) {
      throw invalid(`tensor ${t.name ?? ''} holds ${range.end - range.begin} bytes for ${elements} elements of ${width} bytes`);
    }
    return range;
  }

  /** Replaces the tensor's data with `data` (raw little-endian bytes of `dataType`). */
  setData(t: TensorProto, dataType: number, data: ByteStream): void {
    for (const key of ['float_data', 'int32_data', 'int64_data', 'double_data', 'uint64_data', 'string_data'] as const) {
      if (t[key]?.length) t[key] = [];
    }
    delete t.raw_data;
    t.data_type = dataType;
    this.payloads.set(t, { kind: 'new', data });
  }

  /** A new tensor whose raw_data is `data` (small tensors: scales, zero points). */
  static tensor(name: string, dataType: number, dims: number[], data: Uint8Array): TensorProto {
    return { name, data_type: dataType, dims, raw_data: data };
  }

  /** The model's bytes: length known, streamed. */
  encode(): ByteStream {
    const s = onnxSchema();
    const heavy = new WeakMap<object, boolean>();
    const isHeavy = (kind: Kind, msg: object): boolean => {
      const known = heavy.get(msg);
      if (known !== undefined) return known;
      let result = false;
      if (kind === 'tensor') result = this.payloads.has(msg as TensorProto);
      else {
        for (const [num, child] of Object.entries(CHILDREN[kind])) {
          const field = typeOf(kind).fieldsById[Number(num)]!;
          const v = (msg as Record<string, unknown>)[field.name];
          const items = Array.isArray(v) ? v : v ? [v] : [];
          if (items.some((m) => isHeavy(child, m as object))) {
            result = true;
            break;
          }
        }
      }
      heavy.set(msg, result);
      return result;
    };
    const typeOf = (kind: Kind): protobuf.Type =>
      ({ model: s.ModelProto, graph: s.GraphProto, node: s.NodeProto, attribute: s.AttributeProto, tensor: s.TensorProto, sparse: s.SparseTensorProto })[kind];
    const encodeMessage = (kind: Kind, msg: object): Part[] => {
      const type = typeOf(kind);
      if (!isHeavy(kind, msg)) return [type.encode(msg).finish()];
      if (kind === 'tensor') return [type.encode(msg).finish(), ...this.payloadParts(msg as TensorProto)];
      const parts: Part[] = [];
      const record = msg as Record<string, unknown>;
      for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
        const v = record[field.name];
        if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
        if (!Array.isArray(v) && !Object.prototype.hasOwnProperty.call(msg, field.name)) continue; // proto2: unset
        const child = CHILDREN[kind][field.id];
        const items = Array.isArray(v) ? v : [v];
        if (!child || !items.some((m) => isHeavy(child, m as object))) {
          parts.push(type.encode({ [field.name]: v }).finish());
          continue;
        }
        for (const item of items) {
          const sub = encodeMessage(child, item as object);
          parts.push(lenPrefix(field.id, partsLength(sub)), ...sub);
        }
      }
      return parts;
    };
    const parts = encodeMessage('model', this.proto);
    return {
      byteLength: partsLength(parts),
      async *chunks() {
        for (const p of parts) {
          if (p instanceof Uint8Array) yield p;
          else yield* p.chunks();
        }
      },
    };
  }

  private payloadParts(t: TensorProto): Part[] {
    const payload = this.payloads.get(t)!;
    if (payload.kind === 'new') return [lenPrefix(9, payload.data.byteLength), payload.data];
    return payload.fields.map((f) => rangeStream({ file: this.file, begin: f.tagAt, end: f.end }));
  }
}

/** Raw little-endian bytes of an in-memory tensor's data (raw_data, or the typed repeated fields). */
function inMemoryRaw(t: TensorProto): Uint8Array | undefined {
  if (t.raw_data && t.raw_data.byteLength > 0) return t.raw_data;
  const asBytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.data_type) {
    case DT.FLOAT:
      return asBytes(Float32Array.from(t.float_data ?? []));
    case DT.DOUBLE:
      return asBytes(Float64Array.from(t.double_data ?? []));
    case DT.FLOAT16:
    case DT.BFLOAT16:
      return asBytes(Uint16Array.from(t.int32_data ?? []));
    case DT.INT32:
      return asBytes(Int32Array.from(t.int32_data ?? []));
    case DT.INT8:
      return asBytes(Int8Array.from(t.int32_data ?? []));
    case DT.UINT8:
      return asBytes(Uint8Array.from(t.int32_data ?? []));
    case DT.INT64:
      return asBytes(BigInt64Array.from((t.int64_data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()))));
    default:
      return undefined;
  }
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

export function tensorElements(t: TensorProto): number {
  const n = tensorDims(t).reduce((a, d) => a * d, 1);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`tensor ${t.name ?? ''} has an impossible shape`);
  return n;
}

/** Every tensor in the graph and its subgraphs: initializers, node attribute tensors, sparse tensor parts. */
export function forEachTensor(graph: GraphProto, fn: (t: TensorProto) => void): void {
  const sparse = (s: SparseTensorProto): void => {
    if (s.values) fn(s.values);
    if (s.indices) fn(s.indices);
  };
  for (const t of graph.initializer ?? []) fn(t);
  for (const s of graph.sparse_initializer ?? []) sparse(s);
  for (const node of graph.node ?? []) forEachNodeTensor(node, fn, sparse);
}

function forEachNodeTensor(node: NodeProto, fn: (t: TensorProto) => void, sparse: (s: SparseTensorProto) => void): void {
  for (const a of node.attribute ?? []) {
    if (a.t) fn(a.t);
    for (const t of a.tensors ?? []) fn(t);
    if (a.sparse_tensor) sparse(a.sparse_tensor);
    for (const s of a.sparse_tensors ?? []) sparse(s);
    if (a.g) forEachTensor(a.g, fn);
    for (const g of a.graphs ?? []) forEachTensor(g, fn);
  }
}
