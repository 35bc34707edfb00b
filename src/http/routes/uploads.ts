// Resumable upload sessions and blob presence.
import type { Request, Response } from 'express';
import { BlobDoc, ChunkListRequest, MissingChunks, MissingChunksRequest, StagingRequest, StagingUrls, UploadDoc } from '../../api/index.ts';
import { CairnError } from '../../errors.ts';
import { callerOf } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';
import { BINARY, header, LOCATION, query } from '../openapi.ts';
import { parseContentRange } from '../ranges.ts';
import { route } from '../route.ts';

function setSessionHeaders(res: Response, doc: UploadDoc): Response {
  return res.set({
    Location: `/v1/uploads/${doc.id}`,
    'Upload-Offset': String(doc.offset),
    // OCI-style: the bytes the server holds, inclusive
    Range: doc.offset > 0 ? `0-${doc.offset - 1}` : '0-0',
  });
}

export function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The request body, refused (413) once the session would exceed `max` bytes:
 * up front from Content-Length, else when the counted bytes pass it (what
 * came before stays stored, so the session never holds more than `max`).
 */
export function limitedBody(req: Request, heldNow: () => number, max: number | undefined): AsyncIterable<Uint8Array> {
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

const sessionHeaders = {
  ...LOCATION('/v1/uploads/{id}'),
  'Upload-Offset': { schema: { type: 'integer' }, description: 'bytes stored so far' },
  Range: { schema: { type: 'string' }, description: 'OCI-style: `0-<offset-1>` (`0-0` when empty)' },
};
const SESSION_ID = { name: 'id', in: 'path', description: 'upload session id' } as const;
const WRITE = { scope: 'write' } as const;
// a direct push's lists: up to MAX_DIRECT_CHUNKS entries of ~120 bytes
const chunkListBody = jsonBodyParser('256kb');
const DIRECT =
  ' A direct push (README "Direct transfers"): with S3 storage, Cairn\'s own clients cut and encode chunks themselves, upload the missing ones straight into the bucket and append the file as a chunk list; the server reads every chunk back and checks it before recording anything. With fs storage: 409 DIRECT_UNAVAILABLE (upload the bytes with PATCH).';

// a session is its starting token's: to any other it answers 404, as if it did not exist
export const uploadRoutes = [
  route({
    method: 'post',
    path: '/v1/uploads',
    access: WRITE,
    doc: {
      id: 'createUpload',
      tag: 'uploads',
      summary: 'Start a resumable upload session',
      description:
        'Needs write. Then PATCH bytes, and PUT with the digest to finish; publish with a JSON manifest naming the digest. The session belongs to the token that started it: to any other token it is 404 UPLOAD_NOT_FOUND.',
      responses: { 201: { description: 'a new, empty session', headers: sessionHeaders, schema: UploadDoc } },
      errors: [],
    },
    handle: ({ services }) => (req, res) => {
      const doc = services.uploads.create(callerOf(req));
      setSessionHeaders(res, doc).status(201).json(doc);
    },
  }),
  route({
    method: 'get',
    path: '/v1/uploads/:id',
    access: WRITE,
    doc: {
      id: 'getUpload',
      tag: 'uploads',
      summary: 'Where a session stands (the offset to resume from)',
      params: [SESSION_ID],
      responses: { 200: { description: 'the session', headers: sessionHeaders, schema: UploadDoc } },
      errors: ['UPLOAD_NOT_FOUND'],
    },
    handle: ({ services }) => (req, res) => {
      const doc = services.uploads.get(req.params.id, callerOf(req));
      setSessionHeaders(res, doc).json(doc);
    },
  }),
  route({
    method: 'patch',
    path: '/v1/uploads/:id',
    access: WRITE,
    doc: {
      id: 'appendUpload',
      tag: 'uploads',
      summary: 'Append bytes',
      description:
        'The body is appended at the session offset. With Content-Range its start must equal the offset (409 UPLOAD_OFFSET_MISMATCH otherwise); a body shorter than the range declared leaves 400 UPLOAD_INCOMPLETE with the new offset to resume from. ' +
        'No byte past the declared end is stored: 400 UPLOAD_RANGE_EXCEEDED, before anything is read when Content-Length says the body is longer, else at the first byte past the end (the declared bytes are kept); its `offset` is where the session ends.',
      params: [SESSION_ID, header('Content-Range', '`bytes <start>-<end>/*` (or `/<total>`)')],
      body: { required: true, content: BINARY },
      responses: { 202: { description: 'appended', headers: sessionHeaders, schema: UploadDoc } },
      errors: ['INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_OFFSET_MISMATCH', 'UPLOAD_INCOMPLETE', 'UPLOAD_RANGE_EXCEEDED', 'UPLOAD_BUSY', 'UPLOAD_FINISHED', 'PAYLOAD_TOO_LARGE', 'STORAGE_UNAVAILABLE'],
    },
    handle: ({ services: { uploads }, maxUploadBytes }) => async (req, res) => {
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
      setSessionHeaders(res, doc).status(202).json(doc);
    },
  }),
  route({
    method: 'put',
    path: '/v1/uploads/:id',
    access: WRITE,
    doc: {
      id: 'finishUpload',
      tag: 'uploads',
      summary: 'Finish: check the digest, keep the content as a blob',
      description: 'An optional body is appended first (a one-request upload).',
      params: [SESSION_ID, query('digest', 'sha256 of all the bytes', { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' }, true)],
      body: { required: false, content: BINARY },
      responses: { 201: { description: 'stored', headers: LOCATION('/v1/blobs/{digest}'), schema: BlobDoc } },
      errors: ['INVALID_DIGEST', 'DIGEST_MISMATCH', 'INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_BUSY', 'UPLOAD_FINISHED', 'PAYLOAD_TOO_LARGE', 'STORAGE_UNAVAILABLE'],
    },
    handle: ({ services: { uploads }, maxUploadBytes }) => async (req, res) => {
      const caller = callerOf(req);
      const body = hasBody(req) ? limitedBody(req, () => uploads.get(req.params.id, caller).offset, maxUploadBytes) : undefined;
      const blob = await uploads.finish(req.params.id, req.query.digest, body, caller);
      res.status(201).location(`/v1/blobs/${blob.digest}`).json(blob);
    },
  }),
  route({
    method: 'delete',
    path: '/v1/uploads/:id',
    access: WRITE,
    doc: { id: 'cancelUpload', tag: 'uploads', summary: 'Cancel a session', params: [SESSION_ID], responses: { 204: { description: 'cancelled' } }, errors: ['UPLOAD_NOT_FOUND', 'UPLOAD_BUSY'] },
    handle: ({ services }) => async (req, res) => {
      await services.uploads.cancel(req.params.id, callerOf(req));
      res.status(204).end();
    },
  }),
  route({
    method: 'post',
    path: '/v1/chunks/missing',
    access: WRITE,
    doc: {
      id: 'missingChunks',
      tag: 'uploads',
      summary: 'Which of these chunks a direct push must upload',
      description:
        'Needs write. The answer names every digest asked about that is not stored — or is stored only in content the caller may not read: to a token limited to some models, other tenants\' chunks are absent, as their blobs are.' +
        DIRECT,
      body: { required: true, content: { 'application/json': { schema: MissingChunksRequest } } },
      responses: { 200: { description: 'the chunks to upload', schema: MissingChunks } },
      errors: ['INVALID_ARGUMENT', 'INVALID_DIGEST', 'DIRECT_UNAVAILABLE'],
    },
    before: () => [chunkListBody],
    handle: ({ services }) => (req, res) => {
      res.json(services.uploads.missingChunks(req.body, callerOf(req)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/uploads/:id/staging',
    access: WRITE,
    doc: {
      id: 'stageChunks',
      tag: 'uploads',
      summary: "Presigned PUTs into a session's staging area (direct push)",
      description:
        'One URL per chunk, valid for CAIRN_PRESIGN_SECONDS (default 300), that PUTs exactly `stored_size` bytes (the length is signed: storage refuses any other) to the staged object of that digest in this session. A session may have at most 2 GiB staged and not yet appended (413 STAGING_LIMIT). Nothing staged is trusted: appending the chunks checks them.' +
        DIRECT,
      params: [SESSION_ID],
      body: { required: true, content: { 'application/json': { schema: StagingRequest } } },
      responses: { 200: { description: 'the URLs', schema: StagingUrls } },
      errors: ['INVALID_ARGUMENT', 'INVALID_DIGEST', 'UPLOAD_NOT_FOUND', 'STAGING_LIMIT', 'DIRECT_UNAVAILABLE', 'STORAGE_UNAVAILABLE'],
    },
    before: () => [chunkListBody],
    handle: ({ services }) => async (req, res) => {
      res.json(await services.uploads.stage(req.params.id, req.body, callerOf(req)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/uploads/:id/chunks',
    access: WRITE,
    doc: {
      id: 'appendChunks',
      tag: 'uploads',
      summary: 'Append chunks by digest (direct push)',
      description:
        'The next chunks of the file, in order, starting at the session offset (409 UPLOAD_OFFSET_MISMATCH otherwise). Each must be staged for this session or already stored and readable by the caller (400 CHUNK_MISSING). A staged chunk is read back from storage, its headers must declare the claimed size and it must decode to bytes with the claimed sha256 — else 400 CHUNK_MISMATCH and the staged object is deleted; only then is it written to the chunk store, create-only. Chunks already stored are read back and checked too: they make up the bytes whose digest finishing checks. The chunks checked before a failing one stay appended (the error\'s session offset says where it stands). Finish with PUT ?digest= as for any session.' +
        DIRECT,
      params: [SESSION_ID],
      body: { required: true, content: { 'application/json': { schema: ChunkListRequest } } },
      responses: { 202: { description: 'appended', headers: sessionHeaders, schema: UploadDoc } },
      errors: ['INVALID_ARGUMENT', 'INVALID_DIGEST', 'UPLOAD_NOT_FOUND', 'UPLOAD_OFFSET_MISMATCH', 'UPLOAD_BUSY', 'CHUNK_MISSING', 'CHUNK_MISMATCH', 'CONTENT_CORRUPT', 'DIRECT_UNAVAILABLE', 'STORAGE_UNAVAILABLE'],
    },
    before: () => [chunkListBody],
    handle: ({ services }) => async (req, res) => {
      const doc = await services.uploads.appendChunks(req.params.id, req.body, callerOf(req));
      setSessionHeaders(res, doc).status(202).json(doc);
    },
  }),
  // 200 only for content the caller may name: uploaded by it, or in a version it may read
  route({
    method: 'head',
    path: '/v1/blobs/:digest',
    access: WRITE,
    doc: {
      id: 'hasBlob',
      tag: 'uploads',
      summary: 'Whether this content is stored (clients skip uploading it)',
      description: 'For a token limited to some models: 200 only for content it uploaded itself or that a live version it may read holds; other content is 404, as if it were not stored.',
      responses: { 200: { description: 'stored', headers: { 'Content-Length': { schema: { type: 'integer' }, description: 'its size' }, ETag: { schema: { type: 'string' } } } } },
      errors: ['INVALID_DIGEST', 'BLOB_NOT_FOUND'],
    },
    handle: ({ services }) => (req, res) => {
      const blob = services.uploads.hasBlob(req.params.digest, callerOf(req));
      if (!blob) throw new CairnError('BLOB_NOT_FOUND', `no content ${req.params.digest}`);
      res.set({ 'Content-Length': String(blob.size), ETag: `"${req.params.digest}"` }).status(200).end();
    },
  }),
];
