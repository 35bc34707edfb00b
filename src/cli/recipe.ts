// The numbers of a derived version's recipe (src/derive/recipe.ts), as lines
// for `cairn show` and `cairn derive`: what was done, the sizes raw and
// stored, and per file what was measured against the parent.
import type { ParentDoc } from '../api/index.ts';
import { formatBytes } from './common.ts';

/* The recipe is JSON from the server; only its derive form is read here, defensively. */
type Json = Record<string, any>;

const num = (x: unknown, digits = 4): string => (typeof x === 'number' && Number.isFinite(x) ? String(Number(x.toPrecision(digits))) : 'n/a');
const sizes = (s: Json | undefined): string =>
  s ? `${formatBytes(s.before)} → ${formatBytes(s.after)}${typeof s.ratio === 'number' ? ` (${num(s.ratio)}×)` : ''}` : 'n/a';

/** Whether a parent edge's recipe is one `cairn derive` wrote. */
export function isDeriveRecipe(recipe: unknown): recipe is Json {
  const r = recipe as Json | null;
  return !!r && typeof r === 'object' && r.tool?.name === 'cairn derive' && typeof r.results === 'object' && r.results !== null;
}

function measuredLine(f: Json): string {
  const m = f.measured ?? {};
  if (f.format === 'onnx') {
    const outputs = (m.outputs ?? []) as Json[];
    const agreement = outputs.map((o) => `${o.name}: cosine ${num(o.cosine, 7)}, max |err| ${num(o.max_abs_error, 3)}, mean |err| ${num(o.mean_abs_error, 3)}`).join('; ');
    const latency = m.latency_ms ? `; median latency ${num(m.latency_ms.parent, 3)} → ${num(m.latency_ms.derived, 3)} ms` : '';
    const samples = m.samples ? ` (${m.samples.count} ${m.samples.source === 'file' ? 'samples from the file' : `generated inputs, seed ${m.samples.seed}`})` : '';
    return `${agreement}${latency}${samples}`;
  }
  const tensors = (m.tensors ?? []) as Json[];
  const floats = tensors.filter((t) => typeof t.max_abs_error === 'number');
  const worst = floats.reduce<Json | undefined>((w, t) => (!w || t.max_abs_error > w.max_abs_error ? t : w), undefined);
  return `round trip max |err| ${num(m.max_abs_error, 3)} over ${floats.length} float tensor(s)${worst ? ` (worst ${worst.name})` : ''}`;
}

function transformLine(f: Json): string | undefined {
  const t = f.transform ?? {};
  if (typeof t.min_sparsity === 'number') return `zeros: ${num(t.achieved)} overall, at least ${num(t.min_sparsity)} in each of ${t.weights ?? t.changed} pruned tensor(s)`;
  if (typeof t.overflow_to_inf === 'number' && (t.overflow_to_inf > 0 || t.underflow_to_zero > 0)) return `${t.overflow_to_inf} value(s) became ±inf, ${t.underflow_to_zero} became ±0`;
  return undefined;
}

/** The lines describing a derive recipe, indented by `indent`. */
export function recipeLines(recipe: Json, indent: string): string[] {
  const r = recipe.results;
  const params = Object.keys(recipe.params ?? {}).length > 0 ? ` ${JSON.stringify(recipe.params)}` : '';
  const lines = [
    `${recipe.transform}${params} by cairn derive ${recipe.tool.derive_version} (${recipe.tool.onnxruntime ?? 'no runtime'})`,
    `size ${sizes(r.size)}; stored ${sizes(r.stored)}${typeof r.stored?.new === 'number' ? `, ${formatBytes(r.stored.new)} beyond the parent` : ''}`,
  ];
  for (const f of (r.files ?? []) as Json[]) {
    lines.push(`${f.path}: ${sizes(f.size)}, stored ${sizes(f.stored)}`);
    lines.push(`  ${measuredLine(f)}`);
    const t = transformLine(f);
    if (t) lines.push(`  ${t}`);
  }
  return lines.map((l) => `${indent}${l}`);
}

/** For `cairn show`: a `derived:` block per parent edge made by `cairn derive`. */
export function derivedLines(parents: ParentDoc[]): string[] {
  const out: string[] = [];
  for (const p of parents) {
    if (!isDeriveRecipe(p.recipe)) continue;
    const [first, ...rest] = recipeLines(p.recipe, '               ');
    out.push(`  derived:     ${first!.trimStart()}`, ...rest);
  }
  return out;
}
