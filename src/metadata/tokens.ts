// API tokens: created, looked up by hash, listed and revoked. The secret is
// returned once by create() and never stored; the table holds its sha256.
import { createHash, randomBytes } from 'node:crypto';
import { CairnError } from '../errors.ts';
import { checkModelPatterns, checkScope, checkTokenName, displayPrefix, impliedScopes, SCOPES, scopeIncludes } from '../access.ts';
import type { Scope, TokenCreated, TokenDoc } from '../api/index.ts';
import type { Database } from './db.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const TOKEN_PREFIX = 'cairn_';
const TOKEN_RE = /^cairn_[0-9A-Za-z]{32}$/;

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
  create(input: CreateTokenInput): TokenCreated {
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

  /** The principal of an active token by its id (a credential derived from it — an OCI registry token — is worth no more than it). */
  principalById(id: number): Principal | undefined {
    const row = this.db.first<TokenRow>(`SELECT * FROM tokens WHERE id = ? AND ${ACTIVE}`, [id, this.now().toISOString()]);
    return row ? { id: row.id, name: row.name, scope: row.scope, models: JSON.parse(row.models) as string[] } : undefined;
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
