// Validation of every identifier a client can send, per DESIGN "Identifiers".
// Each check throws a CairnError with a message that names the offending value.
import { CairnError } from './errors.ts';

/** One part of a model name (namespace or base), an alias, a namespace filter. */
const NAME_PART = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const LATEST = 'latest';
/** Hugging Face clients' default branch: the latest version, as `latest` is. */
export const MAIN = 'main';
/** Most characters in a model name, namespace and '/' included. */
export const MAX_NAME = 128;

/**
 * Words that follow a model name in a route (`/v1/models/<name>/versions`,
 * `/hf/<name>/resolve/…`, `/hf/api/models/<name>/tree/…`, the OCI
 * `/v2/<name>/manifests/…` to come) or in the lineage tree
 * (`models/<name>/model.json`, `models/<name>/versions/`). A name is
 * `[<namespace>/]<base>`, so in `/v1/models/acme/versions` the segment after
 * `acme` is either the base name of a model `acme/versions` or the word
 * `versions` of model `acme`: no part of a name may be one of these words, and
 * so the path reads one way only (see modelNameRoutes in http/route.ts).
 * `api` is the Hub API's prefix (`/hf/api/…`).
 */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  // the REST API and the lineage tree
  'versions', 'aliases', 'history', 'model.json',
  // the Hugging Face Hub API (/hf)
  'api', 'resolve', 'raw', 'blob', 'tree', 'revision', 'refs', 'commits', 'commit', 'paths-info', 'preupload', 'branch', 'tag',
  // the OCI distribution API (/v2)
  'blobs', 'manifests', 'tags', 'referrers',
]);

function show(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

export function isReservedWord(segment: string): boolean {
  return RESERVED_WORDS.has(segment);
}

function reservedName(value: string, word: string): CairnError {
  return new CairnError(
    'INVALID_NAME',
    `invalid model name ${show(value)}: ${show(word)} is a reserved word — it follows a model name in routes or in the lineage tree, so no namespace or name may be one of: ${[...RESERVED_WORDS].join(', ')}`,
  );
}

/**
 * A model name as it may be looked up: `<base>` or `<namespace>/<base>`, each
 * part lowercase letters and digits separated by single '.', '_' or '-', at
 * most 128 characters in all. A namespaced name never holds a reserved word;
 * a flat one may, if it was created before the words were reserved (it stays
 * readable and writable: a flat name is the first segment of a path, which
 * no reserved word can be mistaken for). New models: checkNewName.
 */
export function checkName(value: unknown): string {
  const parts = typeof value === 'string' && value.length <= MAX_NAME ? value.split('/') : [];
  if (parts.length === 0 || parts.length > 2 || !parts.every((p) => NAME_PART.test(p))) {
    throw new CairnError(
      'INVALID_NAME',
      `invalid model name ${show(value)}: [<namespace>/]<name>, each part lowercase letters and digits separated by single '.', '_' or '-', at most ${MAX_NAME} characters in all`,
    );
  }
  const word = parts.length === 2 ? parts.find(isReservedWord) : undefined;
  if (word !== undefined) throw reservedName(value as string, word);
  return value as string;
}

/** The name of a model about to be created: checkName, and no part a reserved word. */
export function checkNewName(value: unknown): string {
  const name = checkName(value);
  const word = name.split('/').find(isReservedWord);
  if (word !== undefined) throw reservedName(name, word);
  return name;
}

/** A namespace as a filter names it (`?namespace=acme`). */
export function checkNamespace(value: unknown): string {
  if (typeof value !== 'string' || value.length >= MAX_NAME || !NAME_PART.test(value)) {
    throw new CairnError('INVALID_ARGUMENT', `invalid namespace ${show(value)}: lowercase letters and digits, separated by single '.', '_' or '-'`);
  }
  return value;
}

export function checkVersion(value: unknown): string {
  if (value === undefined || value === null || value === '') {
    throw new CairnError('INVALID_VERSION', 'the version field is required');
  }
  if (typeof value !== 'string' || !VERSION.test(value)) {
    throw new CairnError('INVALID_VERSION', `invalid version ${show(value)}: 1-128 characters of letters, digits, '.', '_', '+' or '-', starting with a letter or digit`);
  }
  if (value === LATEST || DIGEST.test(value)) {
    throw new CairnError('INVALID_VERSION', `version ${show(value)} is reserved`);
  }
  return value;
}

/**
 * A version about to be published: checkVersion, and not `main` either —
 * Hugging Face clients ask for `main` by default, meaning the latest version;
 * a version of that name would silently change what they get. (One published
 * before stays addressable by checkVersion.)
 */
export function checkNewVersion(value: unknown): string {
  const version = checkVersion(value);
  if (version === MAIN) throw new CairnError('INVALID_VERSION', `version ${show(value)} is reserved: '${MAIN}' is the latest version, the branch Hugging Face clients ask for by default`);
  return version;
}

/** An alias as it may be looked up or removed (one made before `main` was reserved, too); not `latest`, which is automatic. */
export function checkAliasName(value: unknown): string {
  if (typeof value !== 'string' || value.length > 128 || !NAME_PART.test(value)) {
    throw new CairnError('INVALID_ALIAS', `invalid alias ${show(value)}: lowercase letters and digits, separated by single '.', '_' or '-'`);
  }
  if (value === LATEST) {
    throw new CairnError('INVALID_ALIAS', `'${LATEST}' is reserved: it always points at the most recently published version`);
  }
  return value;
}

/** An alias about to be set: neither `latest` nor `main` (both mean the latest version; an alias `main` would silently change what Hugging Face clients get). */
export function checkAlias(value: unknown): string {
  const alias = checkAliasName(value);
  if (alias === MAIN) {
    throw new CairnError('INVALID_ALIAS', `'${MAIN}' is reserved: it is the latest version, the branch Hugging Face clients ask for by default`);
  }
  return alias;
}

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

export function checkDigest(value: unknown): string {
  if (typeof value !== 'string' || !DIGEST.test(value)) {
    throw new CairnError('INVALID_DIGEST', `invalid digest ${show(value)}: expected sha256:<64 lowercase hex>`);
  }
  return value;
}

/** A ref is what follows '@': a digest, a version or an alias (including `latest`). */
export function checkRef(value: unknown): string {
  if (typeof value !== 'string' || !(DIGEST.test(value) || VERSION.test(value))) {
    throw new CairnError('INVALID_REF', `invalid ref ${show(value)}: expected a version, an alias or sha256:<hex>`);
  }
  return value;
}

/** `name@ref` as used by parents and the CLI. */
export function parseNameRef(value: unknown): { name: string; ref: string } {
  if (typeof value !== 'string' || !value.includes('@')) {
    throw new CairnError('INVALID_REF', `invalid reference ${show(value)}: expected <name>@<ref>`);
  }
  const at = value.indexOf('@');
  return { name: checkName(value.slice(0, at)), ref: checkRef(value.slice(at + 1)) };
}

// Control characters (C0, DEL, C1) are never part of a file path.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Characters that make two paths look alike or reorder what is shown: format
// characters (zero-width U+200B–U+200D, U+2060, U+FEFF; bidi controls U+200E/F,
// U+202A–U+202E, U+2066–U+2069, U+061C; soft hyphen …), line and paragraph
// separators, lone surrogates, and U+FFFD, which is what undecodable bytes
// (invalid UTF-8 in a multipart filename) turn into.
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}\uFFFD]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'gu');
// `C:x`, `C:/x`: a drive on Windows, outside any output directory.
const DRIVE = /^[A-Za-z]:/;

/** Most files one version may hold (multipart or JSON publish, cairn push). */
export const MAX_FILES_PER_VERSION = 10_000;
/** Most parents one version may name. */
export const MAX_PARENTS = 64;

/** A path with invisible characters spelled out, for messages. */
function showPath(value: string): string {
  return show(value.replace(INVISIBLE_ALL, (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`));
}

function pathError(value: unknown, why: string): CairnError {
  return new CairnError('INVALID_PATH', `invalid file path ${typeof value === 'string' ? showPath(value) : show(value)}: ${why}`);
}

/**
 * The shape every file path has, stored or asked for: relative, '/'-separated,
 * no '..', '.', empty segments or control chars, ≤ 1024 bytes. Reads check
 * only this, so that what was stored stays reachable.
 */
export function checkPathShape(value: unknown): string {
  const bad = (why: string): never => {
    throw pathError(value, why);
  };
  if (typeof value !== 'string' || value.length === 0) return bad('a path is required');
  if (Buffer.byteLength(value, 'utf8') > 1024) bad('longer than 1024 bytes');
  if (CONTROL.test(value)) bad('control characters are not allowed');
  if (value.includes('\\')) bad("use '/' as the separator");
  if (value.startsWith('/')) bad('must be relative');
  for (const segment of value.split('/')) {
    if (segment === '') bad('empty segment');
    if (segment === '.' || segment === '..') bad(`'${segment}' segments are not allowed`);
  }
  return value;
}

/**
 * A path a new file is stored under: the shape above, in Unicode NFC (the
 * form returned and stored, so that `é` typed either way is one path), with
 * no invisible or bidi characters, no drive letter (`C:x`) and no segment
 * ending in '.' or ' ' (Windows drops those: `a.` would be the file `a`).
 */
export function checkFilePath(value: unknown): string {
  const path = checkPathShape(value).normalize('NFC');
  const bad = (why: string): never => {
    throw pathError(value, why);
  };
  if (Buffer.byteLength(path, 'utf8') > 1024) bad('longer than 1024 bytes in Unicode NFC');
  if (INVISIBLE.test(path)) bad('invisible, bidi-control or undecodable (U+FFFD) characters are not allowed');
  for (const segment of path.split('/')) {
    if (DRIVE.test(segment)) bad(`'${segment.slice(0, 2)}' reads as a drive letter on Windows`);
    if (segment.endsWith('.') || segment.endsWith(' ')) bad('a segment may not end in a dot or a space (Windows drops them)');
  }
  return path;
}

/**
 * The paths of one version, checked as they come: at most
 * MAX_FILES_PER_VERSION, none equal to another ignoring case (one file on
 * macOS and Windows), none that is also the directory of another (`a` and
 * `a/b`: no file system or tar extraction holds both).
 */
export class VersionPaths {
  /** lower-cased path → path */
  private readonly files = new Map<string, string>();
  /** lower-cased directory → the first path under it */
  private readonly dirs = new Map<string, string>();

  /** Checks one more path (checkFilePath, then against those before); returns its NFC form. */
  add(value: unknown): string {
    if (this.files.size >= MAX_FILES_PER_VERSION) throw tooManyFiles();
    const path = checkFilePath(value);
    const folded = path.toLowerCase();
    const same = this.files.get(folded);
    if (same !== undefined) {
      throw new CairnError(
        'DUPLICATE_PATH',
        same === path ? `file path ${showPath(path)} appears more than once` : `file paths ${showPath(same)} and ${showPath(path)} differ only in case: they are one file on macOS and Windows`,
      );
    }
    const inside = this.dirs.get(folded);
    if (inside !== undefined) throw fileAndDirectory(path, inside);
    for (let i = folded.indexOf('/'); i !== -1; i = folded.indexOf('/', i + 1)) {
      const dir = folded.slice(0, i);
      const file = this.files.get(dir);
      if (file !== undefined) throw fileAndDirectory(file, path);
      if (!this.dirs.has(dir)) this.dirs.set(dir, path);
    }
    this.files.set(folded, path);
    return path;
  }
}

function fileAndDirectory(file: string, inside: string): CairnError {
  return new CairnError('DUPLICATE_PATH', `file path ${showPath(file)} is also the directory of ${showPath(inside)}: a version cannot hold both`);
}

export function tooManyFiles(): CairnError {
  return new CairnError('INVALID_ARGUMENT', `a version holds at most ${MAX_FILES_PER_VERSION} files`, { max_files: MAX_FILES_PER_VERSION });
}

const MAX_PAGE = 1000;
const DEFAULT_PAGE = 50;

/** A page size from a query (`limit`): 1 to 1000, 50 when absent. */
export function parseLimit(limit: unknown): number {
  if (limit === undefined || limit === '') return DEFAULT_PAGE;
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) {
    throw new CairnError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_PAGE}`);
  }
  return n;
}
