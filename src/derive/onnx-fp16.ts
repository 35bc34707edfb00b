// fp16 for ONNX, after onnxconverter-common's convert_float_to_float16
// (microsoft/onnxconverter-common, onnxconverter_common/float16.py at
// 28b00d4c, MIT) with keep_io_types=True: float32 initializers and Constant
// tensors become float16 (values clamped into [min_positive_val,
// max_finite_val] in magnitude first, as there), every float32 value inside
// the graph becomes float16, the graph's float32 inputs and outputs stay
// float32 through inserted Cast nodes, and the operators in its
// DEFAULT_OP_BLOCK_LIST (plus the quantisation operators, whose float inputs
// must stay float32 before opset 19, and custom-domain operators) keep
// running in float32 between Casts. Where float16.py relies on ONNX shape
// inference for element types, this uses its own type rules (onnx-graph.ts),
// and it places one Cast per value and type rather than per consumer.
import { CairnError } from '../errors.ts';
import { castFloat32, channelMaxAbs, emptyCastCounts } from './tensor-ops.ts';
import { FLOAT32 } from './numeric.ts';
import { attribute, constantTensor, DEFAULT_DOMAINS, ElementTypes, forEachGraph, Names, NodeInsertions, subgraphs, unsupported, type TypeSource } from './onnx-graph.ts';
import { OnnxModel, tensorElements } from './onnx-model.ts';
import { AT, DT, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from './onnx-schema.ts';

/** onnxconverter-common's DEFAULT_OP_BLOCK_LIST (float16.py), verbatim. */
export const DEFAULT_OP_BLOCK_LIST = [
  'ArrayFeatureExtractor', 'Binarizer', 'CastMap', 'CategoryMapper', 'DictVectorizer', 'FeatureVectorizer', 'Imputer',
  'LabelEncoder', 'LinearClassifier', 'LinearRegressor', 'Normalizer', 'OneHotEncoder', 'RandomUniformLike',
  'SVMClassifier', 'SVMRegressor', 'Scaler', 'TreeEnsembleClassifier', 'TreeEnsembleRegressor', 'ZipMap',
  'NonMaxSuppression', 'TopK', 'RoiAlign', 'Resize', 'Range', 'CumSum', 'Min', 'Max', 'Upsample',
];

/** Added here: their float scale inputs must be float32 before opset 19. */
export const QUANTIZATION_OPS = ['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear'];

export interface Fp16Params {
  transform: 'fp16';
  /** float16.py's min_positive_val (default 1e-7) and max_finite_val (default 1e4) */
  minPositive?: number;
  maxFinite?: number;
  /** more operator types to keep in float32 */
  opBlockList?: string[];
  /** node names to keep in float32 */
  nodeBlockList?: string[];
}

export interface Fp16Report {
  transform: 'fp16';
  /** tensors converted to float16 and their elements */
  tensors: number;
  elements: number;
  /** float32 constants left as they are: only float32-only operators use them */
  keptFloat32: number;
  overflowToInf: number;
  underflowToZero: number;
  /** values moved into [minPositive, maxFinite] before conversion */
  clamped: number;
  castsInserted: number;
  /** nodes kept in float32, by operator type */
  blocked: Record<string, number>;
  /** of those, the nodes kept because a constant they read does not fit float16 */
  blockedForRange: string[];
}

interface Def {
  graph: GraphProto;
  kind: 'input' | 'initializer' | 'node';
  node?: NodeProto;
  tensor?: TensorProto;
}

interface Use {
  graph: GraphProto;
  /** a node input, or (without node) the graph's output list */
  node?: NodeProto;
  index: number;
}

const F32 = DT.FLOAT;
const F16 = DT.FLOAT16;

export async function convertToFloat16(model: OnnxModel, params: Fp16Params): Promise<() => Fp16Report> {
  const minPositive = params.minPositive ?? 1e-7;
  const maxFinite = params.maxFinite ?? 1e4;
  if (!(minPositive > 0 && maxFinite > minPositive && maxFinite <= 65504)) {
    throw new CairnError('INVALID_ARGUMENT', 'fp16: need 0 < minPositive < maxFinite ≤ 65504');
  }
  const clamp = { minPositive, maxFinite };
  const top = model.proto.graph!;
  const opBlock = new Set([...DEFAULT_OP_BLOCK_LIST, ...QUANTIZATION_OPS, ...(params.opBlockList ?? [])]);
  const nodeBlock = new Set(params.nodeBlockList ?? []);
  const rangeBlocked = await nodesReadingLargeConstants(model, maxFinite);
  const isBlocked = (n: NodeProto): boolean =>
    !DEFAULT_DOMAINS.has(n.domain ?? '') || opBlock.has(n.op_type ?? '') || nodeBlock.has(n.name ?? '') || rangeBlocked.has(n);
  const types = new ElementTypes(top);
  const names = new Names(model.proto);

  // definitions and uses of every value, across subgraphs (ONNX names are unique model-wide)
  const defs = new Map<string, Def>();
  const uses = new Map<string, Use[]>();
  const graphs: GraphProto[] = [];
  const collect = (g: GraphProto): void => {
    graphs.push(g);
    for (const v of g.input ?? []) defs.set(v.name ?? '', { graph: g, kind: 'input' });
    for (const t of g.initializer ?? []) defs.set(t.name ?? '', { graph: g, kind: 'initializer', tensor: t });
    for (const s of g.sparse_initializer ?? []) if (s.values) defs.set(s.values.name ?? '', { graph: g, kind: 'initializer', tensor: s.values });
    for (const node of g.node ?? []) {
      (node.input ?? []).forEach((name, index) => {
        if (name) (uses.get(name) ?? uses.set(name, []).get(name)!).push({ graph: g, node, index });
      });
      for (const name of node.output ?? []) if (name) defs.set(name, { graph: g, kind: 'node', node });
      for (const sub of subgraphs(node)) collect(sub);
    }
    (g.output ?? []).forEach((v, index) => (uses.get(v.name ?? '') ?? uses.set(v.name ?? '', []).get(v.name ?? '')!).push({ graph: g, index }));
  };
  collect(top);

  const typeOf = (name: string): number => {
    const d = defs.get(name);
    return d ? types.typeIn(d.graph, name) : 0;
  };
  for (const [name, list] of uses) {
    const d = defs.get(name);
    if (!d) throw new CairnError('INVALID_MODEL_FILE', `invalid ONNX model: ${name} is used but never defined`);
    if (typeOf(name) === 0 && list.length > 0) {
      const by = d.node ? `${d.node.op_type} node ${d.node.name ?? ''}`.trim() : d.kind;
      throw unsupported(`fp16: cannot tell the element type of ${name} (from ${by}); declare it in the graph's value_info`);
    }
  }

  // where each float32 value lives after conversion (its home type)
  const required = (u: Use): number => (u.node ? (isBlocked(u.node) ? F32 : F16) : u.graph === top ? F32 : F16);
  const home = new Map<string, number>();
  const constantHome = new Map<NodeProto, number>();
  for (const [name, d] of defs) {
    if (typeOf(name) !== F32) continue;
    let h: number;
    if (d.kind === 'input') h = d.graph === top ? F32 : F16;
    else if (d.kind === 'initializer' || (d.node!.op_type === 'Constant' && !isBlocked(d.node!))) {
      // a constant only float32-only operators read stays float32 (float16.py's initializer_block_list)
      const nodeUses = (uses.get(name) ?? []).filter((u) => u.node);
      h = nodeUses.length > 0 && nodeUses.every((u) => isBlocked(u.node!)) ? F32 : F16;
      if (d.node) constantHome.set(d.node, h);
    } else {
      const via: TypeSource = types.via.get(name) ?? 'input';
      h = isBlocked(d.node!) || via === 'fixed' ? F32 : F16;
    }
    home.set(name, h);
  }

  // Casts: one per (value, type), placed in the value's defining graph right after its definition
  const insert = new NodeInsertions();
  const variants = new Map<string, string>(); // `${name}\0${type}` → name holding that type
  const finalType = new Map<string, number>(); // every float value's type after conversion
  let casts = 0;
  const place = (d: Def, cast: NodeProto): void => (d.kind === 'node' ? insert.following(d.node!, cast) : insert.first(d.graph, cast));
  const makeCast = (d: Def, from: string, to: string, type: number): void => {
    place(d, { name: names.fresh(`${to}_Cast`), op_type: 'Cast', input: [from], output: [to], attribute: [{ name: 'to', type: AT.INT, i: type }] });
    finalType.set(to, type);
    casts++;
  };
  for (const [name, h] of home) {
    variants.set(`${name}\0${h}`, name);
    finalType.set(name, h);
  }
  // a graph output that needs the other type keeps its name: the definition moves to a new name, a Cast makes the output
  for (const [name, list] of uses) {
    const h = home.get(name);
    if (h === undefined) continue;
    const outputs = list.filter((u) => !u.node);
    const want = outputs.map(required);
    if (want.length === 0 || want.every((t) => t === h)) continue;
    if (new Set(want).size > 1) throw unsupported(`fp16: ${name} is an output of graphs needing both float32 and float16`);
    const d = defs.get(name)!;
    if (d.kind === 'input') throw unsupported(`fp16: graph input ${name} is also a subgraph output of another type`);
    const moved = names.fresh(`${name}_${h === F16 ? 'fp16' : 'fp32'}`);
    if (d.kind === 'initializer') d.tensor!.name = moved;
    else d.node!.output = d.node!.output!.map((o) => (o === name ? moved : o));
    for (const v of d.graph.value_info ?? []) if (v.name === name) v.name = moved;
    variants.set(`${name}\0${h}`, moved);
    finalType.set(moved, h);
    makeCast(d, moved, name, want[0]!);
    variants.set(`${name}\0${want[0]}`, name);
  }
  const variant = (name: string, type: number): string => {
    const key = `${name}\0${type}`;
    const known = variants.get(key);
    if (known) return known;
    const to = names.fresh(`${name}_${type === F16 ? 'fp16' : 'fp32'}`);
    makeCast(defs.get(name)!, variants.get(`${name}\0${home.get(name)}`)!, to, type);
    variants.set(key, to);
    return to;
  };
  for (const [name, list] of uses) {
    if (!home.has(name)) continue;
    for (const u of list) if (u.node) u.node.input![u.index] = variant(name, required(u));
  }

  // tensors, attributes and declared types
  const totals = emptyCastCounts();
  let tensors = 0;
  let elements = 0;
  let keptFloat32 = 0;
  const convertTensor = (t: TensorProto): void => {
    const range = model.rawData(t);
    if (!range) throw unsupported(`fp16: cannot read the float32 data of tensor ${t.name ?? ''}`);
    const n = tensorElements(t);
    model.setData(t, F16, castFloat32({ range, kind: FLOAT32, elements: n }, 'float16', totals, clamp));
    tensors++;
    elements += n;
  };
  for (const [name, d] of defs) {
    if (d.kind === 'initializer' && home.has(name)) {
      if (home.get(name) === F16) convertTensor(d.tensor!);
      else keptFloat32++;
    }
  }
  const blocked: Record<string, number> = {};
  for (const g of graphs) {
    for (const node of g.node ?? []) {
      if (isBlocked(node)) {
        blocked[node.op_type ?? ''] = (blocked[node.op_type ?? ''] ?? 0) + 1;
        continue;
      }
      if (constantHome.get(node) === F32) {
        keptFloat32++;
        continue;
      }
      convertAttributes(node, convertTensor);
    }
    for (const v of [...(g.value_info ?? []), ...(g === top ? [] : [...(g.input ?? []), ...(g.output ?? [])])]) {
      const tt = v.type?.tensor_type;
      if (tt?.elem_type === F32) tt.elem_type = finalType.get(v.name ?? '') ?? F16;
    }
    if (g === top) {
      // initializers listed as graph inputs (IR < 4) carry the initializer's new type
      for (const v of g.input ?? []) {
        const tt = v.type?.tensor_type;
        const d = defs.get(v.name ?? '');
        if (tt?.elem_type === F32 && d?.kind === 'initializer') tt.elem_type = home.get(v.name ?? '') ?? F32;
      }
    }
  }
  insert.apply(top);

  return () => ({
    transform: 'fp16',
    tensors,
    elements,
    keptFloat32,
    overflowToInf: totals.overflowToInf,
    underflowToZero: totals.underflowToZero,
    clamped: totals.clamped,
    castsInserted: casts,
    blocked,
    blockedForRange: [...rangeBlocked].map((n) => `${n.name ?? ''} (${n.op_type})`),
  });
}

/**
 * Nodes that read a float32 constant with a finite value beyond `maxFinite`
 * (float16 tops out at 65504): they stay float32, and so do those constants.
 * float16.py would clamp such values to max_finite_val — a batch-norm
 * variance of 1e7 clamped to 1e4 breaks the model (PP-OCRv4's detector has
 * them); with this rule the model converts without a hand-made block list.
 */
async function nodesReadingLargeConstants(model: OnnxModel, maxFinite: number): Promise<Set<NodeProto>> {
  const large = new Set<string>();
  const check = async (name: string, t: TensorProto): Promise<void> => {
    if (t.data_type !== F32) return;
    const range = model.rawData(t);
    if (!range) return;
    const elements = tensorElements(t);
    if (elements === 0) return;
    const stats = await channelMaxAbs({ range, kind: FLOAT32, elements }, { channels: 1, inner: elements });
    if (stats.maxAbs[0]! > maxFinite) large.add(name);
  };
  const graphs: GraphProto[] = [];
  forEachGraph(model.proto.graph!, (g) => graphs.push(g));
  for (const g of graphs) {
    for (const t of g.initializer ?? []) await check(t.name ?? '', t);
    for (const node of g.node ?? []) {
      const t = constantTensor(node);
      if (t && node.output?.[0]) await check(node.output[0], t);
    }
  }
  const nodes = new Set<NodeProto>();
  for (const g of graphs) for (const node of g.node ?? []) if ((node.input ?? []).some((i) => large.has(i))) nodes.add(node);
  return nodes;
}

const F16_ZERO = new Uint8Array(2);

/** A non-blocked node's float32 attributes and attribute tensors, made float16. */
function convertAttributes(node: NodeProto, convertTensor: (t: TensorProto) => void): void {
  const op = node.op_type ?? '';
  const attrs = (node.attribute ??= []);
  const setInt = (name: string, value: number): void => {
    const a = attrs.find((x) => x.name === name);
    if (a) a.i = value;
    else attrs.push({ name, type: AT.INT, i: value });
  };
  const intOf = (a: AttributeProto | undefined): number | undefined => (a ? Number(a.i) : undefined);
  if (op === 'Cast' && intOf(attribute(node, 'to')) === F32) setInt('to', F16);
  if ((op === 'RandomNormal' || op === 'RandomUniform') && (intOf(attribute(node, 'dtype')) ?? F32) === F32) setInt('dtype', F16);
  if (['RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'EyeLike'].includes(op) && intOf(attribute(node, 'dtype')) === F32) setInt('dtype', F16);
  if (['HannWindow', 'HammingWindow', 'BlackmanWindow', 'MelWeightMatrix'].includes(op) && (intOf(attribute(node, 'output_datatype')) ?? F32) === F32) {
    setInt('output_datatype', F16);
  }
  if (op === 'ConstantOfShape' && !attribute(node, 'value')) {
    attrs.push({ name: 'value', type: AT.TENSOR, t: OnnxModel.tensor('', F16, [1], F16_ZERO) });
  }
  if (op === 'Constant') {
    const a = attrs.find((x) => x.name === 'value_float' || x.name === 'value_floats');
    if (a) {
      const values = a.name === 'value_float' ? [a.f ?? 0] : (a.floats ?? []);
      const t: TensorProto = { name: '', data_type: F32, dims: a.name === 'value_float' ? [] : [values.length], float_data: values };
      node.attribute = [{ name: 'value', type: AT.TENSOR, t }];
    }
  }
  for (const a of node.attribute) {
    if (a.t && a.t.data_type === F32) convertTensor(a.t);
    for (const t of a.tensors ?? []) if (t.data_type === F32) convertTensor(t);
  }
}
