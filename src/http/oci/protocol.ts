// What /v2 does differently from the rest of the server, in one place: who is
// asking when a registry token is presented (registryTokenAuth, before the
// general authentication), the token-auth challenge docker-style clients
// follow, and errors in the OCI shape `{"errors":[{"code","message","detail"}]}`
// with the distribution spec's codes (ociErrors, before the general handler).
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { CairnError, type ErrorCode, isCairnError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { RegistryTokens, scopeOfActions } from '../../registry/oci-tokens.ts';
import { authenticateAs } from '../auth.ts';
import { STATUS_OF } from '../error-status.ts';

/** The repository a /v2 path names (relative to /v2): everything before its first `manifests|blobs|tags|referrers` segment. */
export function repositoryOfPath(path: string): string | undefined {
  return /^\/(.+?)\/(?:manifests|blobs|tags|referrers)(?:\/|$)/.exec(path)?.[1];
}

/**
 * A registry token (issued by GET /v2/token) presented as Bearer: the request
 * may do what the token grants on the repository of its path — pull is read,
 * push write — and read the other repositories it grants pull on (a
 * cross-repository mount's source). Anything else goes on to authenticate.
 */
export function registryTokenAuth(tokens: RegistryTokens): RequestHandler {
  return function registryTokenAuthenticate(req, _res, next) {
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!presented || !RegistryTokens.looksLike(presented)) return next();
    const verified = tokens.verify(presented);
    if (!verified) return next(new CairnError('UNAUTHORIZED', 'the registry token is invalid or expired, or the Cairn token it was issued for is revoked; ask GET /v2/token for another'));
    const repository = repositoryOfPath(req.path);
    const here = verified.grants.find((g) => g.repository === repository)?.actions ?? [];
    const readable = verified.grants.filter((g) => g.actions.includes('pull')).map((g) => g.repository);
    const models = [...new Set([...(here.length > 0 ? [repository!] : []), ...readable])];
    authenticateAs(req, {
      actor: verified.principal.name,
      // no pattern at all would mean every model: a token that grants nothing here holds no scope
      scope: models.length > 0 ? scopeOfActions(here) : undefined,
      models,
      principal: `token:${verified.principal.id}`,
    });
    next();
  };
}

/** The challenge of a 401 under /v2: the token endpoint and, for a repository, the scope to ask it for. */
export function ociChallenge(req: Request): string {
  if (req.path === '/token') return 'Basic realm="cairn"';
  const base = `${req.protocol}://${req.get('host') ?? 'localhost'}`;
  const repository = repositoryOfPath(req.path);
  const actions = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push';
  return `Bearer realm="${base}/v2/token",service="cairn"${repository ? `,scope="repository:${repository}:${actions}"` : ''}`;
}

/** The distribution spec's error code for a Cairn error, and the status when /v2 answers with another than STATUS_OF's. */
const OCI_CODE: Partial<Record<ErrorCode, { code: string; status?: number }>> = {
  MODEL_NOT_FOUND: { code: 'NAME_UNKNOWN' },
  VERSION_NOT_FOUND: { code: 'MANIFEST_UNKNOWN' },
  VERSION_DELETED: { code: 'MANIFEST_UNKNOWN', status: 404 },
  ALIAS_NOT_FOUND: { code: 'MANIFEST_UNKNOWN' },
  MANIFEST_NOT_FOUND: { code: 'MANIFEST_UNKNOWN' },
  BLOB_NOT_FOUND: { code: 'BLOB_UNKNOWN' },
  UPLOAD_NOT_FOUND: { code: 'BLOB_UPLOAD_UNKNOWN' },
  UPLOAD_OFFSET_MISMATCH: { code: 'BLOB_UPLOAD_INVALID', status: 416 }, // distribution-spec: an out-of-order chunk is 416
  UPLOAD_BUSY: { code: 'BLOB_UPLOAD_INVALID' },
  UPLOAD_INCOMPLETE: { code: 'BLOB_UPLOAD_INVALID' },
  UPLOAD_RANGE_EXCEEDED: { code: 'BLOB_UPLOAD_INVALID' },
  DIGEST_MISMATCH: { code: 'DIGEST_INVALID' },
  INVALID_DIGEST: { code: 'DIGEST_INVALID' },
  INVALID_NAME: { code: 'NAME_INVALID' },
  INVALID_VERSION: { code: 'TAG_INVALID' },
  INVALID_REF: { code: 'TAG_INVALID' },
  INVALID_ALIAS: { code: 'TAG_INVALID' },
  INVALID_MANIFEST: { code: 'MANIFEST_INVALID' },
  INVALID_PATH: { code: 'MANIFEST_INVALID' },
  INVALID_MODEL_FILE: { code: 'MANIFEST_INVALID' },
  UNSAFE_MODEL: { code: 'DENIED' },
  UNAUTHORIZED: { code: 'UNAUTHORIZED' },
  FORBIDDEN: { code: 'DENIED' },
  VERSION_EXISTS: { code: 'DENIED' },
  UNSUPPORTED_OPERATION: { code: 'UNSUPPORTED' },
  RANGE_NOT_SATISFIABLE: { code: 'SIZE_INVALID' },
  PAYLOAD_TOO_LARGE: { code: 'SIZE_INVALID' },
  RATE_LIMITED: { code: 'TOOMANYREQUESTS' },
};

/** Errors under /v2 in the OCI shape; the Cairn code stays in `detail.cairn_code`. */
export function ociErrors(log: Logger): ErrorRequestHandler {
  return function ociErrorHandler(err, req, res, next) {
    if (res.headersSent) return next(err);
    let status: number;
    let code: string;
    let message: string;
    let detail: Record<string, unknown> = {};
    if (isCairnError(err)) {
      const oci = OCI_CODE[err.code];
      status = oci?.status ?? STATUS_OF[err.code];
      const { cause: _cause, ...rest } = err.details ?? {};
      code = err.code === 'INVALID_MANIFEST' && rest.blob ? 'MANIFEST_BLOB_UNKNOWN' : (oci?.code ?? (status >= 500 ? 'UNKNOWN' : status === 404 ? 'NAME_UNKNOWN' : 'UNSUPPORTED'));
      message = err.message;
      detail = { cairn_code: err.code, ...rest };
    } else if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500 && err.expose !== false) {
      status = err.status; // body-parser: a manifest over the limit, a bad charset
      code = status === 413 ? 'SIZE_INVALID' : 'MANIFEST_INVALID';
      message = err.message;
    } else {
      return next(err); // the general handler logs it and answers 500
    }
    if (status >= 500) log.error('request failed', { method: req.method, path: req.originalUrl, code: detail.cairn_code, error: err?.message });
    if (!res.socket || res.socket.destroyed) return;
    for (const h of ['Content-Type', 'Docker-Content-Digest', 'ETag', 'Content-Length', 'Content-Range', 'Location']) {
      if (!(h === 'Content-Range' && status === 416)) res.removeHeader(h);
    }
    if (status === 401) res.set('WWW-Authenticate', ociChallenge(req));
    if (typeof detail.retry_after === 'number') res.set('Retry-After', String(detail.retry_after)); // IMAGE_PENDING: an image form still being computed
    res.status(status).json({ errors: [{ code, message, detail }] });
  };
}

/** A /v2 path no route took: a repository name OCI allows and Cairn does not (more than one `/`) is NAME_INVALID; anything else unknown. */
export function ociUnmatched(): RequestHandler {
  return function ociUnmatchedPath(req, _res, next) {
    const repository = repositoryOfPath(req.path);
    if (repository && repository.split('/').length > 2) {
      return next(new CairnError('INVALID_NAME', `repository ${repository}: Cairn model names have one '/' at most (<namespace>/<name>)`));
    }
    next(new CairnError('ROUTE_NOT_FOUND', `no route ${req.method} /v2${req.path}`));
  };
}
