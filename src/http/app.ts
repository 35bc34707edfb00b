// The express app, assembled in one place, in order: request basics, who is
// asking, the route table, not-found, and the error handler that owns the
// error → status table.
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { CairnError, isCairnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Services } from '../registry/index.ts';
import { authChallenge, authenticate, rateLimit } from './auth.ts';
import { STATUS_OF } from './error-status.ts';
import { Metrics } from './metrics.ts';
import { openApiDocument } from './openapi.ts';
import { requestLog } from './request-log.ts';
import { refuseReservedNames, registerRoutes, type Route, unmatchedNeedsAdmin } from './route.ts';
import { adminRoutes } from './routes/admin.ts';
import { deriveRoutes } from './routes/derive.ts';
import { docsRoutes } from './routes/docs.ts';
import { fileRoutes } from './routes/files.ts';
import { gitRoutes } from './routes/git.ts';
import { metricsRoutes, probeRoutes } from './routes/health.ts';
import { hubErrorCodes, huggingFaceRoutes } from './routes/huggingface.ts';
import { ociErrors, ociUnmatched, registryTokenAuth } from './oci/protocol.ts';
import { ociRoutes } from './oci/routes.ts';
import { modelRoutes } from './routes/models.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { webRoutes } from './routes/web.ts';

/**
 * Liveness and readiness: registered before authentication and the rate
 * limit, so that a probe is answered whatever it sends (a stale token too).
 */
const PROBES: readonly Route[] = probeRoutes;

/** Every other route, in the order express tries them. The web UI comes last, so that it never shadows an API route. */
const API: readonly Route[] = [
  ...docsRoutes,
  ...metricsRoutes,
  ...tokenRoutes,
  ...webhookRoutes,
  ...modelRoutes,
  ...deriveRoutes,
  ...fileRoutes,
  ...uploadRoutes,
  ...gitRoutes,
  ...adminRoutes,
  ...huggingFaceRoutes, // the Hugging Face Hub API under /hf (read-only)
  ...ociRoutes, // the OCI Distribution API under /v2
  ...webRoutes,
];

/** The route table: every route of the server, with its access and its description. */
export const ROUTES: readonly Route[] = [...PROBES, ...API];

export interface AppDeps {
  services: Services;
  log: Logger;
  anonymousRead?: boolean;
  /** requests a minute per client; 0 or undefined: no limit */
  rateLimit?: number;
  /** largest file or upload session; undefined: no limit */
  maxUploadBytes?: number;
  /** request counters and histograms for GET /metrics; undefined: a new set */
  metrics?: Metrics;
}

function requestId(): RequestHandler {
  return function requestIdMiddleware(req, res, next) {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    res.set('X-Request-Id', id);
    (req as typeof req & { id?: string }).id = id;
    next();
  };
}

function routeNotFound(): RequestHandler {
  return function routeNotFoundHandler(req, _res, next) {
    next(new CairnError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.path}`));
  };
}

/** Everything that can go wrong ends here, as `{"error":{"code","message"}}`. */
function errorHandler(log: Logger): ErrorRequestHandler {
  return function cairnErrorHandler(err, req, res, _next) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    let status: number;
    let code: string;
    let message: string;
    let details: Record<string, unknown> | undefined;
    if (isCairnError(err)) {
      status = STATUS_OF[err.code];
      code = err.code;
      message = err.message;
      details = err.details;
    } else if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500 && err.expose !== false) {
      // body-parser: malformed JSON, body too large, bad charset …
      status = err.status;
      code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'INVALID_ARGUMENT';
      message = err.type === 'entity.parse.failed' ? `invalid JSON body: ${err.message}` : err.message;
    } else {
      status = 500;
      code = 'INTERNAL';
      message = 'internal error';
    }
    const id = (req as typeof req & { id?: string }).id;
    if (status >= 500) log.error('request failed', { request_id: id, method: req.method, path: req.path, code, error: err?.stack ?? String(err) });
    if (!res.socket || res.socket.destroyed) return; // client gone: nothing to answer
    const { cause: _cause, ...rest } = details ?? {};
    // a route may have set the headers of the bytes it meant to send
    for (const h of ['Content-Type', 'Content-Disposition', 'ETag', 'X-Content-Digest', 'Content-Length']) res.removeHeader(h);
    if (status === 401) res.set('WWW-Authenticate', authChallenge(req.path));
    res.status(status).json({ error: { code, message, ...rest } });
  };
}

export function createApp(deps: AppDeps): Express {
  const { services, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // file ETags are content digests, set by the routes
  app.use(requestId());
  const metrics = deps.metrics ?? new Metrics({ health: services.health });
  app.use(requestLog({ log, metrics })); // one log line and one metrics sample per request
  const ctx = { services, log, maxUploadBytes: deps.maxUploadBytes, metrics, openapi: openApiDocument(ROUTES) };
  registerRoutes(app, PROBES, ctx);
  if (services.tokens.enabled) app.use('/v2', registryTokenAuth(services.registryTokens)); // before authenticate: /v2's own tokens
  app.use(authenticate({ tokens: services.tokens.enabled ? services.tokens : undefined, anonymousRead: deps.anonymousRead ?? false, log }));
  if (deps.rateLimit) app.use(rateLimit(deps.rateLimit));
  registerRoutes(app, API, ctx);
  app.use(refuseReservedNames()); // `acme/versions` read as a model name: 400, not an unknown path
  app.use('/hf', hubErrorCodes());
  app.use('/v2', ociUnmatched());
  app.use(unmatchedNeedsAdmin());
  app.use(routeNotFound());
  app.use('/v2', ociErrors(log));
  app.use(errorHandler(log));
  return app;
}
