// What a derive request may say, checked before a job exists: the body's
// fields, each op's parameters with their defaults, the measurement's
// samples, the default target version. Everything here is 400 INVALID_ARGUMENT.
import { type DeriveOp } from '../api/index.ts';
import type { GenerateSamples } from '../derive/onnx-measure.ts';
import { CairnError } from '../errors.ts';

/** Each op's parameters and their defaults (anything else in `params` is 400). */
const PARAMS: Record<DeriveOp, Record<string, unknown>> = {
  cast: { to: 'BF16' },
  fp16: { minPositive: 1e-7, maxFinite: 1e4, opBlockList: [], nodeBlockList: [] },
  int8: {},
  prune: { sparsity: 0.5 },
};

export const REQUEST_FIELDS = new Set(['op', 'params', 'to', 'files', 'samples', 'measure', 'message']);
const MEASURE_FIELDS = new Set(['count', 'seed', 'shapes', 'values', 'repeat']);

export function invalid(message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', message);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function unknownFields(what: string, value: Record<string, unknown>, known: Set<string> | string[]): void {
  const allowed = known instanceof Set ? known : new Set(known);
  const extra = Object.keys(value).filter((k) => !allowed.has(k));
  if (extra.length > 0) throw invalid(`${what}: unknown field ${extra.map((k) => JSON.stringify(k)).join(', ')} (accepted: ${[...allowed].join(', ') || 'none'})`);
}

export function stringList(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 1024) || value.length > 1000) {
    throw invalid(`${field} must be a list of at most 1000 non-empty strings`);
  }
  return value as string[];
}

/** An op's parameters with their defaults filled in, each checked. */
export function normalizeParams(op: DeriveOp, given: unknown): Record<string, unknown> {
  if (given !== undefined && given !== null && !isObject(given)) throw invalid('params must be a JSON object');
  const raw = (given ?? {}) as Record<string, unknown>;
  unknownFields(`params of ${op}`, raw, Object.keys(PARAMS[op]));
  const p = { ...PARAMS[op], ...raw };
  if (op === 'cast') {
    const to = typeof p.to === 'string' ? p.to.toUpperCase() : p.to;
    if (to !== 'BF16' && to !== 'F16') throw invalid(`cast: params.to must be BF16 or F16, got ${JSON.stringify(p.to)}`);
    p.to = to;
  } else if (op === 'prune') {
    if (typeof p.sparsity !== 'number' || !(p.sparsity >= 0 && p.sparsity <= 1)) throw invalid(`prune: params.sparsity must be a number from 0 to 1, got ${JSON.stringify(p.sparsity)}`);
  } else if (op === 'fp16') {
    const { minPositive, maxFinite } = p;
    if (typeof minPositive !== 'number' || typeof maxFinite !== 'number' || !(minPositive > 0 && maxFinite > minPositive && maxFinite <= 65504)) {
      throw invalid('fp16: params.minPositive and params.maxFinite must be numbers with 0 < minPositive < maxFinite <= 65504');
    }
    p.opBlockList = stringList('fp16: params.opBlockList', p.opBlockList);
    p.nodeBlockList = stringList('fp16: params.nodeBlockList', p.nodeBlockList);
  }
  return p;
}

export function parseMeasure(value: unknown): { generated: GenerateSamples; repeat: number } {
  if (value !== undefined && !isObject(value)) throw invalid('measure must be a JSON object');
  const m = (value ?? {}) as Record<string, unknown>;
  unknownFields('measure', m, MEASURE_FIELDS);
  const int = (field: string, fallback: number, min: number, max: number): number => {
    const v = m[field] ?? fallback;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw invalid(`measure.${field} must be a whole number from ${min} to ${max}`);
    return v as number;
  };
  const generated: GenerateSamples = { count: int('count', 4, 1, 64), seed: int('seed', 0, 0, 0xffffffff) };
  if (m.shapes !== undefined) {
    if (!isObject(m.shapes)) throw invalid('measure.shapes must map input names to shapes');
    for (const [k, s] of Object.entries(m.shapes)) {
      if (!Array.isArray(s) || s.length > 16 || s.some((d) => !Number.isInteger(d) || d < 1 || d > 1 << 20) || s.reduce((a: number, d: number) => a * d, 1) > 1 << 26) {
        throw invalid(`measure.shapes.${k} must be a list of at most 16 whole numbers >= 1, at most ${1 << 26} elements`);
      }
    }
    generated.shapes = m.shapes as Record<string, number[]>;
  }
  if (m.values !== undefined) {
    if (!isObject(m.values) || Object.values(m.values).some((v) => typeof v !== 'number' || !Number.isFinite(v))) throw invalid('measure.values must map input names to numbers');
    generated.values = m.values as Record<string, number>;
  }
  return { generated, repeat: int('repeat', 3, 1, 20) };
}

/** The version a derivation publishes to when the request names none: `<parent version>-<op>`. */
export function defaultTargetVersion(parentVersion: string, op: DeriveOp, params: Record<string, unknown>): string {
  const label = op === 'cast' ? String(params.to).toLowerCase() : op === 'prune' ? `prune${Number(((params.sparsity as number) * 100).toFixed(2))}` : op;
  return `${parentVersion}-${label}`;
}
