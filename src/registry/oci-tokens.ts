// Registry tokens for the OCI front door's token flow: docker-style clients
// (skopeo, podman, oras, containerd) answer a `WWW-Authenticate: Bearer
// realm=…` challenge by asking the realm for a token scoped to one or more
// repositories and actions (`repository:acme/resnet:pull,push`). Such a token
// is issued for a Cairn token, grants no more than that token allows, lives a
// few minutes, and is checked again against its Cairn token at each use (a
// revoked token's registry tokens stop working at once). It is a JWT (HS256)
// signed with a key the server keeps (server_keys `oci-token`).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { modelAllowed, type Scope, scopeIncludes } from '../access.ts';
import { checkName } from '../identifiers.ts';
import type { Principal, Tokens } from './tokens.ts';

export type RegistryAction = 'pull' | 'push' | 'delete';
const ACTIONS: readonly RegistryAction[] = ['pull', 'push', 'delete'];
/** What each action needs of the Cairn token. */
const NEEDS: Record<RegistryAction, Scope> = { pull: 'read', push: 'write', delete: 'write' };

export interface RegistryGrant {
  repository: string;
  actions: RegistryAction[];
}

export interface IssuedRegistryToken {
  token: string;
  expires_in: number;
  issued_at: string;
  access: RegistryGrant[];
}

/** The Cairn token a registry token speaks for; `id` undefined with auth off. */
export interface TokenHolder {
  id: number | undefined;
  name: string;
  scope: Scope;
  models: readonly string[];
}

const TTL_SECONDS = 300;
/** Repositories one token may name (a copy between two repositories names two). */
const MAX_GRANTS = 32;

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

/**
 * `repository:<name>:<actions>` scopes, as docker-style clients send them
 * (several `scope` parameters, or several scopes in one separated by spaces).
 * Other resource types (`registry:catalog:*`) and names that are not Cairn
 * model names are left out: they are granted nothing.
 */
export function parseScopes(values: readonly string[]): RegistryGrant[] {
  const grants = new Map<string, Set<RegistryAction>>();
  for (const scope of values.flatMap((v) => v.split(' ')).filter(Boolean)) {
    const m = /^repository:([^:]+):([a-z*,]*)$/.exec(scope);
    if (!m) continue;
    try {
      checkName(m[1]);
    } catch {
      continue;
    }
    const actions = grants.get(m[1]!) ?? new Set<RegistryAction>();
    for (const a of m[2]!.split(',')) {
      if (a === '*') ACTIONS.forEach((x) => actions.add(x));
      else if ((ACTIONS as readonly string[]).includes(a)) actions.add(a as RegistryAction);
    }
    grants.set(m[1]!, actions);
  }
  return [...grants].map(([repository, actions]) => ({ repository, actions: ACTIONS.filter((a) => actions.has(a)) }));
}

export class RegistryTokens {
  constructor(
    private readonly key: Buffer,
    private readonly tokens: Tokens,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A registry token for `holder`, granting of what `scopes` ask what the holder's Cairn token allows (maybe nothing: `docker login` asks for no scope). */
  issue(holder: TokenHolder, scopes: readonly string[]): IssuedRegistryToken {
    const access = parseScopes(scopes)
      .slice(0, MAX_GRANTS)
      .map((g) => ({ repository: g.repository, actions: g.actions.filter((a) => scopeIncludes(holder.scope, NEEDS[a]) && modelAllowed(holder.models, g.repository)) }))
      .filter((g) => g.actions.length > 0);
    const issuedAt = this.now();
    const iat = Math.floor(issuedAt.getTime() / 1000);
    const payload = b64(JSON.stringify({ iss: 'cairn', sub: holder.name, tid: holder.id ?? null, access, iat, exp: iat + TTL_SECONDS }));
    const token = `${HEADER}.${payload}.${this.sign(`${HEADER}.${payload}`)}`;
    return { token, expires_in: TTL_SECONDS, issued_at: issuedAt.toISOString(), access };
  }

  /** Whether a presented credential has the shape of a registry token (it may still be invalid). */
  static looksLike(presented: string): boolean {
    return presented.startsWith(`${HEADER}.`);
  }

  /**
   * The Cairn token a registry token speaks for and its grants; undefined
   * when the signature is wrong, it has expired, or its Cairn token is
   * revoked or expired. The grants are cut to what that token allows now.
   */
  verify(presented: string): { principal: Principal; grants: RegistryGrant[] } | undefined {
    const parts = presented.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
    const expected = Buffer.from(this.sign(`${parts[0]}.${parts[1]}`));
    const given = Buffer.from(parts[2]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: { tid?: unknown; exp?: unknown; access?: unknown };
    try {
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return undefined;
    }
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= this.now().getTime()) return undefined;
    if (typeof claims.tid !== 'number') return undefined;
    const principal = this.tokens.principalById(claims.tid);
    if (!principal) return undefined;
    const grants = (claims.access as RegistryGrant[])
      .map((g) => ({ repository: g.repository, actions: g.actions.filter((a) => scopeIncludes(principal.scope, NEEDS[a]) && modelAllowed(principal.models, g.repository)) }))
      .filter((g) => g.actions.length > 0);
    return { principal, grants };
  }

  private sign(data: string): string {
    return createHmac('sha256', this.key).update(data).digest('base64url');
  }
}

/** The Cairn scope an action set amounts to on one repository: write with push or delete, read with pull. */
export function scopeOfActions(actions: readonly RegistryAction[]): Scope | undefined {
  if (actions.includes('push') || actions.includes('delete')) return 'write';
  return actions.includes('pull') ? 'read' : undefined;
}
