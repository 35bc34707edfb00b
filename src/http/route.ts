// One route table. Each route is declared once — method, path, who may call
// it, and its description (parameters, body, responses, error codes) — and
// everything else is derived from that declaration: the express handler with
// its access check (registerRoutes), and /openapi.json (./openapi.ts).
// Route modules (./routes/) export their routes as plain data; a handler is
// made from the services when the app is built.
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { RouteParameters } from 'express-serve-static-core';
import type { Scope } from '../access.ts';
import type { Static, TSchema } from '../api/index.ts';
import type { ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Services } from '../registry/index.ts';
import type { Metrics } from './metrics.ts';
import { requireScope } from './auth.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head';

/**
 * Who may call a route: `open` (no token), or a scope (admin ⊃ write ⊃ read),
 * held on the model named by a path parameter (`model: 'name'`), on every
 * model (`model: '*'`), or on none in particular.
 */
export type Access = 'open' | { scope: Scope; model?: string };

export type Tag = 'models' | 'versions' | 'aliases' | 'lineage' | 'derive' | 'uploads' | 'tokens' | 'maintenance' | 'operations' | 'webhooks' | 'hugging-face' | 'web';
export const TAGS: readonly Tag[] = ['models', 'versions', 'aliases', 'lineage', 'derive', 'uploads', 'tokens', 'maintenance', 'operations', 'webhooks', 'hugging-face', 'web'];

export interface HeaderDoc {
  schema: Record<string, unknown>;
  description?: string;
}

export interface ResponseDoc {
  description: string;
  /** a JSON body */
  schema?: TSchema;
  /** any other body: media type → schema */
  content?: Record<string, Record<string, unknown>>;
  headers?: Record<string, HeaderDoc>;
}

export interface ParamDoc {
  name: string;
  in: 'path' | 'query' | 'header';
  description: string;
  schema?: Record<string, unknown> | TSchema;
  required?: boolean;
}

/** The OpenAPI side of a route. Path parameters are described by ./openapi.ts unless `params` does. */
export interface RouteDoc {
  /** the operationId */
  id: string;
  tag: Tag;
  summary: string;
  description?: string;
  params?: ParamDoc[];
  body?: { required: boolean; content: Record<string, { schema: TSchema | Record<string, unknown>; encoding?: Record<string, unknown> }> };
  responses: Record<number, ResponseDoc>;
  /** the domain errors it answers with, besides those of its access (./openapi.ts adds them) */
  errors: ErrorCode[];
}

/** What a handler is made from. */
export interface RouteContext {
  services: Services;
  log: Logger;
  /** largest file or upload session; undefined: no limit */
  maxUploadBytes?: number;
  /** the API description (GET /openapi.json, /docs) */
  openapi: Record<string, any>;
  /** request counters and histograms (GET /metrics) */
  metrics: Metrics;
}

/** The body the route answers with on success: the first 2xx response's schema. */
type OkBody<R> = R extends { 200: { schema: infer S extends TSchema } }
  ? Static<S>
  : R extends { 201: { schema: infer S extends TSchema } }
    ? Static<S>
    : R extends { 202: { schema: infer S extends TSchema } }
      ? Static<S>
      : unknown;

export type Handler<P extends string, B = unknown> = (req: Request<RouteParameters<P>>, res: Response<B>, next: NextFunction) => void | Promise<void>;

export interface RouteDef<P extends string, R extends Record<number, ResponseDoc>> {
  method: Method;
  /** express path: `:param`, `*wildcard` */
  path: P;
  access: Access;
  doc: RouteDoc & { responses: R };
  /** body parsers and the like, run after the access check */
  before?: (ctx: RouteContext) => RequestHandler[];
  /** the handler: parse → service → JSON, nothing more */
  handle: (ctx: RouteContext) => Handler<P, OkBody<R>>;
}

export interface Route {
  method: Method;
  path: string;
  access: Access;
  doc: RouteDoc;
  before?: (ctx: RouteContext) => RequestHandler[];
  handle: (ctx: RouteContext) => RequestHandler;
}

/** Declares a route; the handler's params and success body are typed from its path and responses. */
export function route<const P extends string, const R extends Record<number, ResponseDoc>>(def: RouteDef<P, R>): Route {
  return def as unknown as Route;
}

/** Throws unless the request may call a route of this access. */
function accessCheck(access: Access): RequestHandler {
  return function checkAccess(req, _res, next) {
    if (access !== 'open') {
      const model = access.model === undefined || access.model === '*' ? access.model : String(req.params[access.model]);
      requireScope(req, access.scope, model);
    }
    next();
  };
}

/** Registers every route on the app, each behind its access check, in table order. */
export function registerRoutes(app: Express, routes: readonly Route[], ctx: RouteContext): void {
  for (const r of routes) {
    app[r.method](r.path, accessCheck(r.access), ...(r.before?.(ctx) ?? []), r.handle(ctx));
  }
}

/**
 * After every route: a request no route took needs admin (default deny, so
 * that an unknown path tells nothing to a caller without it); then 404.
 */
export function unmatchedNeedsAdmin(): RequestHandler {
  return function requireAdminForUnknownRoute(req, _res, next) {
    requireScope(req, 'admin');
    next();
  };
}
