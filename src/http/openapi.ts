// The OpenAPI 3.1 description of the HTTP API, generated from the route table
// (./route.ts): paths and methods, parameters, bodies, responses, security
// from each route's access, and its error codes grouped by the status of the
// one error table (./error-status.ts). Components are the wire types of
// src/api/ that the routes name: every schema with an `$id` becomes
// `#/components/schemas/<$id>`. test/openapi.test.ts holds it to the app.
import { AliasName, Digest, ErrorBody, HubErrorBody, Name } from '../api/index.ts';
import type { ErrorCode } from '../errors.ts';
import { STATUS_OF } from './error-status.ts';
import { type ParamDoc, type ResponseDoc, type Route, TAGS } from './route.ts';

type Json = Record<string, any>;

/** Codes any route behind access control can answer with. */
const ACCESS: ErrorCode[] = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED', 'INTERNAL'];
/** Malformed JSON bodies (express.json), too large or with a bad charset. */
const JSON_BODY: ErrorCode[] = ['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

const X_REQUEST_ID: Json = { schema: { type: 'string' }, description: 'the request id (the one sent, if it was `[\\w.-]{1,128}`, else a new UUID); it is also in the server log line of the request' };
const SECURED = [{ bearer: [] }];

/** Path parameters as most routes mean them; a route's own `params` win. */
const PATH_PARAMS: Record<string, { description: string; schema: Json }> = {
  name: {
    description:
      "model name, `resnet` or `acme/resnet` (namespace/name), the slash written as is: `/v1/models/acme/resnet/versions`. The name is the first two segments unless the second is a reserved word (`versions`, `aliases`, `history`, …), which no part of a name may be: `/v1/models/acme/versions` lists the versions of `acme`. An encoded slash (`acme%2Fresnet`) names the same model. Each part `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, at most 128 characters in all.",
    schema: Name,
  },
  ref: { description: 'a version, an alias, `latest`, or a manifest digest `sha256:<64 hex>` (resolved in the order digest, version, alias)', schema: { type: 'string' } },
  alias: { description: 'alias name (the pattern of one part of a model name; `latest` and `main` are reserved: both are the latest version)', schema: AliasName },
  digest: { description: 'sha256 of the raw bytes', schema: Digest },
  path: { description: 'the path inside the version; may contain `/` (each segment URL-encoded)', schema: { type: 'string' } },
};

/** `/v1/models/:name/files/*path` → `/v1/models/{name}/files/{path}` */
export function templatePath(expressPath: string): string {
  return expressPath.replace(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function parameters(r: Route): Json[] {
  const own = r.doc.params ?? [];
  const inPath = [...templatePath(r.path).matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const path = inPath.map((name): ParamDoc => {
    const given = own.find((p) => p.in === 'path' && p.name === name);
    if (given) return given;
    const known = PATH_PARAMS[name];
    if (!known) throw new Error(`${r.method} ${r.path}: describe the path parameter ${name} in doc.params`);
    return { name, in: 'path', ...known };
  });
  return [...path, ...own.filter((p) => p.in !== 'path')].map((p) => ({
    name: p.name,
    in: p.in,
    required: p.in === 'path' ? true : (p.required ?? false),
    description: p.description,
    schema: p.schema ?? { type: 'string' },
  }));
}

const X_ERROR_CODE: Json = { schema: { type: 'string' }, description: "the Hub's error code (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo` for 401 and 403), else Cairn's" };
const X_ERROR_MESSAGE: Json = { schema: { type: 'string' }, description: 'the message, printable ASCII' };

/**
 * Error responses grouped by status, each listing its codes (in the
 * description and as `x-error-codes`); under /hf in the Hub's shape.
 */
function errorResponses(codes: ErrorCode[], hub: boolean): Record<string, Json> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = STATUS_OF[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, Json> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[String(status)] = {
      description: `Error: ${list.join(', ')}`,
      'x-error-codes': list,
      headers: {
        ...(hub ? { 'X-Error-Code': X_ERROR_CODE, 'X-Error-Message': X_ERROR_MESSAGE } : {}),
        ...(status === 401 ? { 'WWW-Authenticate': { schema: { type: 'string' }, description: '`Bearer realm="cairn"` (`Basic` under /git/)' } } : {}),
        ...(status === 429 ? { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds to wait' } } : {}),
      },
      content: { 'application/json': { schema: hub ? HubErrorBody : ErrorBody } },
    };
  }
  return out;
}

function response(r: ResponseDoc): Json {
  const content = r.schema ? { 'application/json': { schema: r.schema } } : r.content;
  return { description: r.description, ...(r.headers ? { headers: r.headers } : {}), ...(content ? { content } : {}) };
}

function operation(r: Route): Json {
  const { doc } = r;
  const codes = [...doc.errors];
  if (doc.body?.content['application/json']) codes.push(...JSON_BODY);
  if (r.access !== 'open') codes.push(...ACCESS);
  const responses: Record<string, Json> = {};
  for (const [status, res] of [...Object.entries(doc.responses).map(([s, x]) => [s, response(x)] as const), ...Object.entries(errorResponses(codes, r.path.startsWith('/hf/')))]) {
    responses[status] = { ...res, headers: { 'X-Request-Id': X_REQUEST_ID, ...(res.headers ?? {}) } };
  }
  const params = parameters(r);
  return {
    tags: [doc.tag],
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    operationId: doc.id,
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(doc.body ? { requestBody: doc.body } : {}),
    security: r.access === 'open' ? [] : SECURED,
    responses,
    'x-error-codes': Object.values(responses).flatMap((x) => (x['x-error-codes'] as string[] | undefined) ?? []),
  };
}

/**
 * Moves every schema with an `$id` into `components` and leaves a `$ref` in
 * its place (the wire types are declared once in src/api/ and shared by
 * reference, in the document as in the code).
 */
function extractComponents(doc: Json): Record<string, Json> {
  const components: Record<string, Json> = {};
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (!value || typeof value !== 'object') return value;
    const { $id, ...rest } = value as Json;
    const inner = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, walk(v)]));
    if (typeof $id !== 'string') return inner;
    const known = components[$id];
    if (known && JSON.stringify(known) !== JSON.stringify(inner)) throw new Error(`two different schemas are named ${$id}`);
    components[$id] = inner;
    return { $ref: `#/components/schemas/${$id}` };
  };
  doc.paths = walk(doc.paths);
  return components;
}

export function openApiDocument(routes: readonly Route[]): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const item = (paths[templatePath(r.path)] ??= {});
    if (item[r.method]) throw new Error(`${r.method} ${r.path} is declared twice`);
    item[r.method] = operation(r);
  }
  // plain JSON from here on: the schemas' TypeBox markers (symbols) are gone
  const doc: Json = JSON.parse(JSON.stringify({ paths }));
  const schemas = extractComponents(doc);
  // the error schema's code is exactly the table's codes
  schemas.Error!.properties.error.properties.code.enum = Object.keys(STATUS_OF);
  if (schemas.HubError) schemas.HubError.properties.code.enum = Object.keys(STATUS_OF);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cairn',
      version: '0.1.0',
      summary: 'Self-hosted, versioned model registry',
      description:
        'Models are named series of immutable versions; a version is a set of files. Errors are always `{"error":{"code","message"}}`; each operation lists its codes (`x-error-codes`). Every response carries `X-Request-Id`. A token goes in `Authorization: Bearer <token>`.',
    },
    servers: [{ url: '/' }],
    tags: TAGS.map((name) => ({ name })),
    security: SECURED,
    paths: doc.paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a Cairn token (`cairn token create`); git clients send it as the Basic password' },
      },
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

// ---- pieces the route declarations share ------------------------------------------

export const query = (name: string, description: string, schema: Json = { type: 'string' }, required = false): ParamDoc => ({ name, in: 'query', description, schema, required });
export const header = (name: string, description: string): ParamDoc => ({ name, in: 'header', description, schema: { type: 'string' } });
export const pathParam = (name: string, description: string, schema: Json = { type: 'string' }): ParamDoc => ({ name, in: 'path', description, schema });

export const LIMIT = query('limit', 'page size, 1 to 1000 (default 50)', { type: 'integer', minimum: 1, maximum: 1000, default: 50 });
export const CURSOR = query('cursor', 'the `next_cursor` of the previous page of the same list: opaque; anything else is 400 INVALID_ARGUMENT');
/** Reading a model's data: storage down, content failing its digest. */
export const STORAGE: ErrorCode[] = ['STORAGE_UNAVAILABLE', 'CONTENT_CORRUPT'];
/** Resolving `{name}` and `{ref}`. */
export const REF_ERRORS: ErrorCode[] = ['INVALID_NAME', 'INVALID_REF', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_DELETED'];
export const BINARY: Record<string, { schema: Json }> = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };
export const HTML: Record<string, { schema: Json }> = { 'text/html': { schema: { type: 'string' } } };
export const LOCATION = (description?: string): Record<string, { schema: Json; description?: string }> => ({ Location: { schema: { type: 'string' }, ...(description ? { description } : {}) } });
