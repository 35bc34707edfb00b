// API tokens: created, looked up by hash, listed and revoked. The secret is
// returned once by create() and never stored; the table holds its sha256.
import { createHash, randomBytes } from 'node:crypto';
import { CairnError } from '../errors.ts';
import type { Database } from './db.ts';

export type Scope = 'read' | 'write' | 'admin';
export const SCOPES: readonly Scope[] = ['read', 'write', 'admin'];

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const PATTERN_RE = /^[a-z0-9*][a-z0-9._*-]{0,127}$/;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const TOKEN_PREFIX = 'cairn_';
const TOKEN_RE = /^cairn_[0-9A-Za-z]{32}$/;
/** characters of a token kept for display: `cairn_` and 6 more */
const DISPLAY_CHARS = 12;

interface TokenRow {
  id: number;
  name: string;
  hash: string;
  prefix: string;
  scope: Scope;
  models: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
}

/** What the API shows of a token: everything but the secret and its hash. */
export interface TokenDoc {
  name: string;
  prefix: string;
  scope: Scope;
  /** the scopes held: admin implies write, write implies read */
  scopes: Scope[];
  /** name patterns; empty: every model */
  models: string[];
  created_at: string;
  created_by: string;
  expires_at: string | null;
  last_used_at: string | null;
}

/** Who a valid token belongs to and what it may do. */
export interface Principal {
  /** the token's row id: unlike its name, never given to another token */
  id: number;
  name: string;
  scope: Scope;
  models: string[];
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** `cairn_` + 32 base62 characters (~190 bits), unbiased. */
export function generateToken(): string {
  let out = TOKEN_PREFIX;
  while (out.length < TOKEN_PREFIX.length + 32) {
    for (const b of randomBytes(48)) {
      if (b < 248 && out.length < TOKEN_PREFIX.length + 32) out += BASE62[b % 62];
    }
  }
  return out;
}

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

/** Whether a model name is within a token's patterns (none: every model). `*` as a name asks for every model. */
export function modelAllowed(patterns: readonly string[], model: string): boolean {
  if (patterns.length === 0 || patterns.includes('*')) return true;
  if (model === '*') return false;
  return patterns.some((p) => globMatch(p, model));
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
    if (typeof p !== 'string' || !PATTERN_RE.test(p)) {
      throw new CairnError('INVALID_ARGUMENT', `model pattern must be a model name with optional * wildcards, got ${JSON.stringify(p)}`);
    }
  }
  return [...new Set(list as string[])].sort();
}

function tokenDoc(row: TokenRow): TokenDoc {
  return {
    name: row.name,
    prefix: row.prefix,
    scope: row.scope,
    scopes: impliedScopes(row.scope),
    models: JSON.parse(row.models) as string[],
    created_at: row.created_at,
    created_by: row.created_by,
    expires_at: row.expires_at,
    last_used_at: row.last_used_at,
  };
}

const ACTIVE = 'revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)';
const LAST_USED_EVERY_MS = 60_000;

export interface CreateTokenInput {
  name: unknown;
  /** the highest scope, or a list of scopes (the highest counts) */
  scope?: unknown;
  scopes?: unknown;
  models?: unknown;
  expires_in_days?: unknown;
  createdBy: string;
}

export class TokenQueries {
  constructor(private readonly db: Database, private readonly now: () => Date = () => new Date()) {}

  /** Creates a token; the secret is in the answer and nowhere else. */
  create(input: CreateTokenInput): { token: string } & TokenDoc {
    const name = checkTokenName(input.name);
    const given = input.scopes !== undefined ? (Array.isArray(input.scopes) ? input.scopes : [input.scopes]) : [input.scope];
    if (given.length === 0 || given[0] === undefined) throw new CairnError('INVALID_ARGUMENT', `scopes is required: one or more of ${SCOPES.join(', ')}`);
    const scope = given.map(checkScope).reduce((a, b) => (scopeIncludes(a, b) ? a : b));
    const models = checkModelPatterns(input.models);
    if (scope === 'admin' && models.length > 0 && !models.includes('*')) {
      throw new CairnError('INVALID_ARGUMENT', 'an admin token manages every token, so it cannot be limited to model patterns');
    }
    let expiresAt: string | null = null;
    if (input.expires_in_days !== undefined && input.expires_in_days !== null) {
      const days = Number(input.expires_in_days);
      if (!Number.isInteger(days) || days < 1 || days > 36500) throw new CairnError('INVALID_ARGUMENT', 'expires_in_days must be an integer from 1 to 36500');
      expiresAt = new Date(this.now().getTime() + days * 86_400_000).toISOString();
    }
    const token = generateToken();
    const now = this.now().toISOString();
    this.db.transaction(() => {
      // an expired token gives its name up
      this.db.run('UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?', [now, 'expiry', name, now]);
      if (this.db.first('SELECT 1 FROM tokens WHERE name = ? AND revoked_at IS NULL', [name])) {
        throw new CairnError('TOKEN_EXISTS', `a token named ${name} exists; revoke it first`);
      }
      this.db.run(
        `INSERT INTO tokens (name, hash, prefix, scope, models, created_at, created_by, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [name, hashToken(token), displayPrefix(token), scope, JSON.stringify(models), now, input.createdBy, expiresAt],
      );
    });
    return { token, ...this.get(name)! };
  }

  get(name: string): TokenDoc | undefined {
    const row = this.db.first<TokenRow>('SELECT * FROM tokens WHERE name = ? AND revoked_at IS NULL', [name]);
    return row ? tokenDoc(row) : undefined;
  }

  /** Tokens that are neither revoked nor expired, by name. */
  list(): TokenDoc[] {
    return this.db.all<TokenRow>(`SELECT * FROM tokens WHERE ${ACTIVE} ORDER BY name`, [this.now().toISOString()]).map(tokenDoc);
  }

  revoke(name: string, by: string): void {
    const res = this.db.run('UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL', [this.now().toISOString(), by, checkTokenName(name)]);
    if (res.changes === 0) throw new CairnError('TOKEN_NOT_FOUND', `no token named ${name}`);
  }

  /** The principal of a presented token, or undefined when it is unknown, revoked or expired. */
  authenticate(token: string): Principal | undefined {
    if (!TOKEN_RE.test(token)) return undefined;
    const now = this.now();
    const row = this.db.first<TokenRow>(`SELECT * FROM tokens WHERE hash = ? AND ${ACTIVE}`, [hashToken(token), now.toISOString()]);
    if (!row) return undefined;
    if (!row.last_used_at || now.getTime() - Date.parse(row.last_used_at) >= LAST_USED_EVERY_MS) {
      this.db.run('UPDATE tokens SET last_used_at = ? WHERE id = ?', [now.toISOString(), row.id]);
    }
    return { id: row.id, name: row.name, scope: row.scope, models: JSON.parse(row.models) as string[] };
  }

  hasActiveAdmin(): boolean {
    return this.db.first(`SELECT 1 FROM tokens WHERE scope = 'admin' AND ${ACTIVE}`, [this.now().toISOString()]) !== undefined;
  }

  /** A name for the first-start admin token: `admin`, or `admin-2`, … when that is taken. */
  freeAdminName(): string {
    for (let i = 1; ; i++) {
      const name = i === 1 ? 'admin' : `admin-${i}`;
      if (!this.db.first(`SELECT 1 FROM tokens WHERE name = ? AND ${ACTIVE}`, [name, this.now().toISOString()])) return name;
    }
  }
}
