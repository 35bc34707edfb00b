// Answering with a stored file's bytes, the one way every front door does it:
// ETag and If-None-Match (304), Range and If-Range (206, 416), HEAD, then the
// verified stream — a failure after the headers cuts the connection.
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { FileDoc } from '../api/index.ts';
import type { Logger } from '../log.ts';
import type { Versions } from '../registry/versions.ts';
import { answerRange } from './ranges.ts';
import { markPull } from './request-log.ts';

export function contentDisposition(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/** Streams a body to the client; a failure after the headers cuts the connection. */
export async function send(res: Response, body: NodeJS.ReadableStream, log: Logger, what: string): Promise<void> {
  try {
    await pipeline(body, res);
  } catch (err) {
    if (!res.writableFinished) {
      log.warn('response cut', { what, error: (err as Error).message });
      res.destroy();
    }
  }
}

export interface FileAnswer {
  /** the version it belongs to (counted as a pull once a GET completes with 200 or 206) */
  version: { name: string; version: string };
  file: FileDoc;
  /** the ETag, quoted */
  etag: string;
  /** more headers of the front door */
  headers?: Record<string, string>;
}

export async function sendFile(req: Request, res: Response, { version, file, etag, headers }: FileAnswer, ctx: { versions: Versions; log: Logger }): Promise<void> {
  markPull(res, version.name, version.version);
  res.set({
    ...headers,
    ETag: etag,
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': contentDisposition(file.path),
    'X-Content-Digest': file.digest,
  });
  const ifNoneMatch = req.headers['if-none-match']?.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (ifNoneMatch?.includes('*') || ifNoneMatch?.includes(etag)) {
    res.status(304).end();
    return;
  }
  const ifRange = req.headers['if-range'];
  const { range, length } = answerRange(res, ifRange && ifRange !== etag ? undefined : req.headers.range, file.size);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const opened = await ctx.versions.open(file, range);
  await send(res, opened.stream, ctx.log, `${version.name}@${version.version}/${file.path}`);
}
