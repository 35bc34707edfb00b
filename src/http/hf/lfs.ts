// Git LFS under /hf, as huggingface_hub (lfs.py) and @huggingface/hub
// (lib/commit.ts) upload large files: the batch API (with the caller's
// token) says which objects to send and where; the bytes then go to signed
// upload links, which these clients call without a token — one PUT (basic),
// or numbered part PUTs and a completion POST (multipart). No answer names
// Xet, so clients that ask the server stay on LFS. The work is in
// registry/hf-lfs.ts.
import express, { type Request, type Response } from 'express';
import type { LfsBatchPlan, LfsTicket } from '../../registry/hf-lfs.ts';
import type { Services } from '../../registry/index.ts';
import { callerOf } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';
import { BINARY, pathParam } from '../openapi.ts';
import { route } from '../route.ts';
import { HUB_JSON, hubBase, hubOrigin, WRITE } from './shared.ts';

const LFS_JSON = 'application/vnd.git-lfs+json';

/** Batch, verify and completion bodies: git-lfs JSON (or plain JSON), small. */
const lfsJson = jsonBodyParser('1mb');
const lfsTypes = express.json({ type: [LFS_JSON, 'application/json'], limit: '1mb' });

const UPLOAD_LINK = '/hf/lfs-upload';

const TICKET_QUERY = [
  { name: 'oid', in: 'query', description: "the object's sha256" },
  { name: 'size', in: 'query', description: 'its size' },
  { name: 'part_size', in: 'query', description: 'bytes a part (0: one PUT)' },
  { name: 'by', in: 'query', description: 'whose upload it is' },
  { name: 'expires', in: 'query', description: 'until when the link is valid (unix seconds)' },
  { name: 'sig', in: 'query', description: 'the server\'s signature of the above' },
] as const;

/** The batch answer in git-lfs's shape: actions for each object to send, none for one stored already. */
function batchAnswer(req: Request, plan: LfsBatchPlan, ticketQuery: (t: LfsTicket) => Record<string, string>, verifyHref: string) {
  const link = (t: LfsTicket, suffix = '') => `${hubOrigin(req)}${UPLOAD_LINK}/${t.session}${suffix}?${new URLSearchParams(ticketQuery(t))}`;
  return {
    transfer: plan.transfer,
    hash_algo: 'sha256',
    objects: plan.objects.map((o) => {
      if ('stored' in o) return { oid: o.oid, size: o.size };
      if ('error' in o) return { oid: o.oid, size: o.size, error: o.error };
      const upload =
        o.parts === 0
          ? { href: link(o.ticket) }
          : {
              // huggingface_hub: header.chunk_size and one header per part number; href is the completion
              href: link(o.ticket),
              header: { chunk_size: String(o.ticket.partSize), ...Object.fromEntries(Array.from({ length: o.parts }, (_, i) => [String(i + 1), link(o.ticket, `/${i + 1}`)])) },
            };
      return { oid: o.oid, size: o.size, authenticated: true, actions: { upload, verify: { href: verifyHref } } };
    }),
  };
}

function sessionTicket(services: Services, req: Request): LfsTicket {
  return services.hubLfs.ticket(String((req.params as { session: string }).session), req.query as Record<string, unknown>);
}

const SESSION = pathParam('session', 'the upload session of the object');

export const hubLfsRoutes = [
  route({
    method: 'post',
    path: '/hf/:name.git/info/lfs/objects/batch',
    access: WRITE,
    doc: {
      id: 'hubLfsBatch',
      tag: 'hugging-face',
      summary: 'Where to upload large files (git LFS batch API, `upload` only)',
      description:
        'Objects the token may already use (stored and readable by it) get no actions: the client skips them. Others get a signed upload link, valid a day: `basic` (one PUT) or, for files over 64 MiB when the client offers `multipart`, `header.chunk_size` and one link per part, with `href` the completion. Never `xet`.',
      body: { required: true, content: { [LFS_JSON]: { schema: { type: 'object', properties: { operation: { type: 'string', enum: ['upload'] }, transfers: { type: 'array', items: { type: 'string' } }, objects: { type: 'array', items: { type: 'object' } } }, required: ['operation', 'objects'] } } } },
      responses: { 200: { description: '`{transfer, objects: [{oid, size, actions?: {upload, verify}, error?}]}`', content: { [LFS_JSON]: { schema: { type: 'object' } } } } },
      errors: ['INVALID_NAME', 'INVALID_ARGUMENT', 'INVALID_DIGEST', 'MODEL_NOT_FOUND'],
    },
    before: () => [lfsTypes, lfsJson],
    handle: ({ services, maxUploadBytes }) => (req, res) => {
      services.models.get(req.params.name); // MODEL_NOT_FOUND: create_repo first
      const plan = services.hubLfs.batch(req.body, callerOf(req), { maxUploadBytes });
      const verifyHref = `${hubBase(req)}/${req.params.name}.git/info/lfs/objects/verify`;
      res.type(LFS_JSON).json(batchAnswer(req, plan, (t) => services.hubLfs.ticketQuery(t), verifyHref));
    },
  }),
  route({
    method: 'post',
    path: '/hf/:name.git/info/lfs/objects/verify',
    access: WRITE,
    doc: {
      id: 'hubLfsVerify',
      tag: 'hugging-face',
      summary: 'Whether an uploaded object is stored (git LFS verify)',
      body: { required: true, content: { [LFS_JSON]: { schema: { type: 'object', properties: { oid: { type: 'string' }, size: { type: 'integer' } }, required: ['oid'] } } } },
      responses: { 200: HUB_JSON('`{}`', 'object') },
      errors: ['INVALID_NAME', 'INVALID_DIGEST', 'BLOB_NOT_FOUND'],
    },
    before: () => [lfsTypes, lfsJson],
    handle: ({ services }) => (req, res) => {
      services.hubLfs.verify(req.body, callerOf(req));
      res.type(LFS_JSON).json({});
    },
  }),
  route({
    method: 'put',
    path: `${UPLOAD_LINK}/:session`,
    access: 'open',
    doc: {
      id: 'hubLfsPut',
      tag: 'hugging-face',
      summary: 'The bytes of an object (an upload link from the batch API; no token: the link is signed)',
      description: 'Streamed into the chunk store; the object is content once its sha256 is checked (422 DIGEST_MISMATCH otherwise, and the bytes are dropped). Sent again after a cut, the bytes stored already are skipped.',
      params: [SESSION, ...TICKET_QUERY],
      body: { required: true, content: BINARY },
      responses: { 200: { ...HUB_JSON('`{}`; the ETag header names the part', 'object'), headers: { ETag: { schema: { type: 'string' } } } } },
      errors: ['FORBIDDEN', 'INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_INCOMPLETE', 'UPLOAD_RANGE_EXCEEDED', 'UPLOAD_OFFSET_MISMATCH', 'DIGEST_MISMATCH', 'STORAGE_UNAVAILABLE'],
    },
    handle: ({ services }) => async (req, res) => {
      const ticket = sessionTicket(services, req);
      const { etag } = await services.hubLfs.receive(ticket, undefined, req, abortSignalOf(res));
      res.set('ETag', etag).json({});
    },
  }),
  route({
    method: 'put',
    path: `${UPLOAD_LINK}/:session/:part`,
    access: 'open',
    doc: {
      id: 'hubLfsPutPart',
      tag: 'hugging-face',
      summary: 'A part of an object (multipart transfer; signed link, no token)',
      description: 'Parts may come in parallel and out of order: a part waits until the one before it is stored, so the object is chunked exactly as one stream. Answers the part\'s ETag, which the completion lists.',
      params: [SESSION, pathParam('part', 'the part number, from 1'), ...TICKET_QUERY],
      body: { required: true, content: BINARY },
      responses: { 200: { ...HUB_JSON('`{}`; the ETag header names the part', 'object'), headers: { ETag: { schema: { type: 'string' } } } } },
      errors: ['FORBIDDEN', 'INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_INCOMPLETE', 'UPLOAD_RANGE_EXCEEDED', 'UPLOAD_OFFSET_MISMATCH', 'DIGEST_MISMATCH', 'STORAGE_UNAVAILABLE'],
    },
    handle: ({ services }) => async (req, res) => {
      const ticket = sessionTicket(services, req);
      const part = /^\d{1,6}$/.test(req.params.part) ? Number(req.params.part) : NaN;
      const { etag } = await services.hubLfs.receive(ticket, part, req, abortSignalOf(res));
      res.set('ETag', etag).json({});
    },
  }),
  route({
    method: 'post',
    path: `${UPLOAD_LINK}/:session`,
    access: 'open',
    doc: {
      id: 'hubLfsComplete',
      tag: 'hugging-face',
      summary: 'The end of a multipart upload: every part stored, the sha256 checked',
      params: [SESSION, ...TICKET_QUERY],
      body: { required: true, content: { [LFS_JSON]: { schema: { type: 'object', properties: { oid: { type: 'string' }, parts: { type: 'array', items: { type: 'object' } } } } } } },
      responses: { 200: HUB_JSON('`{}`', 'object') },
      errors: ['FORBIDDEN', 'INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_INCOMPLETE', 'DIGEST_MISMATCH', 'STORAGE_UNAVAILABLE'],
    },
    before: () => [lfsTypes, lfsJson],
    handle: ({ services }) => async (req, res) => {
      await services.hubLfs.complete(sessionTicket(services, req), req.body);
      res.json({});
    },
  }),
];

/** Aborted when the client goes away before the answer: a part waiting for its turn stops waiting. */
function abortSignalOf(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
