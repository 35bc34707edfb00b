// Limits on JSON a client sends (metadata, recipes, request bodies). JSON.parse
// takes any depth, but everything after it — canonical JSON, String(), the
// lineage documents — recurses, so a value nested a few thousand levels deep
// would end as a RangeError (500) instead of a 400.
import { CairnError } from './errors.ts';

/** Deepest nesting of a metadata object or a recipe: `{}` is 1, `{"a":{}}` is 2. */
export const MAX_JSON_DEPTH = 64;
/** Largest metadata object or recipe, as compact JSON. */
export const MAX_JSON_BYTES = 256 * 1024;

/** Where a value first nests deeper than `max` levels (`parents[0].recipe…`), or undefined. */
export function pathPastDepth(value: unknown, max: number): string | undefined {
  // iterative: the value may be as deep as its text is long
  const stack: Array<{ value: object; depth: number; path: string }> = [];
  const push = (v: unknown, depth: number, path: string) => {
    if (v !== null && typeof v === 'object') stack.push({ value: v, depth, path });
  };
  push(value, 1, '');
  while (stack.length > 0) {
    const { value: node, depth, path } = stack.pop()!;
    if (depth > max) return path === '' ? 'the top level' : path;
    for (const [key, child] of Object.entries(node)) {
      // the first few levels name the place; deeper ones add nothing readable
      const step = Array.isArray(node) ? `[${key}]` : `${path === '' ? '' : '.'}${key.length > 40 ? `${key.slice(0, 40)}…` : key}`;
      push(child, depth + 1, depth <= 3 ? path + step : path.endsWith('…') ? path : `${path}…`);
    }
  }
  return undefined;
}

/**
 * A client's JSON value (already parsed) within MAX_JSON_DEPTH and
 * MAX_JSON_BYTES; `field` names it in the error.
 */
export function checkJsonValue(field: string, value: unknown): void {
  const deep = pathPastDepth(value, MAX_JSON_DEPTH);
  if (deep !== undefined) {
    const where = deep.startsWith('[') ? `${field}${deep}` : `${field}.${deep}`;
    throw new CairnError('INVALID_ARGUMENT', `${field} is nested more than ${MAX_JSON_DEPTH} levels deep (at ${where})`, { field, max_depth: MAX_JSON_DEPTH });
  }
  if (Buffer.byteLength(JSON.stringify(value) ?? '') > MAX_JSON_BYTES) {
    throw new CairnError('INVALID_ARGUMENT', `${field} is longer than ${MAX_JSON_BYTES} bytes as JSON`, { field, max_bytes: MAX_JSON_BYTES });
  }
}
