// Access control: who is asking (authenticate), what each route needs
// (authorize: one table, default deny), and a per-client request rate limit.
// Routes never look at headers themselves; they ask requireScope/canRead.
import express, { type Request, type RequestHandler, type Router } from 'express';
import { CairnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Caller } from '../registry.ts';
import { displayPrefix, modelAllowed, type Scope, scopeIncludes, type TokenQueries } from '../metadata/tokens.ts';

export interface AuthOptions {
  /** undefined: CAIRN_AUTH=off, every request is `anonymous` with every scope */
  tokens: TokenQueries | undefined;
  /** requests without a token may read every model (CAIRN_ANONYMOUS_READ) */
  anonymousRead: boolean;
  log: Logger;
}

/** What the request may do. */
interface RequestAuth {
  actor: string;
  /** highest scope held; undefined: none */
  scope: Scope | undefined;
  /** name patterns; empty: every model */
  models: string[];
  /** a valid token was presented (or auth is off) */
  authenticated: boolean;
  /** what owns this request's upload sessions and uploaded content: `token:<id>`, `anonymous`; undefined with auth off */
  principal: string | undefined;
}

const AUTH = Symbol('cairn.auth');
type WithAuth = Request & { [AUTH]?: RequestAuth; actor?: string };

function authOf(req: Request): RequestAuth {
  return (req as WithAuth)[AUTH] ?? { actor: 'anonymous', scope: undefined, models: [], authenticated: false, principal: 'anonymous' };
}

function setAuth(req: Request, auth: RequestAuth): void {
  (req as WithAuth)[AUTH] = auth;
  (req as WithAuth).actor = auth.actor; // actorOf(req): created_by and the git author
}

/**
 * The presented secret: `Authorization: Bearer <token>`, or Basic with the
 * token as password (or as user name when the password is empty), which is
 * what git sends. Undefined when there is no Authorization header; null when
 * there is one that cannot carry a token.
 */
function presentedToken(req: Request): string | undefined | null {
  const header = req.headers.authorization;
  if (header === undefined || header === '') return undefined;
  const m = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!m) return null;
  const kind = m[1]!.toLowerCase();
  if (kind === 'bearer') return m[2]!;
  if (kind === 'basic') {
    const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    return password || user || null;
  }
  return null;
}

/** `WWW-Authenticate` of a 401: git clients answer a Basic challenge with credentials. */
export function authChallenge(path: string): string {
  return path.startsWith('/git/') ? 'Basic realm="cairn"' : 'Bearer realm="cairn"';
}

export function authenticate({ tokens, anonymousRead, log }: AuthOptions): RequestHandler {
  return function cairnAuthenticate(req, _res, next) {
    if (!tokens) {
      setAuth(req, { actor: 'anonymous', scope: 'admin', models: [], authenticated: true, principal: undefined });
      return next();
    }
    const presented = presentedToken(req);
    if (presented === undefined) {
      setAuth(req, { actor: 'anonymous', scope: anonymousRead ? 'read' : undefined, models: [], authenticated: false, principal: 'anonymous' });
      return next();
    }
    const principal = presented === null ? undefined : tokens.authenticate(presented);
    if (!principal) {
      log.warn('authentication failed', {
        method: req.method,
        path: req.path,
        remote: req.socket.remoteAddress,
        token_prefix: presented ? displayPrefix(presented) : undefined,
        reason: presented === null ? 'unsupported Authorization header' : 'unknown, revoked or expired token',
      });
      return next(new CairnError('UNAUTHORIZED', presented === null ? 'the Authorization header must be "Bearer <token>"' : 'the token is unknown, revoked or expired'));
    }
    setAuth(req, { actor: principal.name, scope: principal.scope, models: principal.models, authenticated: true, principal: `token:${principal.id}` });
    next();
  };
}

/**
 * Throws unless the request holds `scope` (admin ⊃ write ⊃ read) — on
 * `model` when given (`*`: on every model). 401 without a token, 403 with one.
 */
export function requireScope(req: Request, scope: Scope, model?: string): void {
  const auth = authOf(req);
  const held = auth.scope !== undefined && scopeIncludes(auth.scope, scope);
  if (held && (model === undefined || modelAllowed(auth.models, model))) return;
  if (!auth.authenticated) throw new CairnError('UNAUTHORIZED', `this request needs a token with the ${scope} scope (Authorization: Bearer <token>)`);
  if (!held) throw new CairnError('FORBIDDEN', `token ${auth.actor} does not have the ${scope} scope`);
  throw new CairnError('FORBIDDEN', model === '*' ? `token ${auth.actor} is limited to models ${auth.models.join(', ')}; this needs every model` : `token ${auth.actor} may not ${scope} model ${model}`);
}

/** Whether the request may read this model: list endpoints show only those. */
export function canRead(req: Request, model: string): boolean {
  const auth = authOf(req);
  return auth.scope !== undefined && modelAllowed(auth.models, model);
}

/** The request's caller as the registry sees it: what it may read, which uploads are its own. */
export function callerOf(req: Request): Caller {
  const auth = authOf(req);
  // the policy lets no request without a scope reach a route that asks; this keeps it that way
  if (auth.scope === undefined) throw new CairnError('UNAUTHORIZED', 'this request needs a token (Authorization: Bearer <token>)');
  return { principal: auth.principal, models: auth.models };
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

function need(scope: Scope, model?: string): RequestHandler {
  return function requireScopeFor(req, _res, next) {
    requireScope(req, scope, model);
    next('router'); // allowed: on to the routes
  };
}

/**
 * What each route needs, in one table. Anything not listed needs admin.
 * - reads of a model (GET/HEAD under /v1/models/{name}): read on that model;
 *   `GET /v1/models` needs read and lists only the models the token may read
 * - publish, alias, delete: write on that model
 * - uploads and blob checks: write (blobs belong to no model)
 * - /v1/tokens and /v1/admin (gc, verify): admin
 * - /git/ (the whole lineage, every model): read on every model
 * - the web UI's static files (`/`, `/ui/…`): open; the UI sends the user's token to the API
 */
export function authorize(): Router {
  const policy = express.Router();
  policy.get('/v1/models', need('read'));
  policy.get(['/openapi.json', '/docs'], function openRoute(_req, _res, next) {
    next('router');
  });
  policy.get('/metrics', need('read', '*'));
  policy.all(['/v1/models/:name', '/v1/models/:name/*rest'], function requireModelScope(req, _res, next) {
    requireScope(req, READS.has(req.method) ? 'read' : 'write', String(req.params.name));
    next('router');
  });
  policy.get(['/hf/api/models/:name', '/hf/api/models/:name/*rest', '/hf/:name/resolve/*rest'], function requireHubReadScope(req, _res, next) {
    requireScope(req, 'read', String(req.params.name));
    next('router');
  });
  policy.all(['/v1/uploads', '/v1/uploads/*rest', '/v1/blobs/*rest'], need('write'));
  policy.all(['/v1/tokens', '/v1/tokens/*rest', '/v1/admin', '/v1/admin/*rest'], need('admin'));
  policy.all(['/git', '/git/*rest'], need('read', '*'));
  policy.get(['/', '/ui', '/ui/*rest'], function openWebUi(_req, _res, next) {
    next('router');
  });
  policy.use(need('admin'));
  return policy;
}

/**
 * A token bucket per client (token name, else remote address): `perMinute`
 * requests a minute, bursts up to as many. Over it: 429 with Retry-After.
 */
export function rateLimit(perMinute: number, now: () => number = Date.now): RequestHandler {
  const buckets = new Map<string, { level: number; at: number }>();
  const perMs = perMinute / 60_000;
  return function cairnRateLimit(req, res, next) {
    const auth = authOf(req);
    const key = auth.actor !== 'anonymous' ? `token:${auth.actor}` : `ip:${req.socket.remoteAddress ?? '?'}`;
    const t = now();
    if (buckets.size > 10_000) {
      for (const [k, b] of buckets) if (b.level + (t - b.at) * perMs >= perMinute) buckets.delete(k);
    }
    const bucket = buckets.get(key) ?? { level: perMinute, at: t };
    bucket.level = Math.min(perMinute, bucket.level + (t - bucket.at) * perMs);
    bucket.at = t;
    buckets.set(key, bucket);
    if (bucket.level < 1) {
      res.set('Retry-After', String(Math.max(1, Math.ceil((1 - bucket.level) / perMs / 1000))));
      return next(new CairnError('RATE_LIMITED', `more than ${perMinute} requests a minute; slow down`));
    }
    bucket.level -= 1;
    next();
  };
}
