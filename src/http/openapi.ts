// The OpenAPI 3.1 description of the HTTP API, served at GET /openapi.json
// and rendered at GET /docs. test/openapi.test.ts holds it to the truth: its
// paths and methods are exactly the app's routes, and every error code it
// lists maps to the same status in ./error-status.ts.
import type { ErrorCode } from '../errors.ts';
import { MAX_FILES_PER_VERSION } from '../identifiers.ts';
import { MAX_JSON_BYTES, MAX_JSON_DEPTH } from '../json-limits.ts';
import { MAX_PARENTS } from '../identifiers.ts';
import { STATUS_OF } from './error-status.ts';
import { MAX_FIELDS } from './multipart.ts';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });

/** Codes any route behind access control can answer with. */
const ACCESS: ErrorCode[] = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED', 'INTERNAL'];
/** …and those reading a model's data (storage down, content failing its digest). */
const STORAGE: ErrorCode[] = ['STORAGE_UNAVAILABLE', 'CONTENT_CORRUPT'];
/** Malformed JSON bodies (express.json), too large or with a bad charset. */
const JSON_BODY: ErrorCode[] = ['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];
const REF: ErrorCode[] = ['INVALID_NAME', 'INVALID_REF', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_DELETED'];

/**
 * Error responses grouped by status, each listing its codes (in the
 * description and as `x-error-codes`, which the test checks against STATUS_OF).
 */
function errors(...codes: ErrorCode[]): Record<string, Json> {
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
      ...(status === 401 ? { headers: { 'WWW-Authenticate': { schema: { type: 'string' }, description: '`Bearer realm="cairn"` (`Basic` under /git/)' } } } : {}),
      ...(status === 429 ? { headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds to wait' } } } : {}),
      content: json(ref('Error')),
    };
  }
  return out;
}

const FILE_PATH =
  'path inside the version: relative, `/`-separated, no `..`, `.` or empty segments, at most 1024 bytes; stored in Unicode NFC. ' +
  'Refused (400 INVALID_PATH): control, format (zero-width, bidi) and U+FFFD characters (invalid UTF-8 in a multipart filename decodes to U+FFFD), a backslash, a drive letter (`C:x`), a segment ending in `.` or space. ' +
  'Refused (400 DUPLICATE_PATH): two paths equal ignoring case, a path that is also the directory of another (`a` and `a/b`).';
const USER_JSON = `any JSON, nested at most ${MAX_JSON_DEPTH} levels, at most ${MAX_JSON_BYTES} bytes (400 INVALID_ARGUMENT otherwise)`;

const pathParam = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({ name, in: 'path', required: true, description, schema });
const queryParam = (name: string, description: string, schema: Json = { type: 'string' }, required = false): Json => ({ name, in: 'query', required, description, schema });
const headerParam = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({ name, in: 'header', required: false, description, schema });

const NAME = pathParam('name', 'model name: `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, at most 128 characters', ref('Name'));
const REF_PARAM = pathParam('ref', 'a version, an alias, `latest`, or a manifest digest `sha256:<64 hex>` (resolved in the order digest, version, alias)');
const ALIAS = pathParam('alias', 'alias name (same pattern as a model name; `latest` is reserved)', ref('Name'));
const UPLOAD_ID = pathParam('id', 'upload session id');
const LIMIT = queryParam('limit', 'page size, 1 to 1000 (default 50)', { type: 'integer', minimum: 1, maximum: 1000, default: 50 });
const CURSOR = queryParam('cursor', 'the `next_cursor` of the previous page of the same list: opaque; anything else is 400 INVALID_ARGUMENT');
const X_REQUEST_ID: Json = { schema: { type: 'string' }, description: 'the request id (the one sent, if it was `[\\w.-]{1,128}`, else a new UUID); it is also in the server log line of the request' };

const SECURED = [{ bearer: [] }];
const OPEN: Json[] = [];

function op(o: { tags: string[]; summary: string; description?: string; operationId: string; security?: Json[]; parameters?: Json[]; requestBody?: Json; responses: Record<string, Json> }): Json {
  const responses: Record<string, Json> = {};
  for (const [status, r] of Object.entries(o.responses)) {
    const headers = { 'X-Request-Id': X_REQUEST_ID, ...((r.headers as Json | undefined) ?? {}) };
    responses[status] = { ...r, headers };
  }
  const codes = Object.values(o.responses).flatMap((r) => (r['x-error-codes'] as string[] | undefined) ?? []);
  return { ...o, security: o.security ?? SECURED, responses, 'x-error-codes': codes };
}

const schemas: Record<string, Json> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: Object.keys(STATUS_OF), description: 'stable, machine-readable' },
          message: { type: 'string', description: 'for people' },
        },
        additionalProperties: true,
        description: 'some errors add details, e.g. `offset` on UPLOAD_INCOMPLETE / UPLOAD_OFFSET_MISMATCH / UPLOAD_RANGE_EXCEEDED, `max_bytes` on PAYLOAD_TOO_LARGE',
      },
    },
  },
  Name: { type: 'string', pattern: '^[a-z0-9]+(?:[._-][a-z0-9]+)*$', maxLength: 128 },
  Version: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$' },
  Digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
  Tensor: { type: 'object', properties: { name: { type: 'string' }, dtype: { type: 'string' }, shape: { type: 'array', items: { type: ['integer', 'string'] } } } },
  Safety: {
    type: 'object',
    required: ['verdict', 'findings'],
    properties: {
      verdict: { type: 'string', enum: ['safe', 'unsafe', 'unknown'] },
      findings: { type: 'array', items: { type: 'object', properties: { global: { type: 'string' }, reason: { type: 'string' } } } },
      globals: { type: 'array', items: { type: 'string' } },
      incomplete: { type: 'array', items: { type: 'string' }, description: 'what was not checked and why (a budget or depth limit, a member too large to read); never present on a `safe` verdict' },
    },
  },
  File: {
    type: 'object',
    required: ['path', 'size', 'digest', 'format', 'safety', 'details'],
    properties: {
      path: { type: 'string', description: 'relative, `/`-separated, at most 1024 bytes' },
      size: { type: 'integer' },
      digest: ref('Digest'),
      format: { type: 'string', description: 'onnx, safetensors, gguf, pytorch, pickle, joblib, numpy, tflite, keras, h5, savedmodel, tfjs, torchserve, unknown' },
      framework: { type: 'string' },
      parameters: { type: 'integer' },
      dtypes: { type: 'object', additionalProperties: { type: 'integer' } },
      inputs: { type: 'array', items: ref('Tensor') },
      outputs: { type: 'array', items: ref('Tensor') },
      safety: ref('Safety'),
      details: { type: 'object', description: 'format-specific details' },
    },
  },
  Parent: {
    type: 'object',
    description: 'A parent version. One of a model the caller may not read is redacted: `hidden: true`, name, version and digest `"hidden"`, recipe null.',
    required: ['name', 'version', 'digest', 'relation', 'recipe'],
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      digest: { anyOf: [ref('Digest'), { const: 'hidden' }] },
      relation: { type: 'string' },
      recipe: { description: 'any JSON' },
      hidden: { const: true, description: 'present only on a redacted parent' },
    },
  },
  FormatSummary: {
    type: 'object',
    properties: {
      framework: { type: ['string', 'null'] },
      formats: { type: 'array', items: { type: 'string' } },
      parameters: { type: ['integer', 'null'] },
      dtypes: { type: 'object', additionalProperties: { type: 'integer' } },
      inputs: { type: 'array', items: ref('Tensor') },
      outputs: { type: 'array', items: ref('Tensor') },
      safety: { type: 'object', properties: { verdict: { type: 'string', enum: ['safe', 'unsafe', 'unknown'] }, unsafe_files: { type: 'array', items: { type: 'object' } }, unchecked_files: { type: 'array', items: { type: 'string' } } } },
    },
  },
  VersionSummary: {
    type: 'object',
    required: ['version', 'number', 'digest', 'size', 'created_at', 'created_by', 'message', 'aliases'],
    properties: {
      version: ref('Version'),
      number: { type: 'integer', description: '1, 2, 3… per model in publish order, never reused' },
      digest: { ...ref('Digest'), description: 'sha256 of the canonical manifest' },
      size: { type: 'integer', description: 'sum of the file sizes' },
      created_at: { type: 'string', format: 'date-time' },
      created_by: { type: 'string' },
      message: { type: 'string' },
      aliases: { type: 'array', items: { type: 'string' } },
    },
  },
  VersionDocument: {
    type: 'object',
    required: ['name', 'version', 'number', 'digest', 'size', 'created_at', 'created_by', 'message', 'files', 'aliases', 'parents', 'metadata', 'summary'],
    properties: {
      name: ref('Name'),
      version: ref('Version'),
      number: { type: 'integer' },
      digest: ref('Digest'),
      size: { type: 'integer' },
      created_at: { type: 'string', format: 'date-time' },
      created_by: { type: 'string' },
      message: { type: 'string' },
      files: { type: 'array', items: ref('File') },
      aliases: { type: 'array', items: { type: 'string' } },
      parents: { type: 'array', items: ref('Parent') },
      metadata: { type: 'object' },
      summary: ref('FormatSummary'),
    },
  },
  Model: {
    type: 'object',
    required: ['name', 'description', 'created_at', 'updated_at', 'aliases', 'latest', 'counts'],
    properties: {
      name: ref('Name'),
      description: { type: 'string' },
      created_at: { type: 'string', format: 'date-time' },
      updated_at: { type: 'string', format: 'date-time' },
      aliases: { type: 'object', additionalProperties: { type: 'string' }, description: 'alias → version' },
      latest: { oneOf: [ref('VersionSummary'), { type: 'null' }] },
      counts: { type: 'object', properties: { versions: { type: 'integer' } } },
    },
  },
  ModelListItem: {
    type: 'object',
    properties: {
      name: ref('Name'),
      description: { type: 'string' },
      created_at: { type: 'string', format: 'date-time' },
      updated_at: { type: 'string', format: 'date-time' },
      latest_version: { type: ['string', 'null'] },
      versions: { type: 'integer' },
    },
  },
  NextCursor: { type: ['string', 'null'], description: 'pass as `cursor` for the next page; null on the last page' },
  ModelList: { type: 'object', required: ['models', 'next_cursor'], properties: { models: { type: 'array', items: ref('ModelListItem') }, next_cursor: ref('NextCursor') } },
  VersionList: { type: 'object', required: ['versions', 'next_cursor'], properties: { versions: { type: 'array', items: ref('VersionSummary') }, next_cursor: ref('NextCursor') } },
  HistoryEvent: {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      commit: { type: ['string', 'null'], description: 'the lineage commit (40 hex) once mirrored' },
      event: { type: 'string', enum: ['publish', 'alias', 'unalias', 'delete'] },
      version: { type: ['string', 'null'] },
      alias: { type: ['string', 'null'] },
      author: { type: 'string' },
      time: { type: 'string', format: 'date-time' },
      subject: { type: 'string' },
      message: { type: 'string' },
    },
  },
  History: { type: 'object', required: ['events', 'next_cursor'], properties: { events: { type: 'array', items: ref('HistoryEvent') }, next_cursor: ref('NextCursor') } },
  LineageGraph: {
    type: 'object',
    required: ['root', 'nodes', 'edges'],
    properties: {
      root: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' } } },
      nodes: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, number: { type: 'integer' }, digest: ref('Digest'), deleted: { type: 'boolean' } } },
      },
      edges: {
        type: 'array',
        description: '`from` is the parent, `to` the child; both `name@version`',
        items: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' }, relation: { type: 'string' }, recipe: { description: 'any JSON' } } },
      },
    },
  },
  AliasSet: { type: 'object', required: ['alias', 'version', 'previous'], properties: { alias: { type: 'string' }, version: { type: 'string' }, previous: { type: ['string', 'null'] } } },
  UploadSession: {
    type: 'object',
    required: ['id', 'offset', 'created_at', 'updated_at'],
    properties: { id: { type: 'string' }, offset: { type: 'integer', description: 'bytes stored so far: the next PATCH starts here' }, created_at: { type: 'string', format: 'date-time' }, updated_at: { type: 'string', format: 'date-time' } },
  },
  Blob: { type: 'object', required: ['digest', 'size'], properties: { digest: ref('Digest'), size: { type: 'integer' } } },
  ParentInput: {
    oneOf: [
      { type: 'string', description: '`name@ref`' },
      { type: 'object', required: ['ref'], properties: { ref: { type: 'string', description: '`name@ref`' }, relation: { type: 'string', description: 'e.g. fine-tune, quantize, distill, merge, retrain' }, recipe: { description: USER_JSON } } },
    ],
  },
  PublishManifest: {
    type: 'object',
    required: ['version', 'files'],
    properties: {
      version: ref('Version'),
      files: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_FILES_PER_VERSION,
        items: { type: 'object', required: ['path', 'digest'], properties: { path: { type: 'string', description: FILE_PATH }, digest: ref('Digest') } },
        description: 'blobs uploaded before (POST /v1/uploads)',
      },
      message: { type: 'string' },
      aliases: { type: 'array', items: ref('Name') },
      parents: { type: 'array', maxItems: MAX_PARENTS, items: ref('ParentInput') },
      metadata: { type: 'object', description: `a JSON object, nested at most ${MAX_JSON_DEPTH} levels, at most ${MAX_JSON_BYTES} bytes` },
    },
  },
  PublishForm: {
    type: 'object',
    required: ['version'],
    description: `fields, then one or more file parts (at most ${MAX_FILES_PER_VERSION}; the next one is refused before it is stored): each part's filename is the path inside the version (any other field name works for file parts). At most ${MAX_FIELDS} fields of at most ${MAX_JSON_BYTES} bytes each.`,
    properties: {
      version: ref('Version'),
      message: { type: 'string' },
      alias: { type: 'array', items: ref('Name'), description: 'repeatable field' },
      parent: { type: 'array', items: { type: 'string' }, description: 'repeatable field, `name@ref`' },
      relation: { type: 'array', items: { type: 'string' }, description: 'one for every parent, or one per parent' },
      recipe: { type: 'string', description: `JSON; falls back to metadata.recipe; ${USER_JSON}` },
      metadata: { type: 'string', description: `a JSON object, nested at most ${MAX_JSON_DEPTH} levels, at most ${MAX_JSON_BYTES} bytes` },
      file: { type: 'array', items: { type: 'string', contentMediaType: 'application/octet-stream' }, description: `the filename of each part: ${FILE_PATH}` },
    },
  },
  Token: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      prefix: { type: 'string' },
      scope: { type: 'string', enum: ['read', 'write', 'admin'] },
      scopes: { type: 'array', items: { type: 'string', enum: ['read', 'write', 'admin'] } },
      models: { type: 'array', items: { type: 'string' }, description: 'name patterns; empty: every model' },
      created_at: { type: 'string', format: 'date-time' },
      created_by: { type: 'string' },
      expires_at: { type: ['string', 'null'], format: 'date-time' },
      last_used_at: { type: ['string', 'null'], format: 'date-time' },
    },
  },
  VersionDiff: {
    type: 'object',
    properties: {
      from: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, digest: { type: 'string' } } },
      to: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, digest: { type: 'string' } } },
      files: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            path: { type: 'string' },
            status: { type: 'string', enum: ['added', 'removed', 'changed', 'unchanged'] },
            from: { type: ['object', 'null'], properties: { size: { type: 'integer' }, digest: { type: 'string' } } },
            to: { type: ['object', 'null'], properties: { size: { type: 'integer' }, digest: { type: 'string' } } },
            shared_bytes: { type: 'integer', description: 'bytes of the file (as in `to`) in chunks the `from` version also has' },
          },
        },
      },
      summary: {
        type: 'object',
        properties: {
          added: { type: 'integer' },
          removed: { type: 'integer' },
          changed: { type: 'integer' },
          unchanged: { type: 'integer' },
          to_bytes: { type: 'integer' },
          shared_bytes: { type: 'integer' },
          new_stored_bytes: { type: 'integer', description: 'stored (compressed) bytes of the chunks `to` has and `from` does not' },
        },
      },
    },
  },
  Webhook: {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      url: { type: 'string', format: 'uri' },
      events: { type: 'array', items: { type: 'string', enum: ['publish', 'alias', 'unalias', 'delete'] }, description: 'empty: every kind' },
      models: { type: 'array', items: { type: 'string' }, description: 'name patterns (`*` wildcards); empty: every model' },
      created_by: { type: 'string' },
      created_at: { type: 'string', format: 'date-time' },
    },
  },
  WebhookCreated: {
    allOf: [ref('Webhook'), { type: 'object', required: ['secret'], properties: { secret: { type: 'string', description: 'the HMAC-SHA256 key of X-Cairn-Signature-256: shown once, never again' } } }],
  },
  WebhookRequest: {
    type: 'object',
    required: ['url'],
    properties: {
      url: { type: 'string', format: 'uri', description: 'an HTTP or HTTPS URL without credentials in it' },
      events: { type: 'array', items: { type: 'string', enum: ['publish', 'alias', 'unalias', 'delete'] } },
      models: { type: 'array', items: { type: 'string' } },
    },
  },
  WebhookDelivery: {
    type: 'object',
    properties: {
      id: { type: 'integer', description: 'also sent as X-Cairn-Delivery: receivers dedupe on it (delivery is at least once)' },
      webhook_id: { type: 'integer' },
      event_id: { type: 'integer' },
      state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
      attempts: { type: 'integer' },
      next_at: { type: 'string', format: 'date-time' },
      last_status: { type: ['integer', 'null'] },
      last_error: { type: ['string', 'null'] },
      delivered_at: { type: ['string', 'null'], format: 'date-time' },
    },
  },
  TokenCreated: { allOf: [ref('Token'), { type: 'object', required: ['token'], properties: { token: { type: 'string', description: 'the secret: shown once, never again' } } }] },
  TokenRequest: {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string' },
      scope: { type: 'string', enum: ['read', 'write', 'admin'] },
      scopes: { type: 'array', items: { type: 'string', enum: ['read', 'write', 'admin'] } },
      models: { type: 'array', items: { type: 'string' } },
      expires_in_days: { type: 'number' },
    },
  },
  VerifyReport: {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      quick: { type: 'boolean' },
      versions_checked: { type: 'integer' },
      files_checked: { type: 'integer' },
      chunks_checked: { type: 'integer' },
      bytes_read: { type: 'integer' },
      problems: { type: 'array', items: { type: 'object', properties: { model: { type: 'string' }, version: { type: 'string' }, path: { type: 'string' }, chunk: { type: ['string', 'null'] }, problem: { type: 'string' } } } },
      seconds: { type: 'number' },
    },
  },
  GcReport: {
    type: 'object',
    properties: Object.fromEntries(
      ['chunks_deleted', 'bytes_freed', 'orphan_objects_deleted', 'orphan_bytes_freed', 'orphan_objects_pending', 'blobs_deleted', 'uploads_expired'].map((k) => [k, { type: 'integer' }]).concat([
        ['dry_run', { type: 'boolean' }],
        ['grace_seconds', { type: 'number' }],
        ['upload_ttl_seconds', { type: 'number' }],
        ['seconds', { type: 'number' }],
      ]),
    ),
  },
  Readiness: {
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['ready', 'not ready'] },
      storage: { type: 'string', enum: ['fs', 's3'] },
      checks: { type: 'object', additionalProperties: { type: 'string' }, description: '`ok` or `error: …` for db and storage' },
      mirror: { type: 'object', properties: { pending: { type: 'integer' }, oldest_pending: { type: ['string', 'null'] }, last_error: { type: ['string', 'null'] } } },
    },
  },
};

const fileHeaders: Json = {
  ETag: { schema: { type: 'string' }, description: 'the file digest, quoted' },
  'X-Content-Digest': { schema: ref('Digest') },
  'Accept-Ranges': { schema: { type: 'string', const: 'bytes' } },
  'Content-Disposition': { schema: { type: 'string' } },
  'Content-Length': { schema: { type: 'integer' } },
};

const sessionHeaders: Json = {
  Location: { schema: { type: 'string' }, description: '/v1/uploads/{id}' },
  'Upload-Offset': { schema: { type: 'integer' }, description: 'bytes stored so far' },
  Range: { schema: { type: 'string' }, description: 'OCI-style: `0-<offset-1>` (`0-0` when empty)' },
};

const gitOperation = (method: string): Json =>
  op({
    tags: ['lineage'],
    operationId: `git${method}`,
    summary: `git smart HTTP (read-only), ${method === 'get' ? 'ref advertisement' : 'upload-pack'}`,
    description:
      'The lineage repository for `git clone http://HOST:PORT/git/lineage.git` (git-http-backend). Needs read on every model; git sends the token as Basic password. The route accepts every method; git uses GET `info/refs?service=git-upload-pack` and POST `git-upload-pack`. Pushes are refused.',
    parameters: [pathParam('rest', 'path inside the repository, e.g. `info/refs` or `git-upload-pack` (may contain `/`)'), queryParam('service', 'e.g. git-upload-pack')],
    ...(method === 'post' ? { requestBody: { required: true, content: { 'application/x-git-upload-pack-request': { schema: { type: 'string', format: 'binary' } } } } } : {}),
    responses: {
      '200': { description: 'git protocol data', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      ...errors(...ACCESS, 'ROUTE_NOT_FOUND'),
    },
  });

const webPage = (operationId: string, summary: string): Json =>
  op({ tags: ['web'], operationId, summary, security: OPEN, responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } });

const HUB_REVISION = pathParam(
  'revision',
  '`main` or `HEAD` (the latest version), a version, an alias, a manifest digest, or the 40-hex id of a version\'s publish commit in the lineage repository (what Hugging Face clients pin to)',
);
const hubFileHeaders: Json = {
  'X-Repo-Commit': { schema: { type: 'string' }, description: "the version's publish commit" },
  ETag: { schema: { type: 'string' }, description: "the file's sha256, hex, quoted" },
  'X-Linked-Etag': { schema: { type: 'string' }, description: 'the same as ETag' },
  'X-Linked-Size': { schema: { type: 'integer' }, description: "the file's size" },
  'X-Error-Code': { schema: { type: 'string' }, description: 'on 404: `RepoNotFound`, `RevisionNotFound` or `EntryNotFound`' },
};
const hubInfo = (operationId: string, withRevision: boolean): Json =>
  op({
    tags: ['hugging-face'],
    operationId,
    summary: withRevision ? 'A model at a revision, in the Hugging Face Hub shape' : 'A model at `main`, in the Hugging Face Hub shape',
    description: '`sha` is the publish commit of the version; `siblings` its files. For `huggingface_hub` (`HF_ENDPOINT=http://HOST:PORT/hf`) and `@huggingface/hub` (`hubUrl`).',
    parameters: withRevision ? [NAME, HUB_REVISION] : [NAME],
    responses: { '200': { description: 'model info', content: json({ type: 'object' }) }, ...errors(...REF, 'COMMIT_PENDING', ...ACCESS) },
  });
const hubTree = (operationId: string, withPath: boolean): Json =>
  op({
    tags: ['hugging-face'],
    operationId,
    summary: withPath ? 'The files under a directory of a revision (Hugging Face Hub tree)' : 'The files of a revision (Hugging Face Hub tree)',
    parameters: [NAME, HUB_REVISION, ...(withPath ? [pathParam('path', 'a directory inside the version')] : []), queryParam('recursive', '`true`: everything below, not just the direct entries')],
    responses: {
      '200': { description: 'entries: `{type: file|directory, path, size, oid, lfs?}`', content: json({ type: 'array', items: { type: 'object' } }) },
      ...errors(...REF, 'FILE_NOT_FOUND', 'COMMIT_PENDING', ...ACCESS),
    },
  });

const paths: Record<string, Json> = {
  '/healthz': {
    get: op({ tags: ['operations'], operationId: 'health', summary: 'Liveness', security: OPEN, responses: { '200': { description: 'alive', content: json({ type: 'object', properties: { status: { const: 'ok' } } }) } } }),
  },
  '/readyz': {
    get: op({
      tags: ['operations'],
      operationId: 'ready',
      summary: 'Readiness: database and storage reachable; git mirror lag reported, never a reason to refuse',
      security: OPEN,
      responses: { '200': { description: 'ready', content: json(ref('Readiness')) }, '503': { description: 'database or storage unavailable (same body, status `not ready`)', content: json(ref('Readiness')) } },
    }),
  },
  '/metrics': {
    get: op({
      tags: ['operations'],
      operationId: 'metrics',
      summary: 'Prometheus metrics (text format 0.0.4)',
      description: 'Needs read on every model (labels name models and versions); open with CAIRN_AUTH=off or CAIRN_ANONYMOUS_READ=true.',
      responses: { '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(...ACCESS) },
    }),
  },
  '/openapi.json': {
    get: op({ tags: ['operations'], operationId: 'openapi', summary: 'This document', security: OPEN, responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } }),
  },
  '/docs': {
    get: op({ tags: ['operations'], operationId: 'docs', summary: 'This document as a readable HTML page', security: OPEN, responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } }),
  },
  '/v1/models': {
    get: op({
      tags: ['models'],
      operationId: 'listModels',
      summary: 'List or search models, by name',
      description: 'A token limited to name patterns sees only those models (a page may be shorter than `limit`).',
      parameters: [
        queryParam('q', 'substring of the model name'),
        queryParam('format', 'only models whose latest version has a file of this format'),
        queryParam('framework', 'only models whose latest version has this framework'),
        queryParam('unsafe', 'true: only models whose latest version is unsafe; false: only the others', { type: 'string', enum: ['true', 'false'] }),
        LIMIT,
        CURSOR,
      ],
      responses: { '200': { description: 'a page of models', content: json(ref('ModelList')) }, ...errors('INVALID_ARGUMENT', ...ACCESS) },
    }),
  },
  '/v1/models/{name}': {
    get: op({ tags: ['models'], operationId: 'getModel', summary: 'A model: aliases, latest version, counts', parameters: [NAME], responses: { '200': { description: 'the model', content: json(ref('Model')) }, ...errors('INVALID_NAME', 'MODEL_NOT_FOUND', ...ACCESS) } }),
  },
  '/v1/models/{name}/versions': {
    get: op({
      tags: ['versions'],
      operationId: 'listVersions',
      summary: 'Versions, newest first',
      parameters: [NAME, LIMIT, CURSOR],
      responses: { '200': { description: 'a page of versions', content: json(ref('VersionList')) }, ...errors('INVALID_NAME', 'INVALID_ARGUMENT', 'MODEL_NOT_FOUND', ...ACCESS) },
    }),
    post: op({
      tags: ['versions'],
      operationId: 'publish',
      summary: 'Publish a version',
      description:
        'Either `multipart/form-data` (fields and file parts; each file streams into storage as it arrives) or `application/json` (a manifest naming blobs uploaded before through /v1/uploads). The version becomes visible at once and in full, or not at all. The model is created by its first publish. Needs write on the model, and read on the model of each parent (403 otherwise). A JSON manifest may name only blobs this token uploaded or that a live version it may read holds; any other digest is 400 UNKNOWN_BLOB, as if it were not stored.',
      parameters: [NAME],
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': { schema: ref('PublishForm'), encoding: { alias: { style: 'form', explode: true }, parent: { style: 'form', explode: true } } },
          'application/json': { schema: ref('PublishManifest') },
        },
      },
      responses: {
        '201': { description: 'published', headers: { Location: { schema: { type: 'string' }, description: '/v1/models/{name}/versions/{version}' } }, content: json(ref('VersionDocument')) },
        ...errors(
          'INVALID_NAME',
          'INVALID_VERSION',
          'INVALID_ALIAS',
          'INVALID_PATH',
          'INVALID_DIGEST',
          'INVALID_ARGUMENT',
          'INVALID_PARENT',
          'DUPLICATE_PATH',
          'UNKNOWN_BLOB',
          'VERSION_EXISTS',
          'PAYLOAD_TOO_LARGE',
          'UNSUPPORTED_MEDIA_TYPE',
          'INVALID_MODEL_FILE',
          'UNSAFE_MODEL',
          ...ACCESS,
          ...STORAGE,
        ),
      },
    }),
  },
  '/v1/models/{name}/versions/{ref}': {
    get: op({ tags: ['versions'], operationId: 'getVersion', summary: 'A version document', parameters: [NAME, REF_PARAM], responses: { '200': { description: 'the version', content: json(ref('VersionDocument')) }, ...errors(...REF, ...ACCESS) } }),
    delete: op({
      tags: ['versions'],
      operationId: 'deleteVersion',
      summary: 'Delete a version',
      description: '`ref` must be the version string itself (not an alias or digest). The version string stays taken. Aliases on it must be moved or removed first. Needs write on the model.',
      parameters: [NAME, { ...REF_PARAM, description: 'the version to delete', schema: ref('Version') }],
      responses: { '204': { description: 'deleted' }, ...errors('INVALID_NAME', 'INVALID_VERSION', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_DELETED', 'VERSION_HAS_ALIASES', ...ACCESS) },
    }),
  },
  '/v1/models/{name}/versions/{ref}/files/{path}': {
    get: op({
      tags: ['versions'],
      operationId: 'getFile',
      summary: "A file's bytes (HEAD: headers only)",
      description: 'Streams the file; every chunk is checked against its digest, and a mismatch is never served (the connection is cut if streaming has begun). A single byte range is honoured; several ranges get the whole file.',
      parameters: [
        NAME,
        REF_PARAM,
        pathParam('path', 'the path inside the version; may contain `/` (each segment URL-encoded)'),
        headerParam('Range', '`bytes=<first>-<last>`, `bytes=<first>-` or `bytes=-<suffix>`'),
        headerParam('If-Range', 'the ETag: the Range applies only while it matches'),
        headerParam('If-None-Match', 'the ETag (or `*`): 304 when it matches'),
      ],
      responses: {
        '200': { description: 'the whole file', headers: fileHeaders, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        '206': { description: 'the requested range', headers: { ...fileHeaders, 'Content-Range': { schema: { type: 'string' }, description: '`bytes <first>-<last>/<size>`' } }, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        '304': { description: 'If-None-Match matched', headers: fileHeaders },
        ...errors(...REF, 'INVALID_PATH', 'FILE_NOT_FOUND', 'RANGE_NOT_SATISFIABLE', ...ACCESS, ...STORAGE),
      },
    }),
  },
  '/v1/models/{name}/versions/{ref}/archive': {
    get: op({
      tags: ['versions'],
      operationId: 'getArchive',
      summary: 'All files of a version as one tar stream',
      parameters: [NAME, REF_PARAM],
      responses: {
        '200': {
          description: 'a tar archive, files in path order',
          headers: { ETag: { schema: { type: 'string' }, description: 'the version digest, quoted' }, 'Content-Disposition': { schema: { type: 'string' } } },
          content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } },
        },
        ...errors(...REF, ...ACCESS, ...STORAGE),
      },
    }),
  },
  '/v1/models/{name}/versions/{ref}/diff': {
    get: op({
      tags: ['versions'],
      operationId: 'diffVersions',
      summary: 'What changed from another version to this one, and how many bytes their chunks share',
      description: 'Per path: added, removed, changed or unchanged, and `shared_bytes` — the part of the file that lies in chunks the other version has (content-defined chunks: a shifted or partly changed file still shares most of them). The summary adds the stored bytes this version costs beyond the other.',
      parameters: [NAME, REF_PARAM, queryParam('from', 'the base: a ref of this model, or `<name>@<ref>` of another (read access to it is needed)', { type: 'string' }, true)],
      responses: { '200': { description: 'the diff', content: json(ref('VersionDiff')) }, ...errors(...REF, 'INVALID_ARGUMENT', ...ACCESS) },
    }),
  },
  '/v1/models/{name}/versions/{ref}/lineage': {
    get: op({
      tags: ['lineage'],
      operationId: 'getLineage',
      summary: 'Ancestors and descendants, across models, as a graph',
      description: 'Only versions of models the caller may read: another is left out with its edges (and their recipes), and the graph does not go on through it.',
      parameters: [NAME, REF_PARAM],
      responses: { '200': { description: 'the graph', content: json(ref('LineageGraph')) }, ...errors(...REF, ...ACCESS) },
    }),
  },
  '/v1/models/{name}/history': {
    get: op({
      tags: ['lineage'],
      operationId: 'getHistory',
      summary: "A model's events, newest first",
      parameters: [NAME, LIMIT, CURSOR],
      responses: { '200': { description: 'a page of events', content: json(ref('History')) }, ...errors('INVALID_NAME', 'INVALID_ARGUMENT', 'MODEL_NOT_FOUND', ...ACCESS) },
    }),
  },
  '/v1/models/{name}/aliases/{alias}': {
    put: op({
      tags: ['aliases'],
      operationId: 'setAlias',
      summary: 'Set or move an alias',
      description: 'Needs write on the model.',
      parameters: [NAME, ALIAS],
      requestBody: { required: true, content: json({ type: 'object', required: ['version'], properties: { version: ref('Version') } }) },
      responses: { '200': { description: 'set', content: json(ref('AliasSet')) }, ...errors('INVALID_NAME', 'INVALID_ALIAS', 'INVALID_VERSION', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_DELETED', ...JSON_BODY, ...ACCESS) },
    }),
    delete: op({
      tags: ['aliases'],
      operationId: 'deleteAlias',
      summary: 'Remove an alias',
      parameters: [NAME, ALIAS],
      responses: { '204': { description: 'removed' }, ...errors('INVALID_NAME', 'INVALID_ALIAS', 'MODEL_NOT_FOUND', 'ALIAS_NOT_FOUND', ...ACCESS) },
    }),
  },
  '/v1/uploads': {
    post: op({
      tags: ['uploads'],
      operationId: 'createUpload',
      summary: 'Start a resumable upload session',
      description: 'Needs write. Then PATCH bytes, and PUT with the digest to finish; publish with a JSON manifest naming the digest. The session belongs to the token that started it: to any other token it is 404 UPLOAD_NOT_FOUND.',
      responses: { '201': { description: 'a new, empty session', headers: sessionHeaders, content: json(ref('UploadSession')) }, ...errors(...ACCESS) },
    }),
  },
  '/v1/uploads/{id}': {
    get: op({
      tags: ['uploads'],
      operationId: 'getUpload',
      summary: 'Where a session stands (the offset to resume from)',
      parameters: [UPLOAD_ID],
      responses: { '200': { description: 'the session', headers: sessionHeaders, content: json(ref('UploadSession')) }, ...errors('UPLOAD_NOT_FOUND', ...ACCESS) },
    }),
    patch: op({
      tags: ['uploads'],
      operationId: 'appendUpload',
      summary: 'Append bytes',
      description:
        'The body is appended at the session offset. With Content-Range its start must equal the offset (409 UPLOAD_OFFSET_MISMATCH otherwise); a body shorter than the range declared leaves 400 UPLOAD_INCOMPLETE with the new offset to resume from. ' +
        'No byte past the declared end is stored: 400 UPLOAD_RANGE_EXCEEDED, before anything is read when Content-Length says the body is longer, else at the first byte past the end (the declared bytes are kept); its `offset` is where the session ends.',
      parameters: [UPLOAD_ID, headerParam('Content-Range', '`bytes <start>-<end>/*` (or `/<total>`)')],
      requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      responses: {
        '202': { description: 'appended', headers: sessionHeaders, content: json(ref('UploadSession')) },
        ...errors('INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_OFFSET_MISMATCH', 'UPLOAD_INCOMPLETE', 'UPLOAD_RANGE_EXCEEDED', 'UPLOAD_BUSY', 'UPLOAD_FINISHED', 'PAYLOAD_TOO_LARGE', ...ACCESS, 'STORAGE_UNAVAILABLE'),
      },
    }),
    put: op({
      tags: ['uploads'],
      operationId: 'finishUpload',
      summary: 'Finish: check the digest, keep the content as a blob',
      description: 'An optional body is appended first (a one-request upload).',
      parameters: [UPLOAD_ID, queryParam('digest', 'sha256 of all the bytes', ref('Digest'), true)],
      requestBody: { required: false, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      responses: {
        '201': { description: 'stored', headers: { Location: { schema: { type: 'string' }, description: '/v1/blobs/{digest}' } }, content: json(ref('Blob')) },
        ...errors('INVALID_DIGEST', 'DIGEST_MISMATCH', 'INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_BUSY', 'UPLOAD_FINISHED', 'PAYLOAD_TOO_LARGE', ...ACCESS, 'STORAGE_UNAVAILABLE'),
      },
    }),
    delete: op({
      tags: ['uploads'],
      operationId: 'cancelUpload',
      summary: 'Cancel a session',
      parameters: [UPLOAD_ID],
      responses: { '204': { description: 'cancelled' }, ...errors('UPLOAD_NOT_FOUND', 'UPLOAD_BUSY', ...ACCESS) },
    }),
  },
  '/v1/blobs/{digest}': {
    head: op({
      tags: ['uploads'],
      operationId: 'hasBlob',
      summary: 'Whether this content is stored (clients skip uploading it)',
      description: 'For a token limited to some models: 200 only for content it uploaded itself or that a live version it may read holds; other content is 404, as if it were not stored.',
      parameters: [pathParam('digest', 'sha256 of the raw bytes', ref('Digest'))],
      responses: {
        '200': { description: 'stored', headers: { 'Content-Length': { schema: { type: 'integer' }, description: 'its size' }, ETag: { schema: { type: 'string' } } } },
        ...errors('INVALID_DIGEST', 'BLOB_NOT_FOUND', ...ACCESS),
      },
    }),
  },
  '/v1/tokens': {
    get: op({ tags: ['tokens'], operationId: 'listTokens', summary: 'Active tokens (admin)', responses: { '200': { description: 'tokens, without secrets', content: json({ type: 'object', properties: { tokens: { type: 'array', items: ref('Token') } } }) }, ...errors('INVALID_ARGUMENT', ...ACCESS) } }),
    post: op({
      tags: ['tokens'],
      operationId: 'createToken',
      summary: 'Create a token (admin); the secret is in this answer only',
      requestBody: { required: true, content: json(ref('TokenRequest')) },
      responses: { '201': { description: 'created', headers: { Location: { schema: { type: 'string' } } }, content: json(ref('TokenCreated')) }, ...errors('TOKEN_EXISTS', ...JSON_BODY, ...ACCESS) },
    }),
  },
  '/v1/tokens/{name}': {
    delete: op({ tags: ['tokens'], operationId: 'revokeToken', summary: 'Revoke a token (admin)', parameters: [pathParam('name', 'token name')], responses: { '204': { description: 'revoked' }, ...errors('INVALID_ARGUMENT', 'TOKEN_NOT_FOUND', ...ACCESS) } }),
  },
  '/v1/webhooks': {
    get: op({ tags: ['webhooks'], operationId: 'listWebhooks', summary: 'Webhooks (admin)', responses: { '200': { description: 'hooks, without secrets', content: json({ type: 'object', properties: { webhooks: { type: 'array', items: ref('Webhook') } } }) }, ...errors(...ACCESS) } }),
    post: op({
      tags: ['webhooks'],
      operationId: 'createWebhook',
      summary: 'Create a webhook (admin): a signed POST per event from now on; the secret is in this answer only',
      description:
        'Each delivery is a JSON POST `{delivery, event, event_id, model, version, alias, actor, time, subject, message}` with `X-Cairn-Event`, `X-Cairn-Delivery` and `X-Cairn-Signature-256: sha256=<HMAC-SHA256 of the body with the secret>`. A 2xx answer delivers it; anything else is retried with exponential backoff, then marked failed. The URL must be, and resolve to, a public address (400 for loopback, private, link-local and the like, unless the server runs with CAIRN_WEBHOOK_ALLOW_PRIVATE=true); every delivery checks again after resolving the name and connects to the address checked.',
      requestBody: { required: true, content: json(ref('WebhookRequest')) },
      responses: { '201': { description: 'created', headers: { Location: { schema: { type: 'string' } } }, content: json(ref('WebhookCreated')) }, ...errors(...JSON_BODY, ...ACCESS) },
    }),
  },
  '/v1/webhooks/{id}': {
    get: op({ tags: ['webhooks'], operationId: 'getWebhook', summary: 'A webhook (admin)', parameters: [pathParam('id', 'webhook id')], responses: { '200': { description: 'the hook', content: json(ref('Webhook')) }, ...errors('WEBHOOK_NOT_FOUND', ...ACCESS) } }),
    delete: op({ tags: ['webhooks'], operationId: 'deleteWebhook', summary: 'Delete a webhook and its deliveries (admin)', parameters: [pathParam('id', 'webhook id')], responses: { '204': { description: 'deleted' }, ...errors('WEBHOOK_NOT_FOUND', ...ACCESS) } }),
  },
  '/v1/webhooks/{id}/deliveries': {
    get: op({
      tags: ['webhooks'],
      operationId: 'listWebhookDeliveries',
      summary: "A webhook's deliveries, newest first (admin)",
      parameters: [pathParam('id', 'webhook id'), LIMIT],
      responses: { '200': { description: 'deliveries', content: json({ type: 'object', properties: { deliveries: { type: 'array', items: ref('WebhookDelivery') } } }) }, ...errors('INVALID_ARGUMENT', 'WEBHOOK_NOT_FOUND', ...ACCESS) },
    }),
  },
  '/v1/webhooks/{id}/ping': {
    post: op({
      tags: ['webhooks'],
      operationId: 'pingWebhook',
      summary: 'Sends a signed `ping` event to a webhook now and answers with what the receiver said (admin)',
      description: 'Outside the delivery log: nothing is recorded or retried. The body is `{delivery: null, event: "ping", webhook, time}`, signed like every delivery. A URL that resolves to a non-public address (see createWebhook) is refused without a connection: `delivered: false` with the reason.',
      parameters: [pathParam('id', 'webhook id')],
      responses: {
        '200': {
          description: 'the receiver answered, or did not',
          content: json({ type: 'object', properties: { delivered: { type: 'boolean', description: 'a 2xx answer' }, status: { type: ['integer', 'null'] }, error: { type: ['string', 'null'] } } }),
        },
        ...errors('WEBHOOK_NOT_FOUND', ...ACCESS),
      },
    }),
  },
  '/v1/webhooks/{id}/redeliver': {
    post: op({
      tags: ['webhooks'],
      operationId: 'redeliverWebhook',
      summary: "Sends a webhook's pending and failed deliveries now (admin)",
      parameters: [pathParam('id', 'webhook id')],
      responses: { '200': { description: 'how many were requeued, and the newest deliveries after trying', content: json({ type: 'object', properties: { requeued: { type: 'integer' }, deliveries: { type: 'array', items: ref('WebhookDelivery') } } }) }, ...errors('WEBHOOK_NOT_FOUND', ...ACCESS) },
    }),
  },
  '/v1/admin/verify': {
    post: op({
      tags: ['maintenance'],
      operationId: 'verify',
      summary: 'Check every live file (admin); answers when done',
      requestBody: { required: false, content: json({ type: 'object', properties: { quick: { type: 'boolean', description: 'check records and object presence only, read no bytes' } } }) },
      responses: { '200': { description: 'the report, whether or not problems were found (`ok`)', content: json(ref('VerifyReport')) }, ...errors('ROUTE_NOT_FOUND', ...JSON_BODY, ...ACCESS, 'STORAGE_UNAVAILABLE') },
    }),
  },
  '/v1/admin/gc': {
    post: op({
      tags: ['maintenance'],
      operationId: 'gc',
      summary: 'Garbage-collect unreferenced chunks, orphan objects and stale uploads (admin)',
      requestBody: { required: false, content: json({ type: 'object', properties: { dry_run: { type: 'boolean' }, grace_seconds: { type: 'number', minimum: 0 }, upload_ttl_seconds: { type: 'number', minimum: 0 } } }) },
      responses: { '200': { description: 'what went (or would go)', content: json(ref('GcReport')) }, ...errors('ROUTE_NOT_FOUND', ...JSON_BODY, ...ACCESS, 'STORAGE_UNAVAILABLE') },
    }),
  },
  '/git/lineage.git/{rest}': { get: gitOperation('get'), post: gitOperation('post') },
  '/hf/api/models/{name}': { get: hubInfo('hubModelInfo', false) },
  '/hf/api/models/{name}/revision/{revision}': { get: hubInfo('hubModelInfoAtRevision', true) },
  '/hf/api/models/{name}/tree/{revision}': { get: hubTree('hubTree', false) },
  '/hf/api/models/{name}/tree/{revision}/{path}': { get: hubTree('hubTreeAt', true) },
  '/hf/{name}/resolve/{revision}/{path}': {
    get: op({
      tags: ['hugging-face'],
      operationId: 'hubResolve',
      summary: "A file's bytes, as the Hugging Face Hub serves them (HEAD: headers only)",
      description: 'What `hf_hub_download` and `@huggingface/hub` fetch. Every chunk is verified, as for getFile.',
      parameters: [NAME, HUB_REVISION, pathParam('path', 'the path inside the version; may contain `/`'), headerParam('Range', 'one byte range')],
      responses: {
        '200': { description: 'the whole file', headers: hubFileHeaders, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        '206': { description: 'the requested range', headers: { ...hubFileHeaders, 'Content-Range': { schema: { type: 'string' } } }, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        ...errors(...REF, 'FILE_NOT_FOUND', 'RANGE_NOT_SATISFIABLE', 'COMMIT_PENDING', ...ACCESS, ...STORAGE),
      },
    }),
  },
  '/': { get: webPage('webRoot', 'The web UI (static HTML; it calls the API with the token the user enters)') },
  '/ui': { get: op({ tags: ['web'], operationId: 'webRedirect', summary: 'Redirects to /ui/', security: OPEN, responses: { '301': { description: 'to /ui/', headers: { Location: { schema: { type: 'string' } } } } } }) },
  '/ui/': { get: webPage('webIndex', 'The web UI (same page as /)') },
  '/ui/{rest}': {
    get: op({
      tags: ['web'],
      operationId: 'webAsset',
      summary: "The web UI's script and styles",
      security: OPEN,
      parameters: [pathParam('rest', 'a file of the UI, e.g. `app.js`, `style.css`')],
      responses: { '200': { description: 'the file', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } }, ...errors('ROUTE_NOT_FOUND') },
    }),
  },
};

export const OPENAPI_DOCUMENT: Json = {
  openapi: '3.1.0',
  info: {
    title: 'Cairn',
    version: '0.1.0',
    summary: 'Self-hosted, versioned model registry',
    description:
      'Models are named series of immutable versions; a version is a set of files. Errors are always `{"error":{"code","message"}}`; each operation lists its codes (`x-error-codes`). Every response carries `X-Request-Id`. A token goes in `Authorization: Bearer <token>`.',
  },
  servers: [{ url: '/' }],
  tags: ['models', 'versions', 'aliases', 'lineage', 'uploads', 'tokens', 'maintenance', 'operations', 'webhooks', 'hugging-face', 'web'].map((name) => ({ name })),
  security: SECURED,
  paths,
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'a Cairn token (`cairn token create`); git clients send it as the Basic password' },
    },
    schemas,
  },
};
