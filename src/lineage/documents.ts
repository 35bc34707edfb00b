// The files an event writes into the lineage tree (DESIGN "Lineage"):
//   models/<name>/model.json               description, current aliases
//   models/<name>/versions/<version>.json  the version's manifest
// Keys are sorted and the JSON indented so that `git diff` reads well, and so
// the same state always produces the same bytes (rebuild equality).

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

export function stableJson(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

export function modelPath(name: string): string {
  return `models/${name}/model.json`;
}

export function versionPath(name: string, version: string): string {
  return `models/${name}/versions/${version}.json`;
}

/** A ref name git accepts (git-check-ref-format), for `<name>@<version>` tags. */
export function isValidTagName(tag: string): boolean {
  return !(
    tag.includes('..') ||
    tag.includes('@{') ||
    tag.endsWith('.') ||
    tag.endsWith('.lock') ||
    /[\s~^:?*[\\\x00-\x1f\x7f]/.test(tag) ||
    tag.startsWith('-')
  );
}
