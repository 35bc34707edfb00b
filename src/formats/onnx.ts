// ONNX (ModelProto, onnx.proto3). ONNX has no magic number: a file is ONNX
// when its extension says so, or when its top level parses as a ModelProto
// with a plausible ir_version and a graph. Weights are counted from graph
// initializers, sparse initializers and the value tensors of Constant nodes
// (also inside If/Loop/Scan subgraphs); tensor payloads (raw_data, float_data…)
// are skipped by length, never read.
import { PbReader, ProtobufError, expectWire, WIRE_LEN, WIRE_VARINT, type PbField } from './protobuf.ts';
import { InvalidModelFileError, safetyOf, type Detector, type FileFormat, type FileSource, type TensorInfo } from './types.ts';

/** TensorProto.DataType → dtype name. */
const ONNX_DTYPES: Record<number, string> = {
  0: 'undefined',
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
  24: 'float8e8m0',
};

export function onnxDtype(code: number): string {
  return ONNX_DTYPES[code] ?? `unknown(${code})`;
}

const STANDARD_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml']);
const MAX_IR_VERSION = 20;
const MAX_DIMS = 1024;
const MAX_GRAPH_DEPTH = 32;
const MAX_LISTED = 256; // inputs/outputs/op types/domains kept
const MAX_EXTERNAL_LISTED = 64;
const MAX_STRING = 1024;

interface ExternalRef {
  tensor: string;
  location?: string;
  offset?: number;
  length?: number;
}

interface TensorSummary {
  name: string;
  dataType: number;
  elements: number;
  external?: ExternalRef;
}

interface Ctx {
  parameters: number;
  dtypes: Record<string, number>;
  tensors: number;
  initializers: number;
  constants: number;
  nodes: number;
  subgraphs: number;
  skippedSubgraphs: number;
  opTypes: Map<string, number>;
  customDomains: Set<string>;
  customOps: Set<string>;
  external: ExternalRef[];
  externalCount: number;
  externalFiles: Set<string>;
  initializerNames: Set<string>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  moreInputs: number;
  moreOutputs: number;
  graphName?: string;
}

async function readTensor(r: PbReader): Promise<TensorSummary> {
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let location = 0;
  const ext: Record<string, string> = {};
  for (let f: PbField | undefined; (f = await r.next()); ) {
    switch (f.num) {
      case 1: // dims, packed or not
        dims.push(...(await r.varints(f, MAX_DIMS)));
        if (dims.length > MAX_DIMS) throw new ProtobufError(`tensor with more than ${MAX_DIMS} dims`);
        break;
      case 2:
        expectWire(f, WIRE_VARINT, 'TensorProto.data_type');
        dataType = f.value;
        break;
      case 8:
        expectWire(f, WIRE_LEN, 'TensorProto.name');
        name = await r.string(f, MAX_STRING);
        break;
      case 13: {
        expectWire(f, WIRE_LEN, 'TensorProto.external_data');
        const e = await r.message(f);
        let key = '';
        let value = '';
        for (let g: PbField | undefined; (g = await e.next()); ) {
          if (g.num === 1) key = await e.string(g, MAX_STRING);
          else if (g.num === 2) value = await e.string(g, MAX_STRING);
        }
        if (Object.keys(ext).length < 16) ext[key] = value;
        break;
      }
      case 14:
        expectWire(f, WIRE_VARINT, 'TensorProto.data_location');
        location = f.value;
        break;
      default:
        break; // data fields and doc strings: skipped by length
    }
  }
  let elements = 1;
  for (const d of dims) {
    if (d < 0) throw new ProtobufError(`tensor ${name}: negative dimension ${d}`);
    elements *= d;
  }
  if (!Number.isSafeInteger(elements)) throw new ProtobufError(`tensor ${name}: element count out of range`);
  const t: TensorSummary = { name, dataType, elements };
  if (location === 1 || Object.keys(ext).length > 0) {
    const ref: ExternalRef = { tensor: name };
    if (ext.location !== undefined) ref.location = ext.location;
    const off = ext.offset !== undefined ? Number(ext.offset) : undefined;
    const len = ext.length !== undefined ? Number(ext.length) : undefined;
    if (off !== undefined && Number.isSafeInteger(off)) ref.offset = off;
    if (len !== undefined && Number.isSafeInteger(len)) ref.length = len;
    t.external = ref;
  }
  return t;
}

/** SparseTensorProto: values(1) TensorProto, indices(2), dims(3). Counts the stored values. */
async function readSparseTensor(r: PbReader): Promise<TensorSummary | undefined> {
  let values: TensorSummary | undefined;
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 1) {
      expectWire(f, WIRE_LEN, 'SparseTensorProto.values');
      values = await readTensor(await r.message(f));
    }
  }
  return values;
}

function addTensor(ctx: Ctx, t: TensorSummary): void {
  ctx.tensors++;
  ctx.parameters += t.elements;
  const dt = onnxDtype(t.dataType);
  ctx.dtypes[dt] = (ctx.dtypes[dt] ?? 0) + t.elements;
  if (t.external) {
    ctx.externalCount++;
    if (ctx.external.length < MAX_EXTERNAL_LISTED) ctx.external.push(t.external);
    if (t.external.location !== undefined && ctx.externalFiles.size < MAX_LISTED) ctx.externalFiles.add(t.external.location);
  }
}

/** TypeProto → dtype and shape. */
async function readType(r: PbReader): Promise<{ dtype: string; shape: Array<number | string> }> {
  let dtype = 'unknown';
  let shape: Array<number | string> = [];
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 1 || f.num === 8) {
      // tensor_type / sparse_tensor_type: elem_type(1), shape(2)
      expectWire(f, WIRE_LEN, 'TypeProto.tensor_type');
      const t = await r.message(f);
      dtype = onnxDtype(0);
      for (let g: PbField | undefined; (g = await t.next()); ) {
        if (g.num === 1) {
          expectWire(g, WIRE_VARINT, 'TypeProto.Tensor.elem_type');
          dtype = onnxDtype(g.value);
        } else if (g.num === 2) {
          expectWire(g, WIRE_LEN, 'TypeProto.Tensor.shape');
          shape = await readShape(await t.message(g));
        }
      }
      if (f.num === 8) dtype = `sparse(${dtype})`;
    } else if (f.num === 4) dtype = 'sequence';
    else if (f.num === 5) dtype = 'map';
    else if (f.num === 9) dtype = 'optional';
  }
  return { dtype, shape };
}

/** TensorShapeProto: dim(1) { dim_value(1) | dim_param(2) }. */
async function readShape(r: PbReader): Promise<Array<number | string>> {
  const shape: Array<number | string> = [];
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num !== 1) continue;
    expectWire(f, WIRE_LEN, 'TensorShapeProto.dim');
    if (shape.length >= MAX_DIMS) throw new ProtobufError(`shape with more than ${MAX_DIMS} dims`);
    const d = await r.message(f);
    let dim: number | string = '?';
    for (let g: PbField | undefined; (g = await d.next()); ) {
      if (g.num === 1) {
        expectWire(g, WIRE_VARINT, 'Dimension.dim_value');
        dim = g.signed;
      } else if (g.num === 2) {
        expectWire(g, WIRE_LEN, 'Dimension.dim_param');
        dim = await d.string(g, MAX_STRING);
      }
    }
    shape.push(dim);
  }
  return shape;
}

/** ValueInfoProto: name(1), type(2). */
async function readValueInfo(r: PbReader): Promise<TensorInfo> {
  let name = '';
  let dtype = 'unknown';
  let shape: Array<number | string> = [];
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 1) {
      expectWire(f, WIRE_LEN, 'ValueInfoProto.name');
      name = await r.string(f, MAX_STRING);
    } else if (f.num === 2) {
      expectWire(f, WIRE_LEN, 'ValueInfoProto.type');
      ({ dtype, shape } = await readType(await r.message(f)));
    }
  }
  return { name, dtype, shape };
}

async function readNode(r: PbReader, ctx: Ctx, depth: number): Promise<void> {
  ctx.nodes++;
  let opType = '';
  let domain = '';
  const valueTensors: TensorSummary[] = [];
  for (let f: PbField | undefined; (f = await r.next()); ) {
    switch (f.num) {
      case 4:
        expectWire(f, WIRE_LEN, 'NodeProto.op_type');
        opType = await r.string(f, MAX_STRING);
        break;
      case 7:
        expectWire(f, WIRE_LEN, 'NodeProto.domain');
        domain = await r.string(f, MAX_STRING);
        break;
      case 5: {
        expectWire(f, WIRE_LEN, 'NodeProto.attribute');
        const a = await r.message(f);
        for (let g: PbField | undefined; (g = await a.next()); ) {
          if (g.num === 5) {
            expectWire(g, WIRE_LEN, 'AttributeProto.t');
            valueTensors.push(await readTensor(await a.message(g)));
          } else if (g.num === 22) {
            expectWire(g, WIRE_LEN, 'AttributeProto.sparse_tensor');
            const s = await readSparseTensor(await a.message(g));
            if (s) valueTensors.push(s);
          } else if (g.num === 6 || g.num === 11) {
            expectWire(g, WIRE_LEN, 'AttributeProto.g');
            if (depth + 1 > MAX_GRAPH_DEPTH) ctx.skippedSubgraphs++;
            else {
              ctx.subgraphs++;
              await readGraph(await a.message(g), ctx, depth + 1);
            }
          }
        }
        break;
      }
      default:
        break;
    }
  }
  if (ctx.opTypes.size < MAX_LISTED || ctx.opTypes.has(opType)) ctx.opTypes.set(opType, (ctx.opTypes.get(opType) ?? 0) + 1);
  if (!STANDARD_DOMAINS.has(domain)) {
    if (ctx.customDomains.size < MAX_LISTED) ctx.customDomains.add(domain);
    if (ctx.customOps.size < MAX_LISTED) ctx.customOps.add(`${domain}::${opType}`);
  }
  if (opType === 'Constant' && STANDARD_DOMAINS.has(domain)) {
    for (const t of valueTensors) {
      ctx.constants++;
      addTensor(ctx, t);
    }
  }
}

async function readGraph(r: PbReader, ctx: Ctx, depth: number): Promise<void> {
  const top = depth === 0;
  for (let f: PbField | undefined; (f = await r.next()); ) {
    switch (f.num) {
      case 1:
        expectWire(f, WIRE_LEN, 'GraphProto.node');
        await readNode(await r.message(f), ctx, depth);
        break;
      case 2:
        expectWire(f, WIRE_LEN, 'GraphProto.name');
        if (top) ctx.graphName = await r.string(f, MAX_STRING);
        break;
      case 5: {
        expectWire(f, WIRE_LEN, 'GraphProto.initializer');
        const t = await readTensor(await r.message(f));
        ctx.initializers++;
        addTensor(ctx, t);
        if (top) ctx.initializerNames.add(t.name);
        break;
      }
      case 15: {
        expectWire(f, WIRE_LEN, 'GraphProto.sparse_initializer');
        const t = await readSparseTensor(await r.message(f));
        if (t) {
          ctx.initializers++;
          addTensor(ctx, t);
          if (top) ctx.initializerNames.add(t.name);
        }
        break;
      }
      case 11:
      case 12: {
        expectWire(f, WIRE_LEN, f.num === 11 ? 'GraphProto.input' : 'GraphProto.output');
        if (!top) break;
        const list = f.num === 11 ? ctx.inputs : ctx.outputs;
        // inputs that turn out to be initializers are dropped later, so keep a margin
        if (list.length < MAX_LISTED * 64) list.push(await readValueInfo(await r.message(f)));
        else if (f.num === 11) ctx.moreInputs++;
        else ctx.moreOutputs++;
        break;
      }
      default:
        break;
    }
  }
}

function cut(s: string, n = MAX_STRING): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Parses a ModelProto; `strict` (the file does not claim to be ONNX) rejects unknown low field numbers. */
async function parseModel(file: FileSource, strict: boolean): Promise<FileFormat | string> {
  const r = PbReader.of(file);
  let irVersion: number | undefined;
  let graph: PbField | undefined;
  const opsets: Array<{ domain: string; version: number }> = [];
  const metadata: Record<string, string> = {};
  const details: Record<string, unknown> = {};
  let metadataCount = 0;
  let functions = 0;
  let fields = 0;
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (++fields > 1_000_000) throw new ProtobufError('too many top-level fields');
    switch (f.num) {
      case 1:
        expectWire(f, WIRE_VARINT, 'ModelProto.ir_version');
        irVersion = f.signed;
        break;
      case 2:
      case 3:
      case 4:
      case 6: {
        expectWire(f, WIRE_LEN, 'ModelProto string field');
        const key = { 2: 'producerName', 3: 'producerVersion', 4: 'domain', 6: 'docString' }[f.num]!;
        details[key] = cut(await r.string(f, MAX_STRING + 4));
        break;
      }
      case 5:
        expectWire(f, WIRE_VARINT, 'ModelProto.model_version');
        details.modelVersion = f.signed;
        break;
      case 7:
        expectWire(f, WIRE_LEN, 'ModelProto.graph');
        graph = f;
        break;
      case 8: {
        expectWire(f, WIRE_LEN, 'ModelProto.opset_import');
        const o = await r.message(f);
        let domain = '';
        let version = 0;
        for (let g: PbField | undefined; (g = await o.next()); ) {
          if (g.num === 1) {
            expectWire(g, WIRE_LEN, 'OperatorSetIdProto.domain');
            domain = await o.string(g, MAX_STRING);
          } else if (g.num === 2) {
            expectWire(g, WIRE_VARINT, 'OperatorSetIdProto.version');
            version = g.signed;
          }
        }
        if (opsets.length < MAX_LISTED) opsets.push({ domain, version });
        break;
      }
      case 14: {
        expectWire(f, WIRE_LEN, 'ModelProto.metadata_props');
        const e = await r.message(f);
        let key = '';
        let value = '';
        for (let g: PbField | undefined; (g = await e.next()); ) {
          if (g.num === 1) key = await e.string(g, MAX_STRING);
          else if (g.num === 2) value = cut(await e.string(g, MAX_STRING + 4));
        }
        if (++metadataCount <= 64) metadata[key] = value;
        break;
      }
      case 25:
        expectWire(f, WIRE_LEN, 'ModelProto.functions');
        functions++;
        break;
      default:
        if (strict && f.num >= 9 && f.num <= 13) return `unexpected ModelProto field ${f.num}`;
        break;
    }
  }
  if (irVersion === undefined) return 'no ir_version';
  if (irVersion < 1 || irVersion > MAX_IR_VERSION) return `implausible ir_version ${irVersion}`;
  if (!graph) return 'no graph';
  if (irVersion >= 3 && opsets.length === 0) return 'no opset_import';

  const ctx: Ctx = {
    parameters: 0,
    dtypes: {},
    tensors: 0,
    initializers: 0,
    constants: 0,
    nodes: 0,
    subgraphs: 0,
    skippedSubgraphs: 0,
    opTypes: new Map(),
    customDomains: new Set(),
    customOps: new Set(),
    external: [],
    externalCount: 0,
    externalFiles: new Set(),
    initializerNames: new Set(),
    inputs: [],
    outputs: [],
    moreInputs: 0,
    moreOutputs: 0,
  };
  await readGraph(await r.message(graph), ctx, 0);

  for (const o of opsets) if (!STANDARD_DOMAINS.has(o.domain) && ctx.customDomains.size < MAX_LISTED) ctx.customDomains.add(o.domain);
  let inputs = ctx.inputs.filter((i) => !ctx.initializerNames.has(i.name));
  const droppedInputs = Math.max(0, inputs.length - MAX_LISTED) + ctx.moreInputs;
  inputs = inputs.slice(0, MAX_LISTED);
  const outputs = ctx.outputs.slice(0, MAX_LISTED);
  const droppedOutputs = Math.max(0, ctx.outputs.length - MAX_LISTED) + ctx.moreOutputs;

  const out: Record<string, unknown> = { irVersion, opsets, ...details };
  if (ctx.graphName !== undefined) out.graphName = cut(ctx.graphName);
  out.nodes = ctx.nodes;
  out.opTypes = Object.fromEntries(ctx.opTypes);
  out.initializers = ctx.initializers;
  out.constants = ctx.constants;
  if (ctx.subgraphs) out.subgraphs = ctx.subgraphs;
  if (ctx.skippedSubgraphs) out.skippedSubgraphs = ctx.skippedSubgraphs;
  if (functions) out.functions = functions;
  if (ctx.customDomains.size) {
    out.customDomains = [...ctx.customDomains];
    out.customOps = [...ctx.customOps];
  }
  if (ctx.externalCount) {
    out.externalData = ctx.external;
    out.externalDataTensors = ctx.externalCount;
    out.externalDataFiles = [...ctx.externalFiles];
  }
  if (metadataCount) out.metadata = metadata;
  if (droppedInputs) out.moreInputs = droppedInputs;
  if (droppedOutputs) out.moreOutputs = droppedOutputs;

  return {
    format: 'onnx',
    framework: 'onnx',
    parameters: ctx.parameters,
    dtypes: ctx.dtypes,
    inputs,
    outputs,
    // the file holds no code; a graph not walked to its end is still unchecked
    safety: safetyOf([], ctx.skippedSubgraphs ? [`${ctx.skippedSubgraphs} subgraphs nested deeper than ${MAX_GRAPH_DEPTH} levels were not walked`] : []),
    details: out,
  };
}

export const detectOnnx: Detector = async (file) => {
  const claimed = /\.onnx$/i.test(file.path);
  if (file.size === 0) {
    if (claimed) throw new InvalidModelFileError('onnx', 'empty .onnx file');
    return undefined;
  }
  if (!claimed) {
    // cheap first look: a ModelProto starts with a tag of one of its fields (nearly always ir_version: 0x08)
    const first = (await file.read(0, 1))[0] ?? 0;
    if (![0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72].includes(first)) return undefined;
  }
  let result: FileFormat | string;
  try {
    result = await parseModel(file, !claimed);
  } catch (e) {
    if (!(e instanceof ProtobufError)) throw e;
    if (claimed) throw new InvalidModelFileError('onnx', `broken ONNX file: ${e.message}`);
    return undefined;
  }
  if (typeof result === 'string') {
    if (claimed) throw new InvalidModelFileError('onnx', `not a valid ONNX model: ${result}`);
    return undefined;
  }
  return result;
};
