// Weight-only int8 for ONNX: each float32 weight of Conv/ConvTranspose/
// MatMul/Gemm (onnx-weights.ts) becomes a per-channel symmetric int8 tensor
// (scale = max|w| / 127 per output channel, zero point 0) feeding a
// DequantizeLinear node (QDQ, per-channel `axis`, opset ≥ 13) whose output
// keeps the weight's name, so its consumers are unchanged. Activations stay
// float. A model below opset 13 is moved to 13 when none of its operators
// changed meaning between its opset and 13; otherwise (and below opset 10)
// the weight is dequantised with Cast + Mul instead, which every opset has.
import { CairnError } from '../errors.ts';
import { FLOAT32 } from './numeric.ts';
import { defaultOpset, DEFAULT_DOMAINS, forEachGraph, Names, NodeInsertions, setDefaultOpset } from './onnx-graph.ts';
import { OnnxModel, tensorElements } from './onnx-model.ts';
import { AT, DT, toNumber, type NodeProto, type TensorProto } from './onnx-schema.ts';
import { findWeights, type Skipped } from './onnx-weights.ts';
import { channelLayout, channelMaxAbs, int8Scales, quantizeInt8 } from './tensor-ops.ts';

export interface Int8OnnxParams {
  transform: 'int8';
}

export interface QuantizedWeight {
  name: string;
  op: string;
  dims: number[];
  axis: number;
  channels: number;
}

export interface Int8OnnxReport {
  transform: 'int8';
  scheme: 'int8-symmetric-per-channel-weight-only';
  /** DequantizeLinear (QDQ), or Cast + Mul where the opset could not be moved to 13 */
  dequantize: 'DequantizeLinear' | 'Cast+Mul';
  opset: { from: number; to: number };
  weights: QuantizedWeight[];
  elements: number;
  skipped: Skipped[];
}

/** Operators whose meaning or signature changed after each opset (checked when moving a model to opset 13). */
const CHANGED_AFTER: Array<[number, string[]]> = [
  [12, ['Squeeze', 'Unsqueeze', 'Split', 'ReduceSum', 'Softmax', 'LogSoftmax', 'Hardmax']], // 13: axes/split become inputs; softmax axis semantics
  [11, ['Dropout']], // 12: ratio becomes an input
  [10, ['Pad', 'Clip', 'Resize', 'Upsample', 'Scatter']], // 11: pads/min/max/roi become inputs; Scatter deprecated
];

/** Whether the default-domain operators used would mean the same at opset 13; lists the ones that would not. */
export function opsetBlockers(model: OnnxModel, from: number): string[] | undefined {
  if (from < 10) return undefined;
  const changed = new Set(CHANGED_AFTER.filter(([after]) => from <= after).flatMap(([, ops]) => ops));
  const found = new Set<string>();
  forEachGraph(model.proto.graph!, (g) => {
    for (const n of g.node ?? []) if (DEFAULT_DOMAINS.has(n.domain ?? '') && changed.has(n.op_type ?? '')) found.add(n.op_type!);
  });
  return [...found].sort();
}

export async function quantizeWeightsInt8(model: OnnxModel, params: Int8OnnxParams): Promise<() => Int8OnnxReport> {
  if (params.transform !== 'int8') throw new CairnError('INVALID_ARGUMENT', 'int8: bad parameters');
  const from = defaultOpset(model.proto);
  let to = from;
  let dequantize: Int8OnnxReport['dequantize'] = 'DequantizeLinear';
  if (from < 13) {
    const blockers = opsetBlockers(model, from);
    if (blockers && blockers.length === 0) {
      to = 13;
      setDefaultOpset(model.proto, 13);
      if (toNumber(model.proto.ir_version) < 7) model.proto.ir_version = 7; // opset 13 needs IR version 7
    } else dequantize = 'Cast+Mul';
  }
  const { weights, skipped } = findWeights(model, (t) => t === DT.FLOAT);
  const names = new Names(model.proto);
  const insert = new NodeInsertions();
  const done: QuantizedWeight[] = [];
  let elements = 0;
  for (const w of weights) {
    const range = model.rawData(w.tensor)!;
    const tensor = { range, kind: FLOAT32, elements: tensorElements(w.tensor) };
    const layout = channelLayout(w.dims, w.axis);
    const stats = await channelMaxAbs(tensor, layout);
    if (stats.nonFinite > 0) {
      skipped.push({ name: w.name, reason: `${stats.nonFinite} NaN or infinite values` });
      continue;
    }
    const scales = int8Scales(stats.maxAbs);
    const qName = names.fresh(`${w.name}_quantized`);
    const scaleName = names.fresh(`${w.name}_scale`);
    const scaleDims = dequantize === 'DequantizeLinear' ? [layout.channels] : w.dims.map((d, i) => (i === w.axis ? d : 1));
    const scale = OnnxModel.tensor(scaleName, DT.FLOAT, scaleDims, new Uint8Array(scales.buffer));
    const extra: TensorProto[] = [scale];
    const nodes: NodeProto[] = [];
    if (dequantize === 'DequantizeLinear') {
      const zpName = names.fresh(`${w.name}_zero_point`);
      extra.push(OnnxModel.tensor(zpName, DT.INT8, [layout.channels], new Uint8Array(layout.channels)));
      nodes.push({
        name: names.fresh(`${w.name}_DequantizeLinear`),
        op_type: 'DequantizeLinear',
        input: [qName, scaleName, zpName],
        output: [w.name],
        attribute: [{ name: 'axis', type: AT.INT, i: w.axis }],
      });
    } else {
      const widened = names.fresh(`${w.name}_int8_as_float`);
      nodes.push(
        { name: names.fresh(`${w.name}_Cast`), op_type: 'Cast', input: [qName], output: [widened], attribute: [{ name: 'to', type: AT.INT, i: DT.FLOAT }] },
        { name: names.fresh(`${w.name}_Mul`), op_type: 'Mul', input: [widened, scaleName], output: [w.name] },
      );
    }
    model.setData(w.tensor, DT.INT8, quantizeInt8(tensor, layout, scales));
    if (w.constant) {
      w.constant.output = [qName];
      w.tensor.name = qName;
      const constants = extra.map((t): NodeProto => ({
        name: names.fresh(`${t.name}_Constant`),
        op_type: 'Constant',
        output: [t.name!],
        attribute: [{ name: 'value', type: AT.TENSOR, t }],
      }));
      insert.following(w.constant, ...constants, ...nodes);
    } else {
      w.tensor.name = qName;
      const list = w.graph.initializer!;
      list.splice(list.indexOf(w.tensor) + 1, 0, ...extra);
      insert.first(w.graph, ...nodes);
    }
    done.push({ name: w.name, op: w.consumer.op_type ?? '', dims: w.dims, axis: w.axis, channels: layout.channels });
    elements += tensor.elements;
  }
  insert.apply(model.proto.graph!);
  return () => ({ transform: 'int8', scheme: 'int8-symmetric-per-channel-weight-only', dequantize, opset: { from, to }, weights: done, elements, skipped });
}
