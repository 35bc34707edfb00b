// The inference server's HTTP front: plain node:http (the protocols' paths —
// `name:predict`, model names holding a '/' — are matched by hand, and a
// request passes through nothing it does not need). Every body is read
// whole, up to a limit (413 past it), then handed to TF Serving's API
// (/v1/models/…), the Open Inference Protocol (/v2…) or the server's own
// endpoints: /healthz, /readyz, /metrics, /status and the registry's
// webhook. One JSON log line and one metrics sample per request; a failure
// in a handler is a 500 with an error body, never a crash.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { InferMetrics } from './metrics.ts';
import { handleOip } from './oip.ts';
import { errorReply, jsonReply, type InferReply, type InferRequest, type ModelSet } from './protocol.ts';
import { handleTfServing } from './tf-serving.ts';

export const WEBHOOK_PATH = '/webhooks/cairn';
const WEBHOOK_MAX_BYTES = 64 * 1024;

export interface ServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  models: ModelSet;
  metrics: InferMetrics;
  log: Logger;
  /** the server's version, for GET /v2 */
  version: string;
  /** checks X-Cairn-Signature-256 on webhook deliveries when set */
  webhookSecret: () => string | undefined;
  /** a registry event for `model` (undefined: a ping, or a model not served) */
  onWebhook: (event: { event: string; model?: string }) => void;
}

export interface RunningInferServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

class BodyTooLarge extends Error {
  constructor(
    message: string,
    /** the body was not read: the connection closes after the answer rather than read it all */
    readonly unread: boolean,
  ) {
    super(message);
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge(`the request body is ${declared} bytes; this server takes at most ${limit} (--max-body-bytes)`, true));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        // the 413 goes out while the rest streams in and is dropped (Node reads a request's
        // body to its end after the response): clients that send before they read get it
        req.off('data', onData);
        chunks.length = 0;
        req.resume();
        reject(new BodyTooLarge(`the request body is over ${limit} bytes, the most this server takes (--max-body-bytes)`, false));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

function statusDoc(models: ModelSet): unknown {
  return {
    ready: [...models.values()].every((m) => m.ready),
    models: [...models.values()].map((m) => ({
      name: m.name,
      ready: m.ready,
      default_label: m.defaultLabel,
      labels: Object.fromEntries([...m.wantedLabels()].map(([label, wanted]) => {
        const served = m.servedLabels().get(label);
        return [label, { wanted, serving: served?.version ?? null, number: served?.number ?? null }];
      })),
      versions: m.statuses().map((e) => ({
        version: e.version,
        number: e.number,
        digest: e.digest || null,
        state: e.state,
        error_code: e.errorCode,
        error: e.error || null,
        unsupported: e.unsupported,
        file: e.file || null,
        batching: e.batcher !== undefined,
        in_flight: e.inflight,
        warmup: e.warmup || null,
        loaded_at: e.loadedAt?.toISOString() ?? null,
        inputs: e.signature?.inputs ?? null,
        outputs: e.signature?.outputs ?? null,
      })),
      last_refresh: m.lastRefresh ? { at: m.lastRefresh.at.toISOString(), error: m.lastRefresh.error ?? null } : null,
    })),
  };
}

function webhook(req: InferRequest, options: ServerOptions): InferReply {
  if (req.method !== 'POST') return errorReply(405, 'webhook deliveries are POSTs');
  const secret = options.webhookSecret();
  if (secret) {
    const given = String(req.headers['x-cairn-signature-256'] ?? '');
    const expected = `sha256=${createHmac('sha256', secret).update(req.body).digest('hex')}`;
    if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
      return errorReply(401, 'X-Cairn-Signature-256 does not match the body');
    }
  }
  let doc: { event?: unknown; model?: unknown };
  try {
    doc = JSON.parse(req.body.toString('utf8')) as typeof doc;
  } catch {
    return errorReply(400, 'the delivery is not JSON');
  }
  const event = typeof doc.event === 'string' ? doc.event : 'unknown';
  const model = typeof doc.model === 'string' && options.models.has(doc.model) ? doc.model : undefined;
  options.onWebhook({ event, model });
  return jsonReply(200, { ok: true, refreshed: model ?? null });
}

async function route(req: InferRequest, options: ServerOptions): Promise<InferReply> {
  const { models, metrics } = options;
  const path = req.path;
  if (path === '/healthz') return jsonReply(200, { ok: true });
  if (path === '/readyz') {
    const notReady = [...models.values()].filter((m) => !m.ready).map((m) => m.name);
    return jsonReply(notReady.length ? 503 : 200, { ready: notReady.length === 0, not_ready: notReady });
  }
  if (path === '/metrics') {
    const loaded = new Map([...models.values()].map((m) => [m.name, m.statuses().filter((e) => e.state === 'AVAILABLE' || e.state === 'UNLOADING').length]));
    const inflight = [...models.values()].reduce((n, m) => n + m.statuses().reduce((k, e) => k + e.inflight, 0), 0);
    return { status: 200, body: metrics.render({ loaded, inflight }), headers: { 'content-type': 'text/plain; version=0.0.4' } };
  }
  if (path === '/status') return jsonReply(200, statusDoc(models));
  if (path === WEBHOOK_PATH) return webhook(req, options);
  return (
    (await handleTfServing(models, req)) ??
    (await handleOip(models, req, options.version)) ??
    errorReply(404, `no such endpoint: ${req.method} ${path} (TF Serving: /v1/models/…, Open Inference Protocol: /v2/…)`)
  );
}

export async function startHttpServer(options: ServerOptions): Promise<RunningInferServer> {
  const { log, metrics } = options;
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    const path = (req.url ?? '/').split('?')[0]!;
    let bytesIn = 0;
    const limit = path === WEBHOOK_PATH ? WEBHOOK_MAX_BYTES : options.maxBodyBytes;
    const handle = async (): Promise<InferReply> => {
      let body: Buffer;
      try {
        body = await readBody(req, limit);
      } catch (err) {
        if (err instanceof BodyTooLarge) return errorReply(413, err.message, err.unread ? { headers: { 'content-type': 'application/json', connection: 'close' } } : {});
        throw err;
      }
      bytesIn = body.byteLength;
      return route({ id, method: req.method ?? 'GET', path, headers: req.headers, body }, options);
    };
    handle()
      .catch((err: unknown) => {
        log.error('request failed', { request_id: id, path, error: (err as Error).stack ?? String(err) });
        return errorReply(500, `internal error (request ${id}): ${(err as Error).message}`);
      })
      .then((reply) => {
        const pieces = Array.isArray(reply.body) ? reply.body : [reply.body];
        const bytesOut = pieces.reduce((n, p) => n + Buffer.byteLength(p), 0);
        const headers: Record<string, string | number> = { ...reply.headers, 'content-length': bytesOut, 'x-request-id': id };
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(reply.status, headers);
          for (const p of pieces.slice(0, -1)) res.write(p);
          res.end(pieces[pieces.length - 1]);
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (reply.protocol && reply.model && req.method === 'POST') {
          metrics.request({ model: reply.model, version: reply.version ?? '', protocol: reply.protocol, status: reply.status, seconds });
        }
        log.info('request', {
          request_id: id,
          method: req.method,
          path,
          status: reply.status,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
          bytes_in: bytesIn,
          bytes_out: bytesOut,
          ...(reply.model ? { model: reply.model } : {}),
          ...(reply.version ? { version: reply.version } : {}),
          ...(reply.protocol ? { protocol: reply.protocol } : {}),
        });
      })
      .catch((err: unknown) => log.error('response failed', { request_id: id, error: (err as Error).message }));
  });
  server.on('clientError', (err, socket) => {
    // a malformed request line or headers: answer if the socket still can, never throw
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n{"error":"malformed HTTP request"}');
    else socket.destroy(err);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
