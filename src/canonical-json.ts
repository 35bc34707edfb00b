// The one canonical JSON: object keys sorted at every level, undefined
// members left out. Compact, it is what a version's manifest digest is the
// sha256 of; indented (with a final newline) it is every file of the lineage
// repository, so that `git diff` reads well and the same state always gives
// the same bytes (rebuild equality).

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}

/** Compact canonical JSON: what digests are computed over. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** The same, indented, with a final newline: a file of the lineage repository. */
export function canonicalJsonFile(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}
