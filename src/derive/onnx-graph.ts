// Graph helpers the ONNX transforms share: attributes, subgraphs, a name
// allocator that never reuses a name anywhere in the model, the opset, and an
// element-type inference (types only, no shapes) good enough to know which
// values are float32: declared types (inputs, outputs, value_info) first, then
// per-operator rules, in node order, through If/Loop/Scan bodies.
import { CairnError } from '../errors.ts';
import { AT, DT, toNumber, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './onnx-schema.ts';

export const DEFAULT_DOMAINS = new Set(['', 'ai.onnx']);

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? toNumber(a.i) : fallback;
}

export function subgraphs(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute ?? []) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs ?? []) out.push(g);
  }
  return out;
}

/** Calls fn for the graph and every subgraph below it, outermost first. */
export function forEachGraph(graph: GraphProto, fn: (g: GraphProto, depth: number) => void, depth = 0): void {
  fn(graph, depth);
  for (const node of graph.node ?? []) for (const g of subgraphs(node)) forEachGraph(g, fn, depth + 1);
}

/** Fresh names: never one used anywhere in the model (values, nodes, graphs). */
export class Names {
  private readonly used = new Set<string>();

  constructor(model: ModelProto) {
    forEachGraph(model.graph!, (g) => {
      if (g.name) this.used.add(g.name);
      for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.value_info ?? [])]) this.used.add(v.name ?? '');
      for (const t of g.initializer ?? []) this.used.add(t.name ?? '');
      for (const n of g.node ?? []) {
        if (n.name) this.used.add(n.name);
        for (const v of [...(n.input ?? []), ...(n.output ?? [])]) this.used.add(v);
      }
    });
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/** The default-domain opset version the model imports. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opset_import?.find((o) => DEFAULT_DOMAINS.has(o.domain ?? ''));
  return entry ? toNumber(entry.version) : 1;
}

export function setDefaultOpset(model: ModelProto, version: number): void {
  const entry = model.opset_import?.find((o) => DEFAULT_DOMAINS.has(o.domain ?? ''));
  if (entry) entry.version = version;
  else (model.opset_import ??= []).push({ domain: '', version });
}

// --- element types -----------------------------------------------------------------

/** How an output's element type comes about: from the inputs, from an attribute a transform may change, or fixed. */
export type TypeSource = 'input' | 'attr' | 'fixed';

export interface OutputType {
  type: number;
  via: TypeSource;
}

const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf', 'RegexFullMatch']);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const DTYPE_ATTR_OR_FLOAT = new Set(['RandomNormal', 'RandomUniform']);
const DTYPE_ATTR_OR_INPUT = new Set(['RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'EyeLike']);
const WINDOWS = new Set(['HannWindow', 'HammingWindow', 'BlackmanWindow', 'MelWeightMatrix']);

function constantType(node: NodeProto): OutputType {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value') return { type: a.t?.data_type ?? DT.UNDEFINED, via: 'attr' };
    if (a.name === 'value_float' || a.name === 'value_floats') return { type: DT.FLOAT, via: 'attr' };
    if (a.name === 'value_int' || a.name === 'value_ints') return { type: DT.INT64, via: 'fixed' };
    if (a.name === 'value_string' || a.name === 'value_strings') return { type: DT.STRING, via: 'fixed' };
    if (a.name === 'sparse_value') return { type: a.sparse_tensor?.values?.data_type ?? DT.UNDEFINED, via: 'fixed' };
  }
  return { type: DT.UNDEFINED, via: 'fixed' };
}

/**
 * Element types of a default-domain node's outputs from its inputs' types
 * (0 where unknown). `body` gives a subgraph's output types for If/Loop/Scan.
 */
export function outputTypes(node: NodeProto, input: (i: number) => number, body: (g: GraphProto) => number[]): OutputType[] {
  const op = node.op_type ?? '';
  const n = node.output?.length ?? 0;
  const all = (t: OutputType): OutputType[] => Array.from({ length: n }, () => t);
  const fixed = (type: number): OutputType => ({ type, via: 'fixed' });
  const follow = (i: number): OutputType => ({ type: input(i), via: 'input' });
  const dtype = attribute(node, 'dtype');
  if (!DEFAULT_DOMAINS.has(node.domain ?? '')) return all(fixed(DT.UNDEFINED));
  if (op === 'Cast') return [{ type: intAttribute(node, 'to', 0), via: 'attr' }];
  if (op === 'CastLike') return [follow(1)];
  if (op === 'Constant') return [constantType(node)];
  if (op === 'ConstantOfShape') return [{ type: attribute(node, 'value')?.t?.data_type ?? DT.FLOAT, via: 'attr' }];
  if (BOOL_OUT.has(op)) return all(fixed(DT.BOOL));
  if (INT64_OUT.has(op)) return all(fixed(DT.INT64));
  if (op === 'Where') return [follow(1)];
  if (op === 'TopK' || op === 'MaxPool') return [follow(0), fixed(DT.INT64)].slice(0, n);
  if (op === 'Unique') return [follow(0), fixed(DT.INT64), fixed(DT.INT64), fixed(DT.INT64)].slice(0, n);
  if (op === 'Dropout') return [follow(0), fixed(DT.BOOL)].slice(0, n);
  if (DTYPE_ATTR_OR_FLOAT.has(op)) return [{ type: dtype ? toNumber(dtype.i) : DT.FLOAT, via: 'attr' }];
  if (DTYPE_ATTR_OR_INPUT.has(op)) return [dtype ? { type: toNumber(dtype.i), via: 'attr' } : follow(0)];
  if (WINDOWS.has(op)) return [{ type: intAttribute(node, 'output_datatype', DT.FLOAT), via: 'attr' }];
  if (op === 'Multinomial') return [fixed(dtype ? toNumber(dtype.i) : 6)];
  if (op === 'QuantizeLinear') {
    const zp = (node.input?.length ?? 0) > 2 && node.input![2] ? input(2) : 0;
    return [fixed(zp || intAttribute(node, 'output_dtype', 0) || DT.UINT8)];
  }
  if (op === 'DequantizeLinear') return [follow(1)];
  if (op === 'DynamicQuantizeLinear') return [fixed(DT.UINT8), fixed(DT.FLOAT), fixed(DT.UINT8)];
  if (op === 'MatMulInteger' || op === 'ConvInteger') return [fixed(DT.INT32)];
  if (op === 'QLinearConv' || op === 'QLinearMatMul') return [fixed(input(7))];
  if (op === 'OneHot') return [follow(2)];
  if (op === 'LayerNormalization') {
    const stash = intAttribute(node, 'stash_type', DT.FLOAT);
    return [follow(0), fixed(stash), fixed(stash)].slice(0, n);
  }
  if (op === 'TfIdfVectorizer') return [fixed(DT.FLOAT)];
  if (op === 'StringNormalizer' || op === 'StringConcat') return [fixed(DT.STRING)];
  if (op === 'StringSplit') return [fixed(DT.STRING), fixed(DT.INT64)].slice(0, n);
  if (op === 'ImageDecoder') return [fixed(DT.UINT8)];
  if (op === 'If') {
    const then = attribute(node, 'then_branch')?.g;
    return then ? body(then).map((type) => ({ type, via: 'input' as const })) : all(fixed(DT.UNDEFINED));
  }
  if (op === 'Loop') {
    const g = attribute(node, 'body')?.g;
    return g ? body(g).slice(1).map((type) => ({ type, via: 'input' as const })) : all(fixed(DT.UNDEFINED));
  }
  if (op === 'Scan') {
    const g = attribute(node, 'body')?.g;
    return g ? body(g).map((type) => ({ type, via: 'input' as const })) : all(fixed(DT.UNDEFINED));
  }
  if (op.startsWith('Sequence') || op === 'SplitToSequence' || op === 'ConcatFromSequence' || op.startsWith('Optional')) {
    return all(fixed(DT.UNDEFINED));
  }
  if ((node.input?.length ?? 0) === 0) return all(fixed(DT.UNDEFINED));
  return all(follow(0));
}

/** A value's declared element type (0 when it has none or is not a tensor). */
function declaredType(v: { type?: { tensor_type?: { elem_type?: number } } }): number {
  return v.type?.tensor_type?.elem_type ?? 0;
}

export type TypeScope = (name: string) => number | undefined;

/** Every value's element type in `graph` (and, separately, each subgraph), seen from `outer`. */
export class ElementTypes {
  /** graph → its values' types */
  readonly byGraph = new Map<GraphProto, Map<string, number>>();
  /** node output → how its type comes about */
  readonly via = new Map<string, TypeSource>();

  constructor(root: GraphProto) {
    this.infer(root, () => undefined);
  }

  /** The type of `name` as seen from `graph` (its own values, then enclosing graphs'). */
  typeIn(graph: GraphProto, name: string): number {
    return this.scopes.get(graph)?.(name) ?? 0;
  }

  private readonly scopes = new Map<GraphProto, TypeScope>();

  private infer(graph: GraphProto, outer: TypeScope): number[] {
    const types = new Map<string, number>();
    this.byGraph.set(graph, types);
    const scope: TypeScope = (name) => types.get(name) ?? outer(name);
    this.scopes.set(graph, scope);
    const declared = new Map<string, number>();
    for (const v of [...(graph.value_info ?? []), ...(graph.output ?? [])]) {
      const t = declaredType(v);
      if (t) declared.set(v.name ?? '', t);
    }
    for (const v of graph.input ?? []) types.set(v.name ?? '', declaredType(v));
    for (const t of graph.initializer ?? []) types.set(t.name ?? '', t.data_type ?? 0);
    for (const s of graph.sparse_initializer ?? []) if (s.values) types.set(s.values.name ?? '', s.values.data_type ?? 0);
    for (const node of graph.node ?? []) {
      const input = (i: number): number => {
        const name = node.input?.[i];
        return name ? (scope(name) ?? 0) : 0;
      };
      const out = outputTypes(node, input, (g) => this.infer(g, scope));
      // bodies of nodes whose types come from elsewhere still need their own types
      for (const g of subgraphs(node)) if (!this.byGraph.has(g)) this.infer(g, scope);
      (node.output ?? []).forEach((name, i) => {
        if (!name) return;
        const inferred = out[i] ?? { type: 0, via: 'fixed' as const };
        types.set(name, declared.get(name) || inferred.type);
        this.via.set(name, inferred.via);
      });
    }
    return (graph.output ?? []).map((v) => declaredType(v) || (scope(v.name ?? '') ?? 0));
  }
}

/** Element count of a dims list. */
export function elementsOf(dims: number[]): number {
  return dims.reduce((a, d) => a * d, 1);
}

/** A Constant node's value tensor, when its value is given as a tensor. */
export function constantTensor(node: NodeProto): TensorProto | undefined {
  if (node.op_type !== 'Constant' || !DEFAULT_DOMAINS.has(node.domain ?? '')) return undefined;
  const a = attribute(node, 'value');
  return a?.type === AT.TENSOR || a?.t ? (a.t ?? undefined) : undefined;
}

export function unsupported(message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', message);
}

/** Nodes to add: at the start of a graph, or right after a node (keeps the topological order). */
export class NodeInsertions {
  private readonly atStart = new Map<GraphProto, NodeProto[]>();
  private readonly after = new Map<NodeProto, NodeProto[]>();

  first(graph: GraphProto, ...nodes: NodeProto[]): void {
    (this.atStart.get(graph) ?? this.atStart.set(graph, []).get(graph)!).push(...nodes);
  }

  following(node: NodeProto, ...nodes: NodeProto[]): void {
    (this.after.get(node) ?? this.after.set(node, []).get(node)!).push(...nodes);
  }

  /** Rewrites the node lists of `root` and its subgraphs. */
  apply(root: GraphProto): void {
    forEachGraph(root, (g) => {
      const first = this.atStart.get(g);
      if (!first && !(g.node ?? []).some((n) => this.after.has(n))) return;
      const nodes: NodeProto[] = [...(first ?? [])];
      for (const n of g.node ?? []) nodes.push(n, ...(this.after.get(n) ?? []));
      g.node = nodes;
    });
  }
}
