// A small typed client for Cairn's HTTP API (DESIGN "HTTP API"), on Node's
// global fetch. It depends on the wire contract only (src/api/), never on server code.
// Bodies stream both ways: uploads take an AsyncIterable, downloads return a
// Readable; nothing here holds a whole file in memory.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type {
  AliasSet,
  BlobDoc,
  ChunkMap,
  DeliveryList,
  DeriveRequest,
  GcReport,
  History,
  LineageGraph,
  ModelDoc,
  ModelList,
  ModelPatch,
  ModelSummary,
  PingResult,
  PublishRequest,
  RedeliverResult,
  TokenCreated,
  TokenList,
  TokenRequest,
  UploadDoc,
  MissingChunks,
  StagingUrls,
  VerifyReport,
  VersionDiff,
  VersionDoc,
  VersionList,
  VersionSummary,
  HistoryEntry,
  JobDoc,
  WebhookCreated,
  WebhookList,
  WebhookRequest,
} from './api/index.ts';

export const DEFAULT_URL = 'http://127.0.0.1:7070';

export interface ModelFilter {
  /** text in the name or description */
  q?: string;
  /** only the models of this namespace (`acme`: `acme/resnet`) */
  namespace?: string;
  /** models with a version holding a file of this format (onnx, safetensors, gguf, …) */
  format?: string;
  framework?: string;
  /** true: models with an unsafe version; false: models without one */
  unsafe?: boolean;
}

export interface PageQuery {
  limit?: number;
  cursor?: string;
}

// ---- errors -----------------------------------------------------------------

/** Code of a ClientError raised when the server could not be reached or the connection broke. */
export const NETWORK_ERROR = 'NETWORK_ERROR';
/** Code of a ClientError raised when the connection was refused or the host is unknown. */
export const CONNECTION_FAILED = 'CONNECTION_FAILED';

/**
 * A failed call: `status` is the HTTP status (0 when no answer arrived),
 * `code` and `message` come from the server's `{"error":{…}}` body.
 */
export class ClientError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** No HTTP answer: refused, reset, timed out. Worth retrying for idempotent steps. */
  get isNetwork(): boolean {
    return this.status === 0;
  }

  /** The `{"error":{…}}` document, as the server sends it. */
  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

const CAUSE_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for the answer',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the answer',
};

function causeOf(err: unknown): { code?: string; message: string } {
  let e: unknown = err;
  // fetch wraps the real reason: TypeError('fetch failed', { cause })
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  const cause = e as { code?: unknown; message?: unknown; errors?: unknown };
  // happy-eyeballs connects fail with an AggregateError of per-address errors
  if (Array.isArray(cause?.errors) && cause.errors[0]) return causeOf(cause.errors[0]);
  return {
    code: typeof cause?.code === 'string' ? cause.code : undefined,
    message: typeof cause?.message === 'string' ? cause.message : String(e),
  };
}

// ---- client -----------------------------------------------------------------

export interface ClientOptions {
  /** server base URL, e.g. http://127.0.0.1:7070 */
  url?: string;
  /** sent as `Authorization: Bearer <token>` */
  token?: string;
  userAgent?: string;
  fetch?: typeof fetch;
}

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: AsyncIterable<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** statuses that are not errors besides 2xx */
  allow?: number[];
}

function seg(value: string): string {
  return encodeURIComponent(value);
}

/** A file path inside a version, each segment encoded, '/' kept. */
export function encodeFilePath(path: string): string {
  return path.split('/').map(seg).join('/');
}

/** A model name in a path, the same way: `acme/resnet` keeps its '/' (the server reads one segment or two; README "Namespaces"). */
const modelSeg = encodeFilePath;

export class CairnClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly userAgent: string;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions = {}) {
    const url = options.url ?? DEFAULT_URL;
    const parsed = new URL(url); // throws on garbage
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`server URL must be http:// or https://, got ${url}`);
    }
    this.url = url.replace(/\/+$/, '');
    this.token = options.token || undefined;
    this.userAgent = options.userAgent ?? 'cairn-client';
    this.fetchImpl = options.fetch ?? fetch;
  }

  // ---- plumbing ---------------------------------------------------------

  private async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    let target = `${this.url}${path}`;
    if (options.query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(options.query)) if (v !== undefined && v !== '') params.set(k, String(v));
      const qs = params.toString();
      if (qs) target += `?${qs}`;
    }
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': this.userAgent, ...options.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: options.signal };
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      // undici streams an async iterable (the DOM typing does not know it)
      init.body = options.body as unknown as ReadableStream<Uint8Array>;
      init.duplex = 'half';
    }
    let res: Response;
    try {
      res = await this.fetchImpl(target, init);
    } catch (err) {
      throw this.networkError(err, method, path);
    }
    if (!res.ok && !options.allow?.includes(res.status)) throw await errorFrom(res, method);
    return res;
  }

  private networkError(err: unknown, method: string, path: string): ClientError {
    if (err instanceof Error && err.name === 'AbortError') {
      return new ClientError(0, 'ABORTED', `${method} ${path} was aborted`, {}, { cause: err });
    }
    const cause = causeOf(err);
    const why = (cause.code && CAUSE_TEXT[cause.code]) ?? cause.message;
    if (cause.code === 'ECONNREFUSED' || cause.code === 'ENOTFOUND' || cause.code === 'EAI_AGAIN' || cause.code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new ClientError(0, CONNECTION_FAILED, `cannot connect to the Cairn server at ${this.url}: ${why}; is it running? (set CAIRN_URL or --url)`, {}, { cause: err });
    }
    return new ClientError(0, NETWORK_ERROR, `${method} ${this.url}${path} failed: ${why}`, {}, { cause: err });
  }

  private async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, options);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw new ClientError(res.status, 'INVALID_RESPONSE', `${method} ${path}: the server's answer is not JSON`, {}, { cause: err });
    }
  }

  private async empty(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const res = await this.request(method, path, options);
    await res.body?.cancel();
    return res;
  }

  // ---- models and versions ----------------------------------------------

  listModels(query: PageQuery & ModelFilter = {}): Promise<ModelList> {
    const { q, namespace, format, framework, unsafe, limit, cursor } = query;
    return this.json('GET', '/v1/models', {
      query: { q, namespace, format, framework, unsafe: unsafe === undefined ? undefined : String(unsafe), limit, cursor },
    });
  }

  /** Every model matching `q`, following `next_cursor`. */
  async *allModels(query: ModelFilter & { pageSize?: number } = {}): AsyncGenerator<ModelSummary> {
    const { pageSize, ...filter } = query;
    let cursor: string | undefined;
    do {
      const page = await this.listModels({ ...filter, limit: pageSize, cursor });
      yield* page.models;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  getModel(name: string): Promise<ModelDoc> {
    return this.json('GET', `/v1/models/${modelSeg(name)}`);
  }

  /** Sets a model's description and/or card. */
  describeModel(name: string, patch: ModelPatch): Promise<ModelDoc> {
    return this.json('PATCH', `/v1/models/${modelSeg(name)}`, { json: patch });
  }

  listVersions(name: string, query: PageQuery = {}): Promise<VersionList> {
    return this.json('GET', `/v1/models/${modelSeg(name)}/versions`, { query: { limit: query.limit, cursor: query.cursor } });
  }

  /** Every version of a model, newest first, following `next_cursor`. */
  async *allVersions(name: string, query: { pageSize?: number } = {}): AsyncGenerator<VersionSummary> {
    let cursor: string | undefined;
    do {
      const page = await this.listVersions(name, { limit: query.pageSize, cursor });
      yield* page.versions;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  history(name: string, query: PageQuery = {}): Promise<History> {
    return this.json('GET', `/v1/models/${modelSeg(name)}/history`, { query: { limit: query.limit, cursor: query.cursor } });
  }

  /** A model's whole history, newest first, following `next_cursor`. */
  async *allHistory(name: string, query: { pageSize?: number } = {}): AsyncGenerator<HistoryEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.history(name, { limit: query.pageSize, cursor });
      yield* page.events;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  lineage(name: string, ref: string): Promise<LineageGraph> {
    return this.json('GET', `/v1/models/${modelSeg(name)}/versions/${seg(ref)}/lineage`);
  }

  /** `to` against `from` (`<ref>` of the same model, or `<name>@<ref>`). */
  diff(name: string, ref: string, from: string): Promise<VersionDiff> {
    return this.json('GET', `/v1/models/${modelSeg(name)}/versions/${seg(ref)}/diff?from=${encodeURIComponent(from)}`);
  }

  getVersion(name: string, ref: string): Promise<VersionDoc> {
    return this.json('GET', `/v1/models/${modelSeg(name)}/versions/${seg(ref)}`);
  }

  /** Publishes a version from blobs uploaded before (application/json form). */
  publish(name: string, body: PublishRequest): Promise<VersionDoc> {
    return this.json('POST', `/v1/models/${modelSeg(name)}/versions`, { json: body });
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    await this.empty('DELETE', `/v1/models/${modelSeg(name)}/versions/${seg(version)}`);
  }

  setAlias(name: string, alias: string, version: string): Promise<AliasSet> {
    return this.json('PUT', `/v1/models/${modelSeg(name)}/aliases/${seg(alias)}`, { json: { version } });
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.empty('DELETE', `/v1/models/${modelSeg(name)}/aliases/${seg(alias)}`);
  }

  /**
   * One file's bytes as a stream. `ref` is best a manifest digest, so that
   * every file of a pull comes from the same version.
   */
  async getFile(
    name: string,
    ref: string,
    path: string,
    options: { range?: { start: number; end?: number }; signal?: AbortSignal } = {},
  ): Promise<{ status: number; stream: Readable; length: number | undefined; digest: string | undefined }> {
    const headers: Record<string, string> = { Accept: 'application/octet-stream' };
    if (options.range) headers.Range = `bytes=${options.range.start}-${options.range.end ?? ''}`;
    const res = await this.request('GET', `/v1/models/${modelSeg(name)}/versions/${seg(ref)}/files/${encodeFilePath(path)}`, {
      headers,
      signal: options.signal,
    });
    const length = res.headers.get('content-length');
    const etag = res.headers.get('etag')?.replace(/^W\//, '').replace(/"/g, '');
    return {
      status: res.status,
      stream: res.body ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) : Readable.from([]),
      length: length === null ? undefined : Number(length),
      digest: res.headers.get('x-content-digest') ?? etag ?? undefined,
    };
  }

  /**
   * A file's chunk map with presigned storage URLs (S3 storage only; 409
   * DIRECT_UNAVAILABLE otherwise): `range` is inclusive, absent the whole file.
   */
  chunkMap(name: string, ref: string, path: string, range?: { start: number; end?: number }): Promise<ChunkMap> {
    return this.json('GET', `/v1/models/${modelSeg(name)}/versions/${seg(ref)}/files/${encodeFilePath(path)}/chunks`, {
      query: { range: range ? `${range.start}-${range.end ?? ''}` : undefined },
    });
  }

  // ---- derived versions -------------------------------------------------------

  /** Asks for a derived version of `name@ref`: the job making it (`status` 202), or the one that made it before (200). */
  async derive(name: string, ref: string, body: DeriveRequest): Promise<{ status: number; job: JobDoc }> {
    const res = await this.request('POST', `/v1/models/${modelSeg(name)}/versions/${seg(ref)}/derive`, { json: body });
    return { status: res.status, job: (await res.json()) as JobDoc };
  }

  getJob(id: string): Promise<JobDoc> {
    return this.json('GET', `/v1/jobs/${seg(id)}`);
  }

  // ---- blobs and resumable uploads ----------------------------------------

  /** Whether the server already stores content with this digest (`HEAD /v1/blobs/{digest}`). */
  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.empty('HEAD', `/v1/blobs/${seg(digest)}`, { allow: [404] });
    return res.status === 200;
  }

  createUpload(): Promise<UploadDoc> {
    return this.json('POST', '/v1/uploads');
  }

  /** The session and its offset: the number of bytes the server holds. */
  getUpload(id: string): Promise<UploadDoc> {
    return this.json('GET', `/v1/uploads/${seg(id)}`);
  }

  /**
   * Appends bytes `start..end` (inclusive) to a session. A request cut off
   * midway still leaves every byte the server received stored: re-read the
   * offset with getUpload and go on from there.
   */
  patchUpload(id: string, start: number, end: number, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<UploadDoc> {
    return this.json('PATCH', `/v1/uploads/${seg(id)}`, {
      body,
      signal,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${start}-${end}/*` },
    });
  }

  /** Ends a session: the server checks the digest of everything received (`400 DIGEST_MISMATCH`). */
  finishUpload(id: string, digest: string): Promise<BlobDoc> {
    return this.json('PUT', `/v1/uploads/${seg(id)}`, { query: { digest } });
  }

  // A direct push (README "Direct transfers"): missing chunks, presigned PUTs, chunks appended by digest.
  missingChunks(digests: string[]): Promise<MissingChunks> {
    return this.json('POST', '/v1/chunks/missing', { json: { digests } });
  }
  stageChunks(id: string, chunks: Array<{ digest: string; stored_size: number }>): Promise<StagingUrls> {
    return this.json('POST', `/v1/uploads/${seg(id)}/staging`, { json: { chunks } });
  }
  appendChunks(id: string, offset: number, chunks: Array<{ digest: string; size: number }>): Promise<UploadDoc> {
    return this.json('POST', `/v1/uploads/${seg(id)}/chunks`, { json: { offset, chunks } });
  }

  async cancelUpload(id: string): Promise<void> {
    await this.empty('DELETE', `/v1/uploads/${seg(id)}`);
  }

  // ---- maintenance (admin) ----------------------------------------------

  /** Checks every chunk of every live version (`quick`: presence only). Answers when done. */
  verify(options: { quick?: boolean } = {}): Promise<VerifyReport> {
    return this.json('POST', '/v1/admin/verify', { json: { quick: options.quick === true } });
  }

  /** Garbage collection; with `dryRun` it only reports what would go. Answers when done. */
  gc(options: { dryRun?: boolean; graceSeconds?: number; uploadTtlSeconds?: number } = {}): Promise<GcReport> {
    return this.json('POST', '/v1/admin/gc', {
      json: { dry_run: options.dryRun === true, grace_seconds: options.graceSeconds, upload_ttl_seconds: options.uploadTtlSeconds },
    });
  }

  // ---- tokens (admin) -----------------------------------------------------

  /** Creates a token; `token` (the secret) is in this answer only. */
  createToken(body: TokenRequest): Promise<TokenCreated> {
    return this.json('POST', '/v1/tokens', { json: body });
  }

  listTokens(): Promise<TokenList> {
    return this.json('GET', '/v1/tokens');
  }

  async revokeToken(name: string): Promise<void> {
    await this.empty('DELETE', `/v1/tokens/${seg(name)}`);
  }

  // ---- webhooks (admin) ---------------------------------------------------

  /** Creates a webhook; `secret` (the signing key) is in this answer only. */
  createWebhook(body: WebhookRequest): Promise<WebhookCreated> {
    return this.json('POST', '/v1/webhooks', { json: body });
  }

  listWebhooks(): Promise<WebhookList> {
    return this.json('GET', '/v1/webhooks');
  }

  async deleteWebhook(id: number): Promise<void> {
    await this.empty('DELETE', `/v1/webhooks/${id}`);
  }

  webhookDeliveries(id: number, limit?: number): Promise<DeliveryList> {
    return this.json('GET', `/v1/webhooks/${id}/deliveries${limit ? `?limit=${limit}` : ''}`);
  }

  pingWebhook(id: number): Promise<PingResult> {
    return this.json('POST', `/v1/webhooks/${id}/ping`);
  }

  redeliverWebhook(id: number): Promise<RedeliverResult> {
    return this.json('POST', `/v1/webhooks/${id}/redeliver`);
  }
}

async function errorFrom(res: Response, method: string): Promise<ClientError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // the body is only for the message
  }
  try {
    const doc = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const e = doc.error;
    if (e && typeof e.code === 'string') {
      const { code, message, ...details } = e as Record<string, unknown>;
      return new ClientError(res.status, code as string, typeof message === 'string' ? message : `${res.status} ${res.statusText}`, details);
    }
  } catch {
    // not JSON: a proxy, or a HEAD without a body
  }
  const snippet = text.trim().slice(0, 200);
  let where = '';
  try {
    where = ` ${new URL(res.url).pathname}`;
  } catch {
    // no URL on a synthetic response
  }
  return new ClientError(res.status, `HTTP_${res.status}`, `${method}${where}: ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}`);
}
