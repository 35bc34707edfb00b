// Access control: who is asking (authenticate), whether they hold what a
// route needs (requireScope: each route declares its access in the route
// table, ./route.ts), and a per-client request rate limit. Routes never look
// at headers themselves.
import type { Request, RequestHandler } from 'express';
import { CairnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type Caller, displayPrefix, modelAllowed, type Scope, scopeIncludes } from '../access.ts';
import type { Authenticator } from '../registry/tokens.ts';

export interface AuthOptions {
  /** undefined: CAIRN_AUTH=off, every request is `anonymous` with every scope */
  tokens: Authenticator | undefined;
  /** requests without a token may read every model (CAIRN_ANONYMOUS_READ) */
  anonymousRead: boolean;
  log: Logger;
  /** failed authentications allowed per client address (default FAILURE_LIMIT) */
  failureLimit?: { perMinute: number; burst: number };
  /** the clock, for tests */
  now?: () => number;
}

/** Failed authentications per client address: 10 a minute, bursts up to 20. */
export const FAILURE_LIMIT = { perMinute: 10, burst: 20 };

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

/**
 * Who is asking. A presented token that is unknown, revoked or expired — or an
 * Authorization header that cannot carry one — is a failure, counted per
 * client address: past FAILURE_LIMIT the address gets 429 (with Retry-After)
 * before its token is even looked up, valid or not, until the bucket refills.
 * Failures are logged through a FailureLog, so a flood writes a bounded number
 * of lines.
 */
export function authenticate({ tokens, anonymousRead, log, failureLimit = FAILURE_LIMIT, now = Date.now }: AuthOptions): RequestHandler {
  const failures = new TokenBuckets(failureLimit.perMinute, failureLimit.burst, now);
  const failureLog = new FailureLog(log, now);
  return function cairnAuthenticate(req, res, next) {
    if ((req as WithAuth)[AUTH]) return next(); // a front door's own credentials (authenticateAs)
    if (!tokens) {
      setAuth(req, { actor: 'anonymous', scope: 'admin', models: [], authenticated: true, principal: undefined });
      return next();
    }
    const presented = presentedToken(req);
    if (presented === undefined) {
      setAuth(req, { actor: 'anonymous', scope: anonymousRead ? 'read' : undefined, models: [], authenticated: false, principal: 'anonymous' });
      return next();
    }
    const client = clientAddress(req.socket.remoteAddress);
    const wait = failures.retryAfter(client);
    if (wait !== undefined) {
      failureLog.failed(client, 'rate_limited', () => ({ method: req.method, path: req.path, remote: req.socket.remoteAddress }));
      res.set('Retry-After', String(wait));
      return next(new CairnError('RATE_LIMITED', `too many failed authentications from this address (more than ${failureLimit.perMinute} a minute); try again in ${wait} s`));
    }
    const principal = presented === null ? undefined : tokens.authenticate(presented);
    if (!principal) {
      failures.take(client);
      failureLog.failed(client, 'failed', () => ({
        method: req.method,
        path: req.path,
        remote: req.socket.remoteAddress,
        token_prefix: presented ? displayPrefix(presented) : undefined,
        reason: presented === null ? 'unsupported Authorization header' : 'unknown, revoked or expired token',
      }));
      return next(new CairnError('UNAUTHORIZED', presented === null ? 'the Authorization header must be "Bearer <token>"' : 'the token is unknown, revoked or expired'));
    }
    setAuth(req, { actor: principal.name, scope: principal.scope, models: principal.models, authenticated: true, principal: `token:${principal.id}` });
    next();
  };
}

/**
 * Who is asking, for a front door that reads its own credentials (the /v2
 * registry tokens): called before authenticate, which then leaves the
 * request as it is.
 */
export function authenticateAs(req: Request, auth: { actor: string; scope: Scope | undefined; models: string[]; principal: string | undefined }): void {
  setAuth(req, { ...auth, authenticated: true });
}

/** What the request's credentials are (after authenticate): the token behind them, its scope and models. */
export function credentialsOf(req: Request): { actor: string; scope: Scope | undefined; models: readonly string[]; principal: string | undefined; authenticated: boolean } {
  return authOf(req);
}

/**
 * The key a client is limited by: its IPv4 address (also when it comes
 * IPv4-mapped), or the /64 of an IPv6 address — one host usually holds a whole
 * /64, so per-address buckets would not hold it back.
 */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return mapped[1]!;
  if (!remote.includes(':')) return remote;
  const [head = '', tail = ''] = remote.split('%')[0]!.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = remote.includes('::') && tail ? tail.split(':') : [];
  const groups = remote.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Token buckets by key: `perMinute` refill, up to `burst`. */
class TokenBuckets {
  private readonly buckets = new Map<string, { level: number; at: number }>();
  private readonly perMs: number;

  constructor(readonly perMinute: number, private readonly burst: number, private readonly now: () => number) {
    this.perMs = perMinute / 60_000;
  }

  private refreshed(key: string): { level: number; at: number } {
    const t = this.now();
    if (this.buckets.size > 10_000) {
      for (const [k, b] of this.buckets) if (b.level + (t - b.at) * this.perMs >= this.burst) this.buckets.delete(k);
    }
    const bucket = this.buckets.get(key) ?? { level: this.burst, at: t };
    bucket.level = Math.min(this.burst, bucket.level + (t - bucket.at) * this.perMs);
    bucket.at = t;
    this.buckets.set(key, bucket);
    return bucket;
  }

  /** Seconds until `key` may go on; undefined: now. */
  retryAfter(key: string): number | undefined {
    const bucket = this.refreshed(key);
    return bucket.level >= 1 ? undefined : Math.max(1, Math.ceil((1 - bucket.level) / this.perMs / 1000));
  }

  take(key: string): void {
    const bucket = this.refreshed(key);
    bucket.level = Math.max(0, bucket.level - 1);
  }
}

/** Full lines per address and interval; the rest of that address's failures are counted. */
const FAILURE_LINES_PER_ADDRESS = 5;
/** Lines per interval over all addresses; beyond them, one line with a count. */
const FAILURE_LINES = 100;
const FAILURE_LOG_INTERVAL_MS = 60_000;

/**
 * The log of failed authentications, bounded: per client address and minute,
 * the first few failures get a line of their own and the rest one summary line
 * with counts (written when the minute is over and the address fails again,
 * or the next time any address fails); over all addresses at most
 * FAILURE_LINES lines a minute, the excess reported as one count.
 */
class FailureLog {
  private readonly windows = new Map<string, { start: number; lines: number; failed: number; rate_limited: number }>();
  private intervalStart = -Infinity;
  private lines = 0;
  private unlogged = 0;

  constructor(private readonly log: Logger, private readonly now: () => number) {}

  failed(client: string, kind: 'failed' | 'rate_limited', fields: () => Record<string, unknown>): void {
    const t = this.now();
    this.flush(t);
    let w = this.windows.get(client);
    if (!w && this.windows.size < 10_000) this.windows.set(client, (w = { start: t, lines: 0, failed: 0, rate_limited: 0 }));
    if (w && w.lines < FAILURE_LINES_PER_ADDRESS && this.line()) {
      w.lines++;
      this.log.warn(kind === 'failed' ? 'authentication failed' : 'authentication refused: too many failures from this address', fields());
    } else if (w) {
      w[kind]++;
    } else {
      this.unlogged++;
    }
  }

  private line(): boolean {
    if (this.lines >= FAILURE_LINES) return false;
    this.lines++;
    return true;
  }

  /** Once an interval: summaries of the windows that are over, and the count of what went unlogged. */
  private flush(t: number): void {
    if (t - this.intervalStart < FAILURE_LOG_INTERVAL_MS) return;
    this.intervalStart = t;
    this.lines = 0;
    for (const [client, w] of this.windows) {
      if (t - w.start < FAILURE_LOG_INTERVAL_MS) continue;
      this.windows.delete(client);
      if (w.failed + w.rate_limited === 0) continue;
      if (!this.line()) {
        this.unlogged += w.failed + w.rate_limited;
        continue;
      }
      this.log.warn('authentication failures (not logged one by one)', { client, since: new Date(w.start).toISOString(), failed: w.failed, rate_limited: w.rate_limited });
    }
    if (this.unlogged > 0) {
      this.lines++;
      this.log.warn('authentication failures not logged: too many addresses failing at once', { failures: this.unlogged });
      this.unlogged = 0;
    }
  }
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

/** The request's caller as the registry sees it: what it may read, which uploads are its own. */
export function callerOf(req: Request): Caller {
  const auth = authOf(req);
  // no route that asks lets a request without a scope through (its access check); this keeps it that way
  if (auth.scope === undefined) throw new CairnError('UNAUTHORIZED', 'this request needs a token (Authorization: Bearer <token>)');
  return { principal: auth.principal, models: auth.models };
}

/** Who is asking and what it may do (GET /v1/whoami): the token's name, highest scope and name patterns. */
export function identityOf(req: Request): { name: string; scope: Scope | undefined; models: string[] } {
  const auth = authOf(req);
  return { name: auth.actor, scope: auth.scope, models: auth.models };
}

/**
 * A token bucket per client (token name, else remote address): `perMinute`
 * requests a minute, bursts up to as many. Over it: 429 with Retry-After.
 */
export function rateLimit(perMinute: number, now: () => number = Date.now): RequestHandler {
  const buckets = new TokenBuckets(perMinute, perMinute, now);
  return function cairnRateLimit(req, res, next) {
    const auth = authOf(req);
    const key = auth.actor !== 'anonymous' ? `token:${auth.actor}` : `ip:${clientAddress(req.socket.remoteAddress)}`;
    const wait = buckets.retryAfter(key);
    if (wait !== undefined) {
      res.set('Retry-After', String(wait));
      return next(new CairnError('RATE_LIMITED', `more than ${perMinute} requests a minute; slow down`));
    }
    buckets.take(key);
    next();
  };
}
