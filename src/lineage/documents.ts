// The files an event writes into the lineage tree (DESIGN "Lineage"):
//   models/<name>/model.json               description, current aliases
//   models/<name>/README.md                the model's card (PATCH /v1/models/{name}), if any
//   models/<name>/versions/<version>.json  the version's manifest
// Their JSON is canonical (../canonical-json.ts: canonicalJsonFile).

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

/** `models/<name>/README.md`: the model's card, when it has one. */
export function readmePath(name: string): string {
  return `models/${name}/README.md`;
}
