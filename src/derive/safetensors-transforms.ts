// The safetensors transforms: cast (F32 → BF16/F16), int8 (per-channel
// symmetric, scales in `<name>.scale`), prune (magnitude, per tensor). Each
// reads what it needs to decide (int8: per-channel maxima; prune: the k-th
// smallest magnitude) before the first output byte, then streams the new file
// tensor by tensor. Memory: one 1 MiB window in and out, the header, and per
// tensor a scale per channel or a histogram — never a whole tensor.
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { BFLOAT16, FLOAT16, FLOAT32, type FloatKind } from './numeric.ts';
import { readSafetensorsLayout, safetensorsBytes, safetensorsHeader, safetensorsSize, type OutputTensor, type SafetensorsEntry } from './safetensors-file.ts';
import { bytesStream, derived, rangeStream, type Derived } from './stream.ts';
import {
  castFloat32,
  channelLayout,
  channelMaxAbs,
  emptyCastCounts,
  int8Scales,
  pruneCount,
  prunePlan,
  pruneStream,
  quantizeInt8,
  type CastCounts,
  type FloatTensor,
  type PruneCounts,
} from './tensor-ops.ts';

export type SafetensorsParams =
  | { transform: 'cast'; to: 'BF16' | 'F16' }
  | { transform: 'int8' }
  | { transform: 'prune'; sparsity: number };

export interface TensorChange {
  name: string;
  from: string;
  to: string;
  elements: number;
  /** cast: finite values that became ±inf */
  overflowToInf?: number;
  /** cast: non-zero values that became ±0 */
  underflowToZero?: number;
  /** int8: channels (scales) */
  channels?: number;
  /** prune: fraction of zeros after pruning */
  sparsity?: number;
}

export interface SafetensorsReport {
  transform: SafetensorsParams['transform'];
  params: SafetensorsParams;
  /** tensors in the input */
  tensors: number;
  /** tensors the transform changed (in input order) */
  changed: TensorChange[];
  /** tensors kept byte for byte, and why */
  kept: { name: string; dtype: string; reason: string }[];
  /** cast: totals over all tensors */
  overflowToInf?: number;
  underflowToZero?: number;
  /** prune: zeros / elements over the pruned tensors */
  sparsity?: number;
  size: { before: number; after: number };
}

/** The `__metadata__` keys int8 adds (existing metadata is kept). */
export const INT8_METADATA: Array<[string, string]> = [
  ['cairn.quantization', 'int8-symmetric-per-channel'],
  ['cairn.quantization.axis', '0'],
  ['cairn.quantization.scale_suffix', '.scale'],
  ['cairn.quantization.source_dtype', 'F32'],
  [
    'cairn.quantization.dequantize',
    'for each I8 tensor <name> with a F32 tensor <name>.scale of shape [dim0]: value[i, ...] = <name>[i, ...] * <name>.scale[i]',
  ],
];

const FLOAT_KINDS: Record<string, FloatKind> = { F32: FLOAT32, F16: FLOAT16, BF16: BFLOAT16 };

function elementsOf(shape: number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function floatTensor(file: FileSource, t: SafetensorsEntry, kind: FloatKind): FloatTensor {
  return { range: { file, begin: t.begin, end: t.end }, kind, elements: elementsOf(t.shape) };
}

export function checkSafetensorsParams(params: SafetensorsParams): void {
  const p = params as { transform?: unknown; to?: unknown; sparsity?: unknown };
  if (p.transform === 'cast') {
    if (p.to !== 'BF16' && p.to !== 'F16') throw new CairnError('INVALID_ARGUMENT', 'cast: `to` must be BF16 or F16');
  } else if (p.transform === 'prune') {
    if (typeof p.sparsity !== 'number' || !(p.sparsity >= 0 && p.sparsity <= 1)) {
      throw new CairnError('INVALID_ARGUMENT', 'prune: `sparsity` must be a number from 0 to 1');
    }
  } else if (p.transform !== 'int8') {
    throw new CairnError('INVALID_ARGUMENT', `unknown safetensors transform ${JSON.stringify(p.transform)} (cast, int8, prune)`);
  }
}

/** Derives a safetensors file from `file` (see SafetensorsParams). Reads statistics first; the output streams. */
export async function deriveSafetensors(file: FileSource, params: SafetensorsParams): Promise<Derived<SafetensorsReport>> {
  checkSafetensorsParams(params);
  const layout = await readSafetensorsLayout(file);
  const out: OutputTensor[] = [];
  const kept: SafetensorsReport['kept'] = [];
  const changed: Array<{ change: TensorChange; finish?: () => void }> = [];
  const keep = (t: SafetensorsEntry, reason: string): void => {
    out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: rangeStream({ file, begin: t.begin, end: t.end }) });
    kept.push({ name: t.name, dtype: t.dtype, reason });
  };
  let metadata = layout.metadata;
  const totals = emptyCastCounts();
  let prunedZeros = 0;
  let prunedElements = 0;

  if (params.transform === 'cast') {
    const to = params.to === 'BF16' ? 'bfloat16' : 'float16';
    for (const t of layout.tensors) {
      if (t.dtype !== 'F32') {
        keep(t, 'not F32');
        continue;
      }
      const counts = emptyCastCounts();
      const change: TensorChange = { name: t.name, from: 'F32', to: params.to, elements: elementsOf(t.shape) };
      out.push({ name: t.name, dtype: params.to, shape: t.shape, data: castFloat32(floatTensor(file, t, FLOAT32), to, counts) });
      changed.push({
        change,
        finish: () => {
          change.overflowToInf = counts.overflowToInf;
          change.underflowToZero = counts.underflowToZero;
          addCounts(totals, counts);
        },
      });
    }
  } else if (params.transform === 'int8') {
    const names = new Set(layout.tensors.map((t) => t.name));
    for (const t of layout.tensors) {
      if (t.dtype !== 'F32') {
        keep(t, 'not F32');
        continue;
      }
      if (t.shape.length < 2 || elementsOf(t.shape) === 0) {
        keep(t, 'fewer than 2 dimensions');
        continue;
      }
      const scaleName = `${t.name}.scale`;
      if (names.has(scaleName)) throw new CairnError('INVALID_ARGUMENT', `int8: the input already has a tensor named ${scaleName}`);
      const tensor = floatTensor(file, t, FLOAT32);
      const channels = channelLayout(t.shape, 0);
      const stats = await channelMaxAbs(tensor, channels);
      if (stats.nonFinite > 0) {
        keep(t, `${stats.nonFinite} NaN or infinite values`);
        continue;
      }
      const scales = int8Scales(stats.maxAbs);
      out.push({ name: t.name, dtype: 'I8', shape: t.shape, data: quantizeInt8(tensor, channels, scales) });
      out.push({ name: scaleName, dtype: 'F32', shape: [channels.channels], data: bytesStream(new Uint8Array(scales.buffer)) });
      changed.push({ change: { name: t.name, from: 'F32', to: 'I8', elements: tensor.elements, channels: channels.channels } });
    }
    if (changed.length > 0) metadata = mergeMetadata(metadata, INT8_METADATA);
  } else {
    for (const t of layout.tensors) {
      const kind = FLOAT_KINDS[t.dtype];
      if (!kind) {
        keep(t, 'not a float tensor');
        continue;
      }
      if (t.shape.length < 2 || elementsOf(t.shape) === 0) {
        keep(t, 'fewer than 2 dimensions');
        continue;
      }
      const tensor = floatTensor(file, t, kind);
      const plan = await prunePlan(tensor, pruneCount(tensor.elements, params.sparsity));
      const counts: PruneCounts = { zeros: 0, maxPruned: 0 };
      const change: TensorChange = { name: t.name, from: t.dtype, to: t.dtype, elements: tensor.elements };
      out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: pruneStream(tensor, plan, counts) });
      changed.push({
        change,
        finish: () => {
          change.sparsity = counts.zeros / tensor.elements;
          prunedZeros += counts.zeros;
          prunedElements += tensor.elements;
        },
      });
    }
  }

  const header = safetensorsHeader(metadata, out);
  const size = safetensorsSize(header, out);
  let report: SafetensorsReport | undefined;
  return derived(
    size,
    () => safetensorsBytes(header, out),
    () => {
      if (report) return report;
      for (const c of changed) c.finish?.();
      report = {
        transform: params.transform,
        params,
        tensors: layout.tensors.length,
        changed: changed.map((c) => c.change),
        kept,
        size: { before: file.size, after: size },
      };
      if (params.transform === 'cast') {
        report.overflowToInf = totals.overflowToInf;
        report.underflowToZero = totals.underflowToZero;
      }
      if (params.transform === 'prune') report.sparsity = prunedElements ? prunedZeros / prunedElements : 0;
      return report;
    },
  );
}

function addCounts(into: CastCounts, add: CastCounts): void {
  into.overflowToInf += add.overflowToInf;
  into.underflowToZero += add.underflowToZero;
  into.clamped += add.clamped;
}

function mergeMetadata(base: Array<[string, string]> | undefined, add: Array<[string, string]>): Array<[string, string]> {
  const keys = new Set(add.map(([k]) => k));
  return [...(base ?? []).filter(([k]) => !keys.has(k)), ...add];
}
