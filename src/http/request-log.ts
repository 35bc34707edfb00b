// One structured log line and one metrics sample per request, written when
// the response ends (or the connection closes first). Bytes are counted as
// they pass: request body bytes as the HTTP parser hands them to the request
// stream, response body bytes as the route writes them.
import type { Request, RequestHandler, Response } from 'express';
import { actorOf } from './actor.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

const ROUTE = Symbol('cairn.route');

/**
 * The route that took a request says which it was, as declared in the route
 * table (`/v1/models/:name/versions/:ref/files/*path`): a bounded label,
 * `unmatched` when none did. (Not req.route: a model route is registered in
 * two forms, one or two segments for the name — see ./route.ts.)
 */
export function markRoute(res: Response, pattern: string): void {
  (res as Response & { [ROUTE]?: string })[ROUTE] = pattern;
}

const PULL = Symbol('cairn.pull');

/** Routes that serve a version's bytes say which version it was (resolved, not the ref). */
export function markPull(res: Response, model: string, version: string): void {
  (res as Response & { [PULL]?: { model: string; version: string } })[PULL] = { model, version };
}

function byteLength(chunk: unknown, encoding?: unknown): number {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return 0;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  return 0;
}

export function requestLog({ log, metrics }: { log: Logger; metrics: Metrics }): RequestHandler {
  return function cairnRequestLog(req: Request, res: Response, next) {
    const started = process.hrtime.bigint();
    const path = req.path; // before any router rewrites req.url
    // bytes already buffered when this runs, then each piece the parser pushes
    let bytesIn = req.readableLength;
    const push = req.push;
    req.push = function countedPush(chunk: unknown, encoding?: BufferEncoding) {
      bytesIn += byteLength(chunk, encoding);
      return push.call(this, chunk, encoding);
    };
    let bytesOut = 0;
    const write = res.write;
    const end = res.end;
    res.write = function countedWrite(this: Response, chunk: unknown, ...rest: unknown[]) {
      if (req.method !== 'HEAD') bytesOut += byteLength(chunk, rest[0]);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as Response['write'];
    res.end = function countedEnd(this: Response, chunk?: unknown, ...rest: unknown[]) {
      if (req.method !== 'HEAD') bytesOut += byteLength(chunk, rest[0]);
      return (end as (...a: unknown[]) => Response).call(this, chunk, ...rest);
    } as Response['end'];

    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (res as Response & { [ROUTE]?: string })[ROUTE] ?? 'unmatched';
      // a response cut short (client gone, stream failed) is recorded as such
      const complete = res.writableFinished;
      const status = res.statusCode;
      metrics.recordRequest({ method: req.method, route, status, seconds, bytesIn, bytesOut });
      const pull = (res as Response & { [PULL]?: { model: string; version: string } })[PULL];
      if (pull && complete && req.method === 'GET' && (status === 200 || status === 206)) metrics.recordPull(pull.model, pull.version);
      log.info('request', {
        request_id: (req as Request & { id?: string }).id,
        method: req.method,
        route,
        path,
        status,
        duration_ms: Math.round(seconds * 1e6) / 1e3,
        bytes_in: bytesIn,
        bytes_out: bytesOut,
        actor: actorOf(req),
        ...(complete ? {} : { aborted: true }),
      });
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };
}
