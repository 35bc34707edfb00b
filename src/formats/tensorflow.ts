// TensorFlow: the SavedModel protobuf (`saved_model.pb`, or another `*.pb`
// that parses as one) and the TensorFlow.js `model.json`.
//
// SavedModel: tags, TF version, signatures (inputs/outputs with dtypes and
// shapes) are read from the MetaGraphDefs. The graph (and its function
// library) is scanned for op names: PyFunc-style ops run Python code from the
// process that loads the model and are unsafe findings; file-system ops are
// noted. Weights live in variables/, not in the .pb, so no parameter count.
import { PbReader, ProtobufError, expectWire, WIRE_LEN, WIRE_VARINT, type PbField } from './protobuf.ts';
import { InvalidModelFileError, safetyOf, type Detector, type FileFormat, type FileSource, type SafetyFinding, type TensorInfo } from './types.ts';

// ---------------------------------------------------------------- SavedModel

/** tensorflow DataType enum → dtype name (reference types, +100, map to their base). */
const TF_DTYPES: Record<number, string> = {
  0: 'invalid',
  1: 'float32',
  2: 'float64',
  3: 'int32',
  4: 'uint8',
  5: 'int16',
  6: 'int8',
  7: 'string',
  8: 'complex64',
  9: 'int64',
  10: 'bool',
  11: 'qint8',
  12: 'quint8',
  13: 'qint32',
  14: 'bfloat16',
  15: 'qint16',
  16: 'quint16',
  17: 'uint16',
  18: 'complex128',
  19: 'float16',
  20: 'resource',
  21: 'variant',
  22: 'uint32',
  23: 'uint64',
  24: 'float8e5m2',
  25: 'float8e4m3fn',
  26: 'float8e4m3fnuz',
  27: 'float8e4m3b11fnuz',
  28: 'float8e5m2fnuz',
  29: 'int4',
  30: 'uint4',
};

export function tfDtype(code: number): string {
  return TF_DTYPES[code > 100 ? code - 100 : code] ?? `unknown(${code})`;
}

/** Ops that call back into Python: loading and running such a graph runs code that is not in the file. */
const PY_FUNC_OPS = new Set(['PyFunc', 'PyFuncStateless', 'EagerPyFunc']);
/** Ops that read or write the file system of the process running the model. */
const FILE_OPS = new Set(['ReadFile', 'WriteFile', 'MatchingFiles', 'DeleteFile', 'ImmutableConst']);

const MAX_LISTED = 64;
const MAX_STRING = 1024;
const MAX_DIMS = 1024;
const NODE_BUDGET = 500_000;

interface SignatureSummary {
  key: string;
  method?: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

interface MetaGraphSummary {
  tags: string[];
  tensorflowVersion?: string;
  tensorflowGitVersion?: string;
  signatures: SignatureSummary[];
}

interface ScanCtx {
  ops: Set<string>;
  pyFuncs: Set<string>;
  fileOps: Set<string>;
  nodes: number;
  partial: boolean;
}

function noteOp(ctx: ScanCtx, op: string): void {
  if (ctx.ops.size < 4096) ctx.ops.add(op);
  if (PY_FUNC_OPS.has(op)) ctx.pyFuncs.add(op);
  if (FILE_OPS.has(op)) ctx.fileOps.add(op);
}

/** NodeDef: op(2). Other fields (attrs holding constants) are skipped by length. */
async function scanNode(r: PbReader, ctx: ScanCtx): Promise<void> {
  if (++ctx.nodes > NODE_BUDGET) {
    ctx.partial = true;
    return;
  }
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 2) {
      expectWire(f, WIRE_LEN, 'NodeDef.op');
      noteOp(ctx, await r.string(f, MAX_STRING));
    }
  }
}

/** GraphDef: node(1), library(2: FunctionDefLibrary function(1: FunctionDef node_def(3))). */
async function scanGraph(r: PbReader, ctx: ScanCtx): Promise<void> {
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (ctx.partial) return;
    if (f.num === 1) {
      expectWire(f, WIRE_LEN, 'GraphDef.node');
      await scanNode(await r.message(f), ctx);
    } else if (f.num === 2) {
      expectWire(f, WIRE_LEN, 'GraphDef.library');
      const lib = await r.message(f);
      for (let g: PbField | undefined; (g = await lib.next()); ) {
        if (g.num !== 1) continue;
        expectWire(g, WIRE_LEN, 'FunctionDefLibrary.function');
        const fn = await lib.message(g);
        for (let h: PbField | undefined; (h = await fn.next()); ) {
          if (ctx.partial) return;
          if (h.num === 3) {
            expectWire(h, WIRE_LEN, 'FunctionDef.node_def');
            await scanNode(await fn.message(h), ctx);
          }
        }
      }
    }
  }
}

/** TensorShapeProto: dim(2: size(1), name(2)), unknown_rank(3). */
async function readTfShape(r: PbReader): Promise<Array<number | string>> {
  const shape: Array<number | string> = [];
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num !== 2) continue;
    expectWire(f, WIRE_LEN, 'TensorShapeProto.dim');
    if (shape.length >= MAX_DIMS) throw new ProtobufError(`shape with more than ${MAX_DIMS} dims`);
    const d = await r.message(f);
    let size = -1;
    let name = '';
    for (let g: PbField | undefined; (g = await d.next()); ) {
      if (g.num === 1) {
        expectWire(g, WIRE_VARINT, 'Dim.size');
        size = g.signed;
      } else if (g.num === 2) {
        expectWire(g, WIRE_LEN, 'Dim.name');
        name = await d.string(g, MAX_STRING);
      }
    }
    shape.push(size < 0 && name ? name : size);
  }
  return shape;
}

/** map<string, TensorInfo> entry → TensorInfo named by the map key (the tensor's graph name is in `tensor`). */
async function readTensorInfoEntry(r: PbReader): Promise<TensorInfo & { tensor?: string }> {
  let key = '';
  let tensor: string | undefined;
  let dtype = 'invalid';
  let shape: Array<number | string> = [];
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 1) {
      expectWire(f, WIRE_LEN, 'map key');
      key = await r.string(f, MAX_STRING);
    } else if (f.num === 2) {
      expectWire(f, WIRE_LEN, 'map value');
      const t = await r.message(f);
      for (let g: PbField | undefined; (g = await t.next()); ) {
        if (g.num === 1) {
          expectWire(g, WIRE_LEN, 'TensorInfo.name');
          tensor = await t.string(g, MAX_STRING);
        } else if (g.num === 2) {
          expectWire(g, WIRE_VARINT, 'TensorInfo.dtype');
          dtype = tfDtype(g.value);
        } else if (g.num === 3) {
          expectWire(g, WIRE_LEN, 'TensorInfo.tensor_shape');
          shape = await readTfShape(await t.message(g));
        } else if (g.num === 4 || g.num === 5) {
          tensor ??= g.num === 4 ? '(sparse)' : '(composite)';
        }
      }
    }
  }
  return tensor !== undefined ? { name: key, dtype, shape, tensor } : { name: key, dtype, shape };
}

/** map<string, SignatureDef> entry. */
async function readSignatureEntry(r: PbReader): Promise<SignatureSummary> {
  const sig: SignatureSummary = { key: '', inputs: [], outputs: [] };
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 1) {
      expectWire(f, WIRE_LEN, 'map key');
      sig.key = await r.string(f, MAX_STRING);
    } else if (f.num === 2) {
      expectWire(f, WIRE_LEN, 'map value');
      const s = await r.message(f);
      for (let g: PbField | undefined; (g = await s.next()); ) {
        if (g.num === 1 || g.num === 2) {
          expectWire(g, WIRE_LEN, 'SignatureDef.inputs/outputs');
          const list = g.num === 1 ? sig.inputs : sig.outputs;
          const info = await readTensorInfoEntry(await s.message(g));
          if (list.length < MAX_LISTED) list.push(info);
        } else if (g.num === 3) {
          expectWire(g, WIRE_LEN, 'SignatureDef.method_name');
          sig.method = await s.string(g, MAX_STRING);
        }
      }
    }
  }
  sig.inputs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  sig.outputs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sig;
}

async function readMetaGraph(r: PbReader, ctx: ScanCtx): Promise<MetaGraphSummary & { hasInfo: boolean }> {
  const mg: MetaGraphSummary & { hasInfo: boolean } = { tags: [], signatures: [], hasInfo: false };
  for (let f: PbField | undefined; (f = await r.next()); ) {
    switch (f.num) {
      case 1: {
        expectWire(f, WIRE_LEN, 'MetaGraphDef.meta_info_def');
        mg.hasInfo = true;
        const m = await r.message(f);
        for (let g: PbField | undefined; (g = await m.next()); ) {
          if (g.num === 2) {
            // stripped_op_list: OpList op(1: OpDef name(1))
            expectWire(g, WIRE_LEN, 'MetaInfoDef.stripped_op_list');
            const ol = await m.message(g);
            for (let h: PbField | undefined; (h = await ol.next()); ) {
              if (h.num !== 1) continue;
              expectWire(h, WIRE_LEN, 'OpList.op');
              const od = await ol.message(h);
              for (let k: PbField | undefined; (k = await od.next()); ) {
                if (k.num === 1) {
                  expectWire(k, WIRE_LEN, 'OpDef.name');
                  noteOp(ctx, await od.string(k, MAX_STRING));
                }
              }
            }
          } else if (g.num === 4) {
            expectWire(g, WIRE_LEN, 'MetaInfoDef.tags');
            if (mg.tags.length < MAX_LISTED) mg.tags.push(await m.string(g, MAX_STRING));
          } else if (g.num === 5) {
            expectWire(g, WIRE_LEN, 'MetaInfoDef.tensorflow_version');
            mg.tensorflowVersion = await m.string(g, MAX_STRING);
          } else if (g.num === 6) {
            expectWire(g, WIRE_LEN, 'MetaInfoDef.tensorflow_git_version');
            mg.tensorflowGitVersion = await m.string(g, MAX_STRING);
          }
        }
        break;
      }
      case 2:
        expectWire(f, WIRE_LEN, 'MetaGraphDef.graph_def');
        await scanGraph(await r.message(f), ctx);
        break;
      case 5: {
        expectWire(f, WIRE_LEN, 'MetaGraphDef.signature_def');
        const sig = await readSignatureEntry(await r.message(f));
        if (mg.signatures.length < MAX_LISTED) mg.signatures.push(sig);
        break;
      }
      default:
        break;
    }
  }
  mg.signatures.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return mg;
}

async function parseSavedModel(file: FileSource, strict: boolean): Promise<FileFormat | string> {
  const r = PbReader.of(file);
  const ctx: ScanCtx = { ops: new Set(), pyFuncs: new Set(), fileOps: new Set(), nodes: 0, partial: false };
  let schemaVersion: number | undefined;
  const metaGraphs: Array<MetaGraphSummary & { hasInfo: boolean }> = [];
  let metaGraphCount = 0;
  for (let f: PbField | undefined; (f = await r.next()); ) {
    if (f.num === 1) {
      expectWire(f, WIRE_VARINT, 'SavedModel.saved_model_schema_version');
      schemaVersion = f.signed;
    } else if (f.num === 2) {
      expectWire(f, WIRE_LEN, 'SavedModel.meta_graphs');
      metaGraphCount++;
      const mg = await readMetaGraph(await r.message(f), ctx);
      if (metaGraphs.length < 16) metaGraphs.push(mg);
    } else if (strict) return `unexpected SavedModel field ${f.num}`;
  }
  if (metaGraphCount === 0) return 'no meta graphs';
  if (schemaVersion !== undefined && (schemaVersion < 0 || schemaVersion > 100)) return `implausible schema version ${schemaVersion}`;
  if (strict && !metaGraphs.some((m) => m.hasInfo && (m.tags.length > 0 || m.tensorflowVersion !== undefined))) return 'no meta graph with tags';

  // inputs/outputs: serving_default of the `serve` meta graph, else the first signature there is
  const serve = metaGraphs.find((m) => m.tags.includes('serve')) ?? metaGraphs[0];
  const sig = serve?.signatures.find((s) => s.key === 'serving_default') ?? serve?.signatures[0] ?? metaGraphs.flatMap((m) => m.signatures)[0];
  const strip = (list: TensorInfo[]): TensorInfo[] => list.map(({ name, dtype, shape }) => ({ name, dtype, shape }));

  const findings: SafetyFinding[] = [...ctx.pyFuncs].map((op) => ({
    global: `tf.raw_ops.${op}`,
    reason: `${op} calls a Python function of the loading process: running the graph executes code that is not in the model`,
  }));

  const details: Record<string, unknown> = {
    metaGraphs: metaGraphs.map(({ hasInfo: _, ...m }) => m),
    ops: ctx.ops.size,
    nodesScanned: Math.min(ctx.nodes, NODE_BUDGET),
  };
  if (schemaVersion !== undefined) details.schemaVersion = schemaVersion;
  if (metaGraphCount > metaGraphs.length) details.moreMetaGraphs = metaGraphCount - metaGraphs.length;
  if (sig) details.signature = sig.key;
  if (ctx.fileOps.size) details.fileSystemOps = [...ctx.fileOps].sort();
  if (ctx.partial) details.partial = `graph larger than ${NODE_BUDGET} nodes: op scan incomplete`;
  return {
    format: 'savedmodel',
    framework: 'tensorflow',
    inputs: sig ? strip(sig.inputs) : [],
    outputs: sig ? strip(sig.outputs) : [],
    safety: safetyOf(findings, ctx.partial ? [`graph larger than ${NODE_BUDGET} nodes: the op scan stopped there`] : []),
    details,
  };
}

function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** `saved_model.pb` (claimed), or another `*.pb` that parses as a SavedModel. */
export const detectSavedModelPb: Detector = async (file) => {
  const name = basename(file.path).toLowerCase();
  const claimed = name === 'saved_model.pb';
  if (!claimed && !name.endsWith('.pb')) return undefined;
  if (file.size === 0) {
    if (claimed) throw new InvalidModelFileError('savedmodel', 'empty saved_model.pb');
    return undefined;
  }
  let result: FileFormat | string;
  try {
    result = await parseSavedModel(file, !claimed);
  } catch (e) {
    if (!(e instanceof ProtobufError)) throw e;
    if (claimed) throw new InvalidModelFileError('savedmodel', `broken saved_model.pb: ${e.message}`);
    return undefined;
  }
  if (typeof result === 'string') {
    if (claimed) throw new InvalidModelFileError('savedmodel', `not a SavedModel: ${result}`);
    return undefined;
  }
  return result;
};

// ---------------------------------------------------------------- TensorFlow.js

const TFJS_MAX_SIZE = 64 << 20;
const TFJS_HEAD = 64 * 1024;
const READ_PIECE = 4 << 20;

/** 'DT_FLOAT' → 'float32' (TF.js signatures use the TF enum names). */
function tfjsSigDtype(dt: unknown): string {
  if (typeof dt !== 'string') return 'unknown';
  const map: Record<string, string> = { DT_FLOAT: 'float32', DT_DOUBLE: 'float64', DT_HALF: 'float16', DT_BFLOAT16: 'bfloat16' };
  return map[dt] ?? dt.replace(/^DT_/, '').toLowerCase();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tfjsSignature(list: unknown): TensorInfo[] {
  if (!isObject(list)) return [];
  const out: TensorInfo[] = [];
  for (const [key, v] of Object.entries(list).slice(0, MAX_LISTED)) {
    if (!isObject(v)) continue;
    const shape: Array<number | string> = [];
    const ts = v.tensorShape;
    if (isObject(ts) && Array.isArray(ts.dim)) {
      for (const d of ts.dim.slice(0, MAX_DIMS)) {
        const size = isObject(d) ? Number(d.size ?? -1) : NaN;
        shape.push(Number.isSafeInteger(size) ? size : '?');
      }
    }
    out.push({ name: typeof v.name === 'string' ? v.name : key, dtype: tfjsSigDtype(v.dtype), shape });
  }
  return out;
}

async function readAll(file: FileSource): Promise<Uint8Array> {
  const out = new Uint8Array(file.size);
  for (let at = 0; at < file.size; at += READ_PIECE) {
    const b = await file.read(at, Math.min(READ_PIECE, file.size - at));
    if (b.byteLength !== Math.min(READ_PIECE, file.size - at)) throw new InvalidModelFileError('tfjs', 'short read of model.json');
    out.set(b, at);
  }
  return out;
}

/** TensorFlow.js `model.json`: modelTopology + weightsManifest [{paths, weights: [{name, shape, dtype}]}]. */
export const detectTfjs: Detector = async (file) => {
  const name = basename(file.path).toLowerCase();
  if (file.size < 2) return undefined;
  const head = new TextDecoder().decode(await file.read(0, Math.min(file.size, TFJS_HEAD)));
  if (!/^\s*\{/.test(head)) return undefined;
  const marked = head.includes('"weightsManifest"') || head.includes('"modelTopology"');
  if (!marked && name !== 'model.json') return undefined;
  if (file.size > TFJS_MAX_SIZE) {
    if (!marked) return undefined;
    const note = `model.json larger than ${TFJS_MAX_SIZE} bytes: not parsed`;
    return { format: 'tfjs', framework: 'tfjs', safety: safetyOf([], [note]), details: { note } };
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await readAll(file)));
  } catch (e) {
    if (e instanceof InvalidModelFileError) throw e;
    if (marked) throw new InvalidModelFileError('tfjs', `broken TF.js model.json: ${(e as Error).message}`);
    return undefined;
  }
  if (!isObject(json) || !('modelTopology' in json || 'weightsManifest' in json)) {
    if (marked) throw new InvalidModelFileError('tfjs', 'model.json without modelTopology or weightsManifest at its top level');
    return undefined;
  }
  const bad = (why: string): never => {
    throw new InvalidModelFileError('tfjs', `broken TF.js model.json: ${why}`);
  };
  const manifest = json.weightsManifest ?? [];
  if (!Array.isArray(manifest)) bad('weightsManifest is not an array');
  const paths: string[] = [];
  let parameters = 0;
  let weights = 0;
  let quantized = 0;
  const dtypes: Record<string, number> = {};
  for (const group of manifest as unknown[]) {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) bad('a weightsManifest group without paths and weights');
    const g = group as { paths: unknown[]; weights: unknown[] };
    for (const p of g.paths) {
      if (typeof p !== 'string') bad('a weight path that is not a string');
      if (paths.length < 1000) paths.push(p as string);
    }
    for (const w of g.weights) {
      if (!isObject(w) || typeof w.name !== 'string' || !Array.isArray(w.shape) || typeof w.dtype !== 'string') bad('a weight without name, shape and dtype');
      const wt = w as { name: string; shape: unknown[]; dtype: string; quantization?: unknown };
      let elements = 1;
      for (const d of wt.shape) {
        if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) bad(`weight ${wt.name}: bad dimension ${JSON.stringify(d)}`);
        elements *= d as number;
      }
      if (!Number.isSafeInteger(elements)) bad(`weight ${wt.name}: element count out of range`);
      let dtype = wt.dtype.toLowerCase();
      if (isObject(wt.quantization) && typeof wt.quantization.dtype === 'string') {
        dtype = wt.quantization.dtype.toLowerCase();
        quantized++;
      }
      weights++;
      parameters += elements;
      dtypes[dtype] = (dtypes[dtype] ?? 0) + elements;
    }
  }
  const details: Record<string, unknown> = { weightPaths: paths, weights };
  for (const k of ['format', 'generatedBy', 'convertedBy'] as const) {
    const v = json[k];
    if (typeof v === 'string') details[k] = v.slice(0, MAX_STRING);
  }
  if (quantized) details.quantizedWeights = quantized;
  const sig = json.signature;
  const inputs = isObject(sig) ? tfjsSignature(sig.inputs) : [];
  const outputs = isObject(sig) ? tfjsSignature(sig.outputs) : [];
  return {
    format: 'tfjs',
    framework: 'tfjs',
    parameters,
    dtypes,
    inputs,
    outputs,
    safety: safetyOf([]),
    details,
  };
};
