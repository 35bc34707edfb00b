// API tokens: create, list, revoke, and who a presented token is. The secret
// is in the answer to create and nowhere else (the table holds its sha256).
import type { Scope, TokenCreated, TokenList } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import type { TokenQueries } from '../metadata/tokens.ts';

/** Who a valid token belongs to and what it may do. */
export interface Principal {
  /** the token's row id: unlike its name, never given to another token */
  id: number;
  name: string;
  scope: Scope;
  models: string[];
}

/** What authentication needs: the principal of a presented token, or undefined. */
export interface Authenticator {
  authenticate(token: string): Principal | undefined;
}

export class Tokens implements Authenticator {
  /** `queries` undefined: CAIRN_AUTH=off, there are no tokens */
  constructor(private readonly queries: TokenQueries | undefined) {}

  /** Whether requests are authenticated at all (CAIRN_AUTH). */
  get enabled(): boolean {
    return this.queries !== undefined;
  }

  /** Creates a token; the secret is in the answer and nowhere else. */
  create(request: { name?: unknown; scope?: unknown; scopes?: unknown; models?: unknown; expires_in_days?: unknown }, actor: string): TokenCreated {
    const { name, scope, scopes, models, expires_in_days } = request;
    return this.store().create({ name, scope, scopes, models, expires_in_days, createdBy: actor });
  }

  /** Tokens that are neither revoked nor expired, by name. */
  list(): TokenList {
    return { tokens: this.store().list() };
  }

  revoke(name: string, actor: string): void {
    this.store().revoke(name, actor);
  }

  authenticate(token: string): Principal | undefined {
    return this.queries?.authenticate(token);
  }

  /** An active token's principal by its id; undefined when revoked, expired or unknown (and with auth off). */
  principalById(id: number): Principal | undefined {
    return this.queries?.principalById(id);
  }

  /**
   * First start: a new admin token named `admin` (or `admin-2`, …) when no
   * active one exists; undefined otherwise, and with auth off.
   */
  createFirstAdmin(): TokenCreated | undefined {
    if (!this.queries || this.queries.hasActiveAdmin()) return undefined;
    return this.queries.create({ name: this.queries.freeAdminName(), scope: 'admin', createdBy: 'cairn' });
  }

  private store(): TokenQueries {
    if (!this.queries) throw new CairnError('INVALID_ARGUMENT', 'tokens are not used: the server runs with CAIRN_AUTH=off');
    return this.queries;
  }
}
