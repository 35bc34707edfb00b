// The weights int8 and prune work on: constant tensors (initializers or
// Constant nodes, in any graph) read as the weight input of Conv,
// ConvTranspose, MatMul or Gemm, each with its output-channel axis — Conv: 0
// (M × C/g × k…), ConvTranspose: 1 (C × M/g × k…), MatMul: the last (… × K × N),
// Gemm: 1, or 0 when transB=1.
import { intAttribute, DEFAULT_DOMAINS, forEachGraph, constantTensor } from './onnx-graph.ts';
import { tensorDims, type OnnxModel } from './onnx-model.ts';
import type { GraphProto, NodeProto, TensorProto } from './onnx-schema.ts';

export interface Weight {
  /** the value's name */
  name: string;
  tensor: TensorProto;
  /** the graph that defines it */
  graph: GraphProto;
  /** the Constant node holding it; undefined for an initializer */
  constant?: NodeProto;
  /** the first operator reading it as a weight */
  consumer: NodeProto;
  dims: number[];
  axis: number;
}

export interface Skipped {
  name: string;
  reason: string;
}

function weightAxis(node: NodeProto, rank: number): number | undefined {
  switch (node.op_type) {
    case 'Conv':
      return 0;
    case 'ConvTranspose':
      return 1;
    case 'MatMul':
      return rank - 1;
    case 'Gemm':
      return intAttribute(node, 'transB', 0) ? 0 : 1;
    default:
      return undefined;
  }
}

/** Weights in model order (first weight use), each once; `accept` says which element types qualify. */
export function findWeights(model: OnnxModel, accept: (dataType: number) => boolean): { weights: Weight[]; skipped: Skipped[] } {
  const top = model.proto.graph!;
  const constants = new Map<string, { tensor: TensorProto; graph: GraphProto; constant?: NodeProto }>();
  forEachGraph(top, (g) => {
    for (const t of g.initializer ?? []) constants.set(t.name ?? '', { tensor: t, graph: g });
    for (const node of g.node ?? []) {
      const t = constantTensor(node);
      if (t && node.output?.[0]) constants.set(node.output[0], { tensor: t, graph: g, constant: node });
    }
  });
  const topInputs = new Set((top.input ?? []).map((v) => v.name ?? ''));
  const seen = new Set<string>();
  const weights: Weight[] = [];
  const skipped: Skipped[] = [];
  forEachGraph(top, (g) => {
    for (const node of g.node ?? []) {
      if (!DEFAULT_DOMAINS.has(node.domain ?? '')) continue;
      const name = node.input?.[1];
      if (!name || seen.has(name)) continue;
      const c = constants.get(name);
      if (!c) continue;
      const dims = tensorDims(c.tensor);
      const axis = weightAxis(node, dims.length);
      if (axis === undefined) continue;
      seen.add(name);
      const skip = (reason: string): void => void skipped.push({ name, reason });
      if (!accept(c.tensor.data_type ?? 0)) skip(`element type ${c.tensor.data_type}`);
      else if (dims.length < 2 || axis < 0 || axis >= dims.length) skip('fewer than 2 dimensions');
      else if (dims.some((d) => d === 0)) skip('no elements');
      else if (topInputs.has(name)) skip('also a graph input (can be overridden at run time)');
      else if (!model.rawData(c.tensor)) skip('data not stored as raw little-endian values');
      else weights.push({ name, tensor: c.tensor, graph: c.graph, constant: c.constant, consumer: node, dims, axis });
    }
  });
  return { weights, skipped };
}
