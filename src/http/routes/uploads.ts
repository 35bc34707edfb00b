// Resumable upload sessions and blob presence.
import type { Express, Request, Response } from 'express';
import { CairnError } from '../../errors.ts';
import type { UploadDoc } from '../../api/index.ts';
import type { Uploads } from '../../registry/uploads.ts';
import { callerOf } from '../auth.ts';
import { parseContentRange } from '../ranges.ts';

function sessionHeaders(res: Response, doc: UploadDoc): Response {
  return res.set({
    Location: `/v1/uploads/${doc.id}`,
    'Upload-Offset': String(doc.offset),
    // OCI-style: the bytes the server holds, inclusive
    Range: doc.offset > 0 ? `0-${doc.offset - 1}` : '0-0',
  });
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The request body, refused (413) once the session would exceed `max` bytes:
 * up front from Content-Length, else when the counted bytes pass it (what
 * came before stays stored, so the session never holds more than `max`).
 */
function limitedBody(req: Request, heldNow: () => number, max: number | undefined): AsyncIterable<Uint8Array> {
  if (!max) return req;
  const held = heldNow();
  const tooLarge = () => new CairnError('PAYLOAD_TOO_LARGE', `an upload may hold at most ${max} bytes (CAIRN_MAX_UPLOAD_BYTES)`, { max_bytes: max });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && held + declared > max) throw tooLarge();
  return (async function* counted() {
    let total = held;
    for await (const piece of req as AsyncIterable<Uint8Array>) {
      total += piece.length;
      if (total > max) throw tooLarge();
      yield piece;
    }
  })();
}

/**
 * A PATCH body cut at the end its Content-Range declares: no byte past it is
 * stored. A Content-Length that says the body is longer is refused before
 * anything is read (the session is unchanged); a body without one that runs
 * on keeps the declared bytes — like any cut PATCH, what was received within
 * the range stays — and is refused at the first byte past the end. Either way
 * the error's `offset` is where the session ends.
 */
function withinRange(req: Request, body: AsyncIterable<Uint8Array>, range: { start: number; end: number }, heldNow: () => number): AsyncIterable<Uint8Array> {
  const length = range.end - range.start + 1;
  const overrun = (offset: number) =>
    new CairnError('UPLOAD_RANGE_EXCEEDED', `the body is longer than the ${length} bytes its Content-Range (bytes ${range.start}-${range.end}) declares; the session ends at ${offset}`, { offset });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > length) throw overrun(heldNow());
  return (async function* cut() {
    let received = 0;
    for await (const piece of body) {
      if (received + piece.length > length) {
        if (length > received) yield piece.subarray(0, length - received);
        // stored up to the declared end: appendUpload checked that the range starts at the session's offset
        throw overrun(range.end + 1);
      }
      received += piece.length;
      yield piece;
    }
  })();
}

export function registerUploadRoutes(app: Express, { uploads, maxUploadBytes }: { uploads: Uploads; maxUploadBytes?: number }): void {
  // a session is its starting token's: to any other it answers 404, as if it did not exist
  app.post('/v1/uploads', (req, res) => {
    const doc = uploads.create(callerOf(req));
    sessionHeaders(res, doc).status(201).json(doc);
  });

  app.get('/v1/uploads/:id', (req, res) => {
    const doc = uploads.get(req.params.id, callerOf(req));
    sessionHeaders(res, doc).json(doc);
  });

  app.patch('/v1/uploads/:id', async (req, res) => {
    const header = req.headers['content-range'];
    const range = parseContentRange(header);
    if (header && !range) throw new CairnError('INVALID_ARGUMENT', `invalid Content-Range ${JSON.stringify(header)}: expected bytes <start>-<end>/*`);
    if (range && range.end < range.start) throw new CairnError('INVALID_ARGUMENT', 'Content-Range end is before its start');
    const caller = callerOf(req);
    const heldNow = () => uploads.get(req.params.id, caller).offset;
    const body = limitedBody(req, heldNow, maxUploadBytes);
    const doc = await uploads.append(req.params.id, range?.start, range ? withinRange(req, body, range, heldNow) : body, caller);
    if (range && doc.offset !== range.end + 1) {
      throw new CairnError('UPLOAD_INCOMPLETE', `Content-Range declared bytes ${range.start}-${range.end} but the session now ends at ${doc.offset}; resume from there`, {
        offset: doc.offset,
      });
    }
    sessionHeaders(res, doc).status(202).json(doc);
  });

  app.put('/v1/uploads/:id', async (req, res) => {
    const caller = callerOf(req);
    const body = hasBody(req) ? limitedBody(req, () => uploads.get(req.params.id, caller).offset, maxUploadBytes) : undefined;
    const blob = await uploads.finish(req.params.id, req.query.digest, body, caller);
    res.status(201).location(`/v1/blobs/${blob.digest}`).json(blob);
  });

  app.delete('/v1/uploads/:id', async (req, res) => {
    await uploads.cancel(req.params.id, callerOf(req));
    res.status(204).end();
  });

  // 200 only for content the caller may name: uploaded by it, or in a version it may read
  app.head('/v1/blobs/:digest', (req, res) => {
    const blob = uploads.hasBlob(req.params.digest, callerOf(req));
    if (!blob) throw new CairnError('BLOB_NOT_FOUND', `no content ${req.params.digest}`);
    res.set({ 'Content-Length': String(blob.size), ETag: `"${req.params.digest}"` }).status(200).end();
  });
}
