// Magnitude pruning for ONNX: each float weight of Conv/ConvTranspose/MatMul/
// Gemm (onnx-weights.ts) keeps its type and shape with its ⌈sparsity × n⌉
// smallest-magnitude elements set to zero (ties broken by element order).
import { CairnError } from '../errors.ts';
import { BFLOAT16, FLOAT16, FLOAT32, type FloatKind } from './numeric.ts';
import type { OnnxModel } from './onnx-model.ts';
import { DT } from './onnx-schema.ts';
import { findWeights, type Skipped } from './onnx-weights.ts';
import { pruneCount, prunePlan, pruneStream, type PruneCounts } from './tensor-ops.ts';

export interface PruneOnnxParams {
  transform: 'prune';
  /** target fraction of zeros per weight, 0…1 */
  sparsity: number;
}

export interface PrunedWeight {
  name: string;
  op: string;
  elements: number;
  /** zeros / elements after pruning */
  sparsity: number;
  /** the largest magnitude set to zero */
  maxPruned: number;
}

export interface PruneOnnxReport {
  transform: 'prune';
  sparsity: number;
  weights: PrunedWeight[];
  /** zeros / elements over all pruned weights */
  achieved: number;
  skipped: Skipped[];
}

const KINDS: Record<number, FloatKind> = { [DT.FLOAT]: FLOAT32, [DT.FLOAT16]: FLOAT16, [DT.BFLOAT16]: BFLOAT16 };

export async function pruneWeights(model: OnnxModel, params: PruneOnnxParams): Promise<() => PruneOnnxReport> {
  if (typeof params.sparsity !== 'number' || !(params.sparsity >= 0 && params.sparsity <= 1)) {
    throw new CairnError('INVALID_ARGUMENT', 'prune: `sparsity` must be a number from 0 to 1');
  }
  const { weights, skipped } = findWeights(model, (t) => KINDS[t] !== undefined);
  const pruned: Array<{ name: string; op: string; elements: number; counts: PruneCounts }> = [];
  for (const w of weights) {
    const kind = KINDS[w.tensor.data_type!]!;
    const elements = w.dims.reduce((a, d) => a * d, 1);
    const tensor = { range: model.rawData(w.tensor)!, kind, elements };
    const plan = await prunePlan(tensor, pruneCount(elements, params.sparsity));
    const counts: PruneCounts = { zeros: 0, maxPruned: 0 };
    model.setData(w.tensor, w.tensor.data_type!, pruneStream(tensor, plan, counts));
    pruned.push({ name: w.name, op: w.consumer.op_type ?? '', elements, counts });
  }
  return () => {
    const zeros = pruned.reduce((n, p) => n + p.counts.zeros, 0);
    const elements = pruned.reduce((n, p) => n + p.elements, 0);
    return {
      transform: 'prune',
      sparsity: params.sparsity,
      weights: pruned.map((p) => ({ name: p.name, op: p.op, elements: p.elements, sparsity: p.counts.zeros / p.elements, maxPruned: p.counts.maxPruned })),
      achieved: elements ? zeros / elements : 0,
      skipped,
    };
  };
}
