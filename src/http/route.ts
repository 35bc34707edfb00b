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
import { checkName, isReservedWord } from '../identifiers.ts';
import type { Logger } from '../log.ts';
import type { Services } from '../registry/index.ts';
import type { Metrics } from './metrics.ts';
import { requireScope } from './auth.ts';
import { markRoute } from './request-log.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head';

/**
 * Who may call a route: `open` (no token), or a scope (admin ⊃ write ⊃ read),
 * held on the model named by a path parameter (`model: 'name'`), on every
 * model (`model: '*'`), or on none in particular.
 */
export type Access = 'open' | { scope: Scope; model?: string };

export type Tag = 'models' | 'versions' | 'aliases' | 'lineage' | 'derive' | 'uploads' | 'tokens' | 'maintenance' | 'operations' | 'webhooks' | 'hugging-face' | 'oci' | 'web';
export const TAGS: readonly Tag[] = ['models', 'versions', 'aliases', 'lineage', 'derive', 'uploads', 'tokens', 'maintenance', 'operations', 'webhooks', 'hugging-face', 'oci', 'web'];

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

/** Throws unless the request may call a route of this access (`model`: the name it is on). */
function requireAccess(req: Request, access: Access, model?: string): void {
  if (access === 'open') return;
  requireScope(req, access.scope, access.model === undefined || access.model === '*' ? access.model : (model ?? String(req.params[access.model])));
}

function accessCheck(access: Access): RequestHandler {
  return function checkAccess(req, _res, next) {
    requireAccess(req, access);
    next();
  };
}

// ---- model names in paths ---------------------------------------------------------
//
// A model name is `<base>` or `<namespace>/<base>` (DESIGN "Identifiers"), and
// is written in a path as it is, slash and all: /v1/models/acme/resnet/versions.
// The path parameter that names a model (the one a route's access reads,
// `model: 'name'`) therefore matches one segment or two, and every route has
// it followed by a reserved word (identifiers.ts RESERVED_WORDS: versions,
// aliases, history, resolve, tree, revision…) or by nothing. The rule that
// tells a namespace from a sub-resource:
//
//   the name is the first two segments when the second is not a reserved
//   word, else the first segment alone.
//
// So /v1/models/acme/versions lists the versions of `acme` (no model can be
// called `acme/versions`), /v1/models/acme/resnet/versions those of
// `acme/resnet`, and /hf/acme/resolve/resolve/x is file x of `acme` at revision
// `resolve`. Each such route is registered twice, the two-segment reading
// first: it steps aside (next('route')) when its second segment is reserved,
// and the one-segment reading of the same route comes right after it. The
// answer does not depend on the order of the routes: a one-segment reading
// has a reserved word or nothing second, a two-segment one never.
// An encoded slash (`acme%2Fresnet`) is part of its segment: the one-segment
// reading gets `acme/resnet`, the same name, checked as any other.
// A path whose two-segment reading was refused and that no route took at all
// (`POST /v1/models/acme/versions/versions`: publishing to a model
// `acme/versions`) is 400 INVALID_NAME naming the word (refuseReservedNames).

const NAMESPACE_PARAM = 'namespace';
const REFUSED = Symbol('cairn.refusedName');

type WithRefused = Request & { [REFUSED]?: { name: string; access: Access } };

/** The path parameter that names a model: the one the route's access is checked on. */
export function modelParam(r: Route): string | undefined {
  return r.access !== 'open' && r.access.model !== undefined && r.access.model !== '*' ? r.access.model : undefined;
}

/** The two-segment form of a route's path: `/v1/models/:name/versions` → `/v1/models/:namespace/:name/versions`. */
function namespacedPath(path: string, param: string): string {
  return path.replace(new RegExp(`:${param}(?=/|$)`), `:${NAMESPACE_PARAM}/:${param}`);
}

function twoSegmentName(r: Route, param: string): RequestHandler {
  return function namespacedModelName(req, res, next) {
    const params = req.params as Record<string, string>;
    const name = `${params[NAMESPACE_PARAM]}/${params[param]}`;
    if (isReservedWord(params[param]!)) {
      (req as WithRefused)[REFUSED] ??= { name, access: r.access };
      next('route');
      return;
    }
    params[param] = name;
    delete params[NAMESPACE_PARAM];
    markRoute(res, r.path);
    next();
  };
}

function oneSegmentName(r: Route): RequestHandler {
  return function routeMatched(_req, res, next) {
    markRoute(res, r.path);
    next();
  };
}

/** Registers every route on the app, each behind its access check, in table order. */
export function registerRoutes(app: Express, routes: readonly Route[], ctx: RouteContext): void {
  for (const r of routes) {
    const handlers = [accessCheck(r.access), ...(r.before?.(ctx) ?? []), r.handle(ctx)];
    const param = modelParam(r);
    if (param !== undefined) app[r.method](namespacedPath(r.path, param), twoSegmentName(r, param), ...handlers);
    app[r.method](r.path, oneSegmentName(r), ...handlers);
  }
}

/**
 * After the routes: a request whose only reading as a route put a reserved
 * word in a model name is 400 INVALID_NAME (to a caller with the route's
 * access), rather than an unknown path.
 */
export function refuseReservedNames(): RequestHandler {
  return function refuseReservedName(req, _res, next) {
    const refused = (req as WithRefused)[REFUSED];
    if (refused) {
      requireAccess(req, refused.access, refused.name);
      checkName(refused.name); // throws: the base is a reserved word
    }
    next();
  };
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
