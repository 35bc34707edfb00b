// Validation of every identifier a client can send, per DESIGN "Identifiers".
// Each check throws a CairnError with a message that names the offending value.
import { CairnError } from './errors.ts';

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const LATEST = 'latest';

function show(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

export function checkName(value: unknown): string {
  if (typeof value !== 'string' || value.length > 128 || !NAME.test(value)) {
    throw new CairnError('INVALID_NAME', `invalid model name ${show(value)}: lowercase letters and digits, separated by single '.', '_' or '-', at most 128 characters`);
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

export function checkAlias(value: unknown): string {
  if (typeof value !== 'string' || value.length > 128 || !NAME.test(value)) {
    throw new CairnError('INVALID_ALIAS', `invalid alias ${show(value)}: same rules as a model name`);
  }
  if (value === LATEST) {
    throw new CairnError('INVALID_ALIAS', `'${LATEST}' is reserved: it always points at the most recently published version`);
  }
  return value;
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

/** A file path inside a version: relative, '/'-separated, no '..', '.', empty segments or control chars, ≤ 1024 bytes. */
export function checkFilePath(value: unknown): string {
  const bad = (why: string): never => {
    throw new CairnError('INVALID_PATH', `invalid file path ${show(value)}: ${why}`);
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
