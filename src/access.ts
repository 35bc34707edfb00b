// What a token may do, as pure functions both the server and the CLI use:
// scopes (admin ⊃ write ⊃ read), model name patterns with `*` wildcards (one
// matcher: patternMatches), and the shape of token names.
import { SCOPES, type Scope } from './api/index.ts';
import { CairnError } from './errors.ts';

export { SCOPES, type Scope };

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** a pattern: a model name (`[<namespace>/]<base>`) whose parts may hold `*` wildcards */
const PATTERN_PART = '[a-z0-9*][a-z0-9._*-]*';
const PATTERN_RE = new RegExp(`^${PATTERN_PART}(?:/${PATTERN_PART})?$`);
const MAX_PATTERN = 128;
/** characters of a token kept for display: `cairn_` and 6 more */
const DISPLAY_CHARS = 12;

/** The part of a presented credential that is safe to log. */
export function displayPrefix(token: string): string {
  return token.slice(0, DISPLAY_CHARS).replace(/[^\x21-\x7e]/g, '?');
}

export function scopeIncludes(held: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(held) >= SCOPES.indexOf(needed);
}

export function impliedScopes(scope: Scope): Scope[] {
  return SCOPES.slice(0, SCOPES.indexOf(scope) + 1);
}

/**
 * Whether `name` matches `pattern`, where `*` stands for any run of characters
 * (and nothing else is special). Greedy two pointers: on a mismatch only the
 * last `*` is retried one character further, so the work is at most
 * O(pattern × name) — a regular expression with a `.*` per star backtracks
 * exponentially (`*a*a*a*a*a*a*b` against 128 `a`s: minutes of CPU).
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1; // position of the last `*` seen in the pattern
  let resume = 0; // where in the name that `*` stops swallowing characters
  while (n < name.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Whether a model name matches a pattern, part by part: `*` stands for any
 * run of characters within one part and never crosses the `/` between a
 * namespace and a base name. So `acme/*` is every model of namespace `acme`
 * (not the flat model `acme`, not `acme2/x`), a `*` on each side of the `/`
 * every namespaced model, `res*` flat names only — a pattern written before
 * namespaces existed reaches no more than it did. The pattern `*` alone is
 * every model, namespaced or not.
 * Tokens, webhooks and the SQL lists (metadata/models.ts) all match with this.
 */
export function patternMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  const p = pattern.indexOf('/');
  const n = name.indexOf('/');
  if (p < 0 || n < 0) return p < 0 && n < 0 && globMatch(pattern, name);
  return globMatch(pattern.slice(0, p), name.slice(0, n)) && globMatch(pattern.slice(p + 1), name.slice(n + 1));
}

/** Whether a model name is within a token's patterns (none: every model). `*` as a name asks for every model. */
export function modelAllowed(patterns: readonly string[], model: string): boolean {
  if (patterns.length === 0 || patterns.includes('*')) return true;
  if (model === '*') return false;
  return patterns.some((p) => patternMatches(p, model));
}

export function checkTokenName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new CairnError('INVALID_NAME', `token name must match ${NAME_RE.source}, got ${JSON.stringify(name)}`);
  }
  return name;
}

export function checkScope(scope: unknown): Scope {
  if (typeof scope !== 'string' || !SCOPES.includes(scope as Scope)) {
    throw new CairnError('INVALID_ARGUMENT', `scope must be one of ${SCOPES.join(', ')}, got ${JSON.stringify(scope)}`);
  }
  return scope as Scope;
}

/** Model name patterns (`*` wildcards), as tokens and webhooks take them; none: every model. */
export function checkModelPatterns(models: unknown): string[] {
  if (models === undefined || models === null) return [];
  const list = Array.isArray(models) ? models : [models];
  if (list.length > 100) throw new CairnError('INVALID_ARGUMENT', 'at most 100 model patterns');
  for (const p of list) {
    if (typeof p !== 'string' || p.length > MAX_PATTERN || !PATTERN_RE.test(p)) {
      throw new CairnError('INVALID_ARGUMENT', `model pattern must be a model name ([<namespace>/]<name>) with optional * wildcards, got ${JSON.stringify(p)}`);
    }
  }
  return [...new Set(list as string[])].sort();
}

/**
 * Who is asking, as far as the registry cares: the models they may read, and
 * whose upload sessions and uploaded content are theirs.
 */
export interface Caller {
  /** the token (`token:<id>`); undefined with CAIRN_AUTH=off, where sessions belong to no one */
  principal: string | undefined;
  /** name patterns of the models the caller may read; empty: every model */
  models: readonly string[];
}

/** The whole record, as the lineage repository keeps it (which only a reader of every model may clone). */
export const FULL_VIEW: Caller = { principal: undefined, models: [] };

export function mayRead(caller: Caller, model: string): boolean {
  return modelAllowed(caller.models, model);
}
