// The recipe of a derived version's lineage edge: what was done (transform,
// parameters, tool versions, the derivation key) and what was measured
// (sizes raw and stored, agreement with the parent, latency), in a bounded
// shape: long lists (per tensor, per file) are cut — shorter the more files
// there are — with the number left out said, so that a recipe stays within
// RECIPE_BUDGET, well below the size a recipe may have (MAX_JSON_BYTES).
import type { DeriveReport } from './index.ts';
import type { Fp16Report } from './onnx-fp16.ts';
import type { Int8OnnxReport } from './onnx-int8.ts';
import type { GenerateSamples, OnnxMeasurement } from './onnx-measure.ts';
import type { PruneOnnxReport } from './onnx-prune.ts';
import type { SafetensorsRoundTrip } from './safetensors-measure.ts';
import type { SafetensorsReport } from './safetensors-transforms.ts';

/** Bytes of JSON a recipe may take: the version document holds it besides everything else. */
export const RECIPE_BUDGET = 192 * 1024;
/** Entries a list keeps, tried in turn until the recipe fits the budget. */
const CAPS = [256, 64, 16, 4, 0];

export interface SizePair {
  before: number;
  after: number;
}

export interface RecipeFile {
  path: string;
  format: 'onnx' | 'safetensors';
  /** raw bytes of the parent's file and of the derived one */
  size: SizePair;
  /** stored bytes (compressed, each distinct chunk once) of each */
  stored: SizePair;
  report: DeriveReport;
  measured: OnnxMeasurement | SafetensorsRoundTrip;
}

export interface RecipeInput {
  op: string;
  params: Record<string, unknown>;
  files: RecipeFile[];
  /** the inputs ONNX results were measured on; null when no ONNX file was transformed */
  samples: { file: string } | { generated: GenerateSamples } | null;
  key: string;
  tool: { derive_version: number; onnxruntime: string };
  /** whole versions: raw sizes, stored sizes, and what the derived one stores beyond its parent */
  size: SizePair;
  stored: SizePair & { new: number };
}

const ratio = (p: SizePair) => ({ ...p, ratio: p.before > 0 ? round(p.after / p.before, 6) : null });
const round = (x: number, digits: number) => Number(x.toFixed(digits));
/** The smallest value (NaN if any is; null for none). A loop: spreading 100k tensors into Math.min overflows the stack. */
const minOf = (values: number[]): number | null => (values.length === 0 ? null : values.reduce((m, v) => Math.min(m, v)));

/** The first `cap` entries under `key`, and `<key>_omitted` when there were more. */
function capped<T>(key: string, list: T[], cap: number): Record<string, unknown> {
  return list.length > cap ? { [key]: list.slice(0, cap), [`${key}_omitted`]: list.length - cap } : { [key]: list };
}

function onnxTransform(report: DeriveReport, cap: number): Record<string, unknown> {
  const r = report as (Fp16Report | Int8OnnxReport | PruneOnnxReport) & { transform: string };
  if (r.transform === 'fp16') {
    const f = r as Fp16Report;
    return {
      tensors: f.tensors,
      elements: f.elements,
      kept_float32: f.keptFloat32,
      overflow_to_inf: f.overflowToInf,
      underflow_to_zero: f.underflowToZero,
      clamped: f.clamped,
      casts_inserted: f.castsInserted,
      blocked: f.blocked,
      ...capped('blocked_for_range', f.blockedForRange, cap),
    };
  }
  if (r.transform === 'int8') {
    const q = r as Int8OnnxReport;
    return { scheme: q.scheme, dequantize: q.dequantize, opset: q.opset, weights: q.weights.length, elements: q.elements, ...capped('skipped', q.skipped, cap) };
  }
  const p = r as PruneOnnxReport;
  return {
    sparsity: p.sparsity,
    achieved: p.achieved,
    weights: p.weights.length,
    min_sparsity: minOf(p.weights.map((w) => w.sparsity)),
    ...capped('tensors', p.weights.map((w) => ({ name: w.name, op: w.op, elements: w.elements, sparsity: w.sparsity, max_pruned: w.maxPruned })), cap),
    ...capped('skipped', p.skipped, cap),
  };
}

function safetensorsTransform(report: DeriveReport, cap: number): Record<string, unknown> {
  const r = report as SafetensorsReport;
  const base = { tensors: r.tensors, changed: r.changed.length, ...capped('kept', r.kept, cap) };
  if (r.transform === 'cast') return { ...base, to: (r.params as { to: string }).to, overflow_to_inf: r.overflowToInf ?? 0, underflow_to_zero: r.underflowToZero ?? 0 };
  if (r.transform === 'prune') {
    return { ...base, sparsity: (r.params as { sparsity: number }).sparsity, achieved: r.sparsity ?? 0, min_sparsity: minOf(r.changed.map((c) => c.sparsity ?? 0)) };
  }
  return base;
}

function onnxMeasured(m: OnnxMeasurement): Record<string, unknown> {
  const outputs = m.outputs.map((o) => ({ name: o.name, elements: o.elements, max_abs_error: o.maxAbsError, mean_abs_error: o.meanAbsError, cosine: o.cosine, min_cosine: o.minCosine }));
  return {
    runtime: m.runtime,
    threads: m.threads,
    samples: m.samples,
    cosine_min: minOf(outputs.map((o) => o.cosine)),
    outputs,
    latency_ms: { parent: round(m.latencyMs.parent, 3), derived: round(m.latencyMs.derived, 3), runs: m.latencyMs.runs },
  };
}

function safetensorsMeasured(m: SafetensorsRoundTrip, cap: number): Record<string, unknown> {
  const tensors = m.tensors.map((t) => ({
    name: t.name,
    from: t.from,
    to: t.to,
    elements: t.elements,
    ...(t.maxAbsError !== undefined ? { max_abs_error: t.maxAbsError, mean_abs_error: t.meanAbsError, sparsity: t.sparsity } : { identical: t.identical }),
  }));
  return { max_abs_error: m.maxAbsError, ...capped('tensors', tensors, cap) };
}

function build(input: RecipeInput, cap: number, files: number): Record<string, unknown> {
  return {
    transform: input.op,
    params: input.params,
    ...capped('files', input.files.map((f) => f.path), Math.max(files, 64)),
    samples: input.samples,
    key: input.key,
    tool: { name: 'cairn derive', ...input.tool },
    results: {
      size: ratio(input.size),
      stored: { ...ratio(input.stored), new: input.stored.new },
      files: input.files.slice(0, files).map((f) => ({
        path: f.path,
        format: f.format,
        size: ratio(f.size),
        stored: ratio(f.stored),
        transform: f.format === 'onnx' ? onnxTransform(f.report, cap) : safetensorsTransform(f.report, cap),
        measured: f.format === 'onnx' ? onnxMeasured(f.measured as OnnxMeasurement) : safetensorsMeasured(f.measured as SafetensorsRoundTrip, cap),
      })),
      ...(files < input.files.length ? { files_omitted: input.files.length - files } : {}),
    },
  };
}

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

/** The recipe, as it goes into the lineage edge (so into the version document and git), within RECIPE_BUDGET. */
export function deriveRecipe(input: RecipeInput): Record<string, unknown> {
  for (const cap of CAPS) {
    const recipe = build(input, cap, input.files.length);
    if (bytes(recipe) <= RECIPE_BUDGET) return recipe;
  }
  // very many files: the results of as many as fit (the totals cover all of them)
  for (let files = input.files.length >> 1; files > 0; files >>= 1) {
    const recipe = build(input, 0, files);
    if (bytes(recipe) <= RECIPE_BUDGET) return recipe;
  }
  return build(input, 0, 0);
}
