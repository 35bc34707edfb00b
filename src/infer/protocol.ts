// What the two wire protocols (tf-serving.ts, oip.ts) share: the request as
// the server hands it over (body read, size-checked), the reply they give
// back, and how a URL path names a served model — names may hold a '/'
// (`acme/resnet`), so the served names are matched, longest first.
import type { IncomingHttpHeaders } from 'node:http';
import { ServingError, type ServedModel, type ServedVersion, type VersionSelector } from './served-model.ts';
import { TensorInputError } from './tensors.ts';

export interface InferRequest {
  id: string;
  method: string;
  /** the URL path, not decoded */
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface InferReply {
  status: number;
  body: string | Buffer | Array<string | Uint8Array>;
  headers?: Record<string, string>;
  /** for the log and the metrics: the model and version that served it, if any */
  model?: string;
  version?: string;
  protocol?: 'tfserving' | 'oip';
}

export type ModelSet = ReadonlyMap<string, ServedModel>;

/** `{"error": "…"}`, the error body of both protocols. */
export function errorReply(status: number, message: string, extra: Partial<InferReply> = {}): InferReply {
  return { status, body: JSON.stringify({ error: message }), headers: { 'content-type': 'application/json' }, ...extra };
}

export function jsonReply(status: number, body: unknown, extra: Partial<InferReply> = {}): InferReply {
  return { status, body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...extra };
}

/**
 * The served model a path starts with (`<name>` then the end or a '/' or
 * ':'), and what follows it. Each segment is percent-decoded.
 */
export function matchModel(models: ModelSet, rest: string): { model: ServedModel; after: string } | { unknown: string } {
  let decoded: string;
  try {
    decoded = rest
      .split('/')
      .map((s) => decodeURIComponent(s))
      .join('/');
  } catch {
    decoded = rest;
  }
  let best: ServedModel | undefined;
  for (const [name, model] of models) {
    if (!decoded.startsWith(name)) continue;
    const next = decoded.charAt(name.length);
    if ((next === '' || next === '/' || next === ':') && (!best || name.length > best.name.length)) best = model;
  }
  if (!best) return { unknown: decoded.split(/[/:]/)[0] ?? decoded };
  return { model: best, after: decoded.slice(best.name.length) };
}

/** The HTTP status of each kind of serving failure, in both protocols (TF Serving: NOT_FOUND 404, INVALID_ARGUMENT 400, UNAVAILABLE 503). */
const STATUS_OF: Record<ServingError['kind'], number> = { invalid: 400, not_found: 404, unavailable: 503, internal: 500 };

/** A 400 for bad tensors, the kind's status for a serving failure; anything else is thrown on. */
export function failureReply(err: unknown, extra: Partial<InferReply>): InferReply {
  if (err instanceof TensorInputError) return errorReply(400, err.message, extra);
  if (err instanceof ServingError) return errorReply(STATUS_OF[err.kind], err.message, extra);
  throw err;
}

/**
 * Runs `fn` on the version `selector` picks, held for the call (a label
 * moving meanwhile does not release it); failures become error replies.
 */
export async function withVersion(model: ServedModel, selector: VersionSelector, extra: Partial<InferReply>, fn: (entry: ServedVersion) => Promise<InferReply> | InferReply): Promise<InferReply> {
  let entry: ServedVersion;
  try {
    entry = model.acquire(selector);
  } catch (err) {
    return failureReply(err, extra);
  }
  extra.version = entry.version;
  try {
    return await fn(entry);
  } catch (err) {
    return failureReply(err, extra);
  } finally {
    model.done(entry);
  }
}

