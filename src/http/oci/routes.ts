// The OCI Distribution Spec v1.1 under /v2 (pull, push, content discovery,
// content management) and the token endpoint docker-style clients ask after a
// 401. Handlers parse, call the Oci service (src/registry/oci.ts), and answer
// in the spec's shapes; errors become OCI error bodies in ./protocol.ts.
import express, { type Request, type Response } from 'express';
import { CairnError } from '../../errors.ts';
import type { Route } from '../route.ts';
import { route } from '../route.ts';
import { callerOf, credentialsOf } from '../auth.ts';
import { send } from '../file-response.ts';
import { BINARY, header, LOCATION, pathParam, query, STORAGE } from '../openapi.ts';
import { answerRange } from '../ranges.ts';
import { hasBody, limitedBody } from '../routes/uploads.ts';
import { MEDIA } from '../../registry/oci-documents.ts';

/** The largest manifest accepted (what distribution and the spec's conformance use). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' };

const READ = { scope: 'read', model: 'name' } as const;
const WRITE = { scope: 'write', model: 'name' } as const;
const JSON_DOC = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const MANIFEST_BODY = {
  [MEDIA.ociManifest]: { schema: { type: 'object' } },
  [MEDIA.ociIndex]: { schema: { type: 'object' } },
  [MEDIA.dockerManifest]: { schema: { type: 'object' } },
  [MEDIA.dockerList]: { schema: { type: 'object' } },
};
/** The spec's answers without a body. */
const EMPTY = { 'text/plain': { schema: { type: 'string', maxLength: 0 } } };
const DIGEST_HEADER = { 'Docker-Content-Digest': { schema: { type: 'string' }, description: 'sha256 of the bytes' } };
const REFERENCE = pathParam('reference', 'a tag (a version, an alias, `latest`, or `<version>-image`: the image form) or a manifest digest');
const DIGEST = pathParam('digest', '`sha256:<64 hex>`');
const SESSION = pathParam('id', 'upload session id');
const NAME_ERRORS = ['INVALID_NAME', 'MODEL_NOT_FOUND'] as const;
const DESCRIPTION_SUFFIX = ' Errors under /v2 are OCI error bodies (`{"errors":[{"code","message","detail"}]}`, `detail.cairn_code` the code listed here).';

function setUploadHeaders(res: Response, name: string, id: string, offset: number): Response {
  return res.set({
    Location: `/v2/${name}/blobs/uploads/${id}`,
    Range: `0-${Math.max(offset - 1, 0)}`,
    'Docker-Upload-UUID': id,
    'OCI-Chunk-Min-Length': '0',
  });
}

function blobCreated(res: Response, name: string, digest: string): void {
  res.status(201).set({ Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' }).end();
}

/** `Content-Range: <start>-<end>` (the spec's form) or `bytes <start>-<end>/<total|*>`. */
function parseChunkRange(value: string | undefined): { start: number; end: number } | undefined {
  if (!value) return undefined;
  const m = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(value.trim());
  if (!m) throw new CairnError('INVALID_ARGUMENT', `invalid Content-Range ${JSON.stringify(value)}: expected <start>-<end>`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

function queryString(req: Request, key: string): string | undefined {
  const v = req.query[key];
  return typeof v === 'string' ? v : undefined;
}

export const ociRoutes: readonly Route[] = [
  route({
    method: 'get',
    path: '/v2',
    access: 'open',
    doc: {
      id: 'ociBase',
      tag: 'oci',
      summary: 'OCI Distribution API version check',
      description: `200 with \`Docker-Distribution-API-Version: registry/2.0\` to a client with credentials (a Cairn token as Bearer or Basic password, or a registry token from GET /v2/token); 401 with the token-auth challenge otherwise.${DESCRIPTION_SUFFIX}`,
      responses: { 200: { ...JSON_DOC('`{}`'), headers: { 'Docker-Distribution-API-Version': { schema: { type: 'string' } } } } },
      errors: ['UNAUTHORIZED'],
    },
    handle: () => (req, res) => {
      const who = credentialsOf(req);
      res.set(API_VERSION);
      if (!who.authenticated && who.scope === undefined) throw new CairnError('UNAUTHORIZED', 'this registry needs a token: log in with a Cairn token as the password');
      res.json({});
    },
  }),
  route({
    method: 'get',
    path: '/v2/token',
    access: 'open',
    doc: {
      id: 'ociToken',
      tag: 'oci',
      summary: 'A short-lived registry token for the token-auth flow',
      description: `Presented a Cairn token (Basic password, or Bearer), answers \`{token, access_token, expires_in, issued_at}\`: a token valid 5 minutes for the repositories and actions asked in \`scope\` (\`repository:<name>:pull,push\`) that the Cairn token allows — pull needs read, push and delete write. Checked again against its Cairn token at every use.${DESCRIPTION_SUFFIX}`,
      params: [query('scope', '`repository:<name>:<actions>`, repeatable'), query('service', '`cairn`')],
      responses: { 200: JSON_DOC('the token') },
      errors: ['UNAUTHORIZED'],
    },
    handle: ({ services }) => (req, res) => {
      const who = credentialsOf(req);
      if (!who.authenticated || who.scope === undefined) throw new CairnError('UNAUTHORIZED', 'present a Cairn token (as the Basic password, or as Bearer) to get a registry token');
      const raw = req.query.scope;
      const scopes = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((s): s is string => typeof s === 'string');
      const id = who.principal?.startsWith('token:') ? Number(who.principal.slice('token:'.length)) : undefined;
      const issued = services.registryTokens.issue({ id, name: who.actor, scope: who.scope, models: who.models }, scopes);
      res.set('Cache-Control', 'no-store').json({ token: issued.token, access_token: issued.token, expires_in: issued.expires_in, issued_at: issued.issued_at });
    },
  }),
  route({
    method: 'get',
    path: '/v2/:name/manifests/:reference',
    access: READ,
    doc: {
      id: 'ociGetManifest',
      tag: 'oci',
      summary: 'A manifest by tag or digest (GET and HEAD)',
      description: `A version's tag serves its ModelPack artifact manifest, built once and stored as exact bytes; \`<version>-image\` its image form (an OCI image whose one layer is a tar of the files under /models; 503 IMAGE_PENDING while it is first computed). Pushed manifests are served as pushed.${DESCRIPTION_SUFFIX}`,
      params: [REFERENCE],
      responses: { 200: { description: 'the manifest', content: MANIFEST_BODY, headers: DIGEST_HEADER } },
      errors: [...NAME_ERRORS, 'MANIFEST_NOT_FOUND', 'VERSION_DELETED', 'IMAGE_PENDING', ...STORAGE],
    },
    handle: ({ services: { oci } }) => async (req, res) => {
      const row = await oci.manifest(req.params.name, req.params.reference, callerOf(req));
      res.set({ 'Content-Type': row.media_type, 'Docker-Content-Digest': row.digest, ETag: `"${row.digest}"`, 'Content-Length': String(row.content.length) });
      if (req.method === 'HEAD') res.end();
      else res.end(row.content);
    },
  }),
  route({
    method: 'put',
    path: '/v2/:name/manifests/:reference',
    access: WRITE,
    before: () => [express.raw({ type: () => true, limit: MAX_MANIFEST_BYTES })],
    doc: {
      id: 'ociPutManifest',
      tag: 'oci',
      summary: 'Push a manifest: by tag a new version, by digest as it is',
      description: `By tag: the tag is the version string of a new version whose files are the manifest's layers, each named by its \`org.cncf.model.filepath\` or \`org.opencontainers.image.title\` annotation (untitled: \`layers/<hex>\`; tar layers keep their bytes, named with their archive ending); format detection and the safety policy apply as to any publish. An index (a multi-platform image) or a manifest without layers names no files: its tag points at it instead, listed with the others. Pushing the same bytes again is a no-op; other bytes under an existing tag are 409 (tags are set once). By digest: stored as it is (referrers, an index's children). Every blob it names must have been pushed first (MANIFEST_BLOB_UNKNOWN).${DESCRIPTION_SUFFIX}`,
      params: [REFERENCE],
      body: { required: true, content: MANIFEST_BODY },
      responses: { 201: { description: 'stored', content: EMPTY, headers: { ...DIGEST_HEADER, ...LOCATION() } } },
      errors: ['INVALID_NAME', 'INVALID_VERSION', 'INVALID_MANIFEST', 'INVALID_DIGEST', 'DIGEST_MISMATCH', 'INVALID_PATH', 'VERSION_EXISTS', 'UNSUPPORTED_OPERATION', 'INVALID_MODEL_FILE', 'UNSAFE_MODEL', ...STORAGE],
    },
    handle: ({ services: { oci } }) => async (req, res) => {
      if (!Buffer.isBuffer(req.body)) throw new CairnError('INVALID_MANIFEST', 'the request has no manifest body');
      const { digest } = await oci.putManifest({
        name: req.params.name,
        reference: req.params.reference,
        bytes: req.body,
        contentType: req.headers['content-type'],
        caller: callerOf(req),
        actor: credentialsOf(req).actor,
      });
      const subject = JSON.parse(req.body.toString('utf8')).subject as { digest?: string } | undefined;
      if (subject?.digest) res.set('OCI-Subject', subject.digest);
      res.status(201).set({ Location: `/v2/${req.params.name}/manifests/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' }).end();
    },
  }),
  route({
    method: 'delete',
    path: '/v2/:name/manifests/:reference',
    access: WRITE,
    doc: {
      id: 'ociDeleteManifest',
      tag: 'oci',
      summary: 'Delete a manifest pushed by digest',
      description: `A version's manifests go with the version (DELETE /v1/models/{name}/versions/{version}); its tags are versions and aliases, managed through /v1: 405 UNSUPPORTED here.${DESCRIPTION_SUFFIX}`,
      params: [REFERENCE],
      responses: { 202: { description: 'deleted', content: EMPTY } },
      errors: ['INVALID_NAME', 'MANIFEST_NOT_FOUND', 'UNSUPPORTED_OPERATION'],
    },
    handle: ({ services: { oci } }) => (req, res) => {
      oci.deleteManifest(req.params.name, req.params.reference);
      res.status(202).end();
    },
  }),
  route({
    method: 'get',
    path: '/v2/:name/blobs/:digest',
    access: READ,
    doc: {
      id: 'ociGetBlob',
      tag: 'oci',
      summary: 'A blob (GET and HEAD; Range)',
      description: `A file of a version (its raw layer: the file's sha256), a config, or an image form's layer (a tar streamed from the files). Range gives 206.${DESCRIPTION_SUFFIX}`,
      params: [DIGEST, header('Range', '`bytes=<start>-<end>`')],
      responses: { 200: { description: 'the bytes', content: BINARY, headers: DIGEST_HEADER }, 206: { description: 'a range of the bytes', content: BINARY } },
      errors: ['INVALID_NAME', 'INVALID_DIGEST', 'BLOB_NOT_FOUND', 'RANGE_NOT_SATISFIABLE', ...STORAGE],
    },
    handle: ({ services: { oci }, log }) => async (req, res) => {
      const blob = oci.blob(req.params.name, req.params.digest, callerOf(req));
      res.set({ 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': blob.digest, ETag: `"${blob.digest}"`, 'Accept-Ranges': 'bytes' });
      const backwards = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range?.trim() ?? '');
      if (backwards && Number(backwards[2]) < Number(backwards[1])) {
        // RFC 9110 would ignore it; the distribution-spec conformance suite asks for 416
        res.set('Content-Range', `bytes */${blob.size}`);
        throw new CairnError('RANGE_NOT_SATISFIABLE', `range ${req.headers.range} ends before it starts`);
      }
      const { range, length } = answerRange(res, req.headers.range, blob.size);
      if (req.method === 'HEAD' || length === 0) {
        res.end();
        return;
      }
      await send(res, await blob.open(range), log, `/v2/${req.params.name}/blobs/${blob.digest}`);
    },
  }),
  route({
    method: 'delete',
    path: '/v2/:name/blobs/:digest',
    access: WRITE,
    doc: {
      id: 'ociDeleteBlob',
      tag: 'oci',
      summary: 'Blob deletion: not supported',
      description: `Content is shared between versions and collected by gc once nothing names it: 405 UNSUPPORTED.${DESCRIPTION_SUFFIX}`,
      params: [DIGEST],
      responses: { 202: { description: 'never', content: EMPTY } },
      errors: ['UNSUPPORTED_OPERATION'],
    },
    handle: () => () => {
      throw new CairnError('UNSUPPORTED_OPERATION', 'blobs are not deleted through /v2: gc removes content nothing names');
    },
  }),
  route({
    method: 'post',
    path: '/v2/:name/blobs/uploads',
    access: WRITE,
    doc: {
      id: 'ociStartUpload',
      tag: 'oci',
      summary: 'Start a blob upload; monolithic with ?digest=; cross-repository mount with ?mount=&from=',
      description: `Without \`digest\`: 202 and a session's Location to PATCH and PUT. With \`digest\` and a body: the whole blob, 201. With \`mount\` and \`from\`: 201 when \`from\` holds that blob and the token may read it, else a new session (202).${DESCRIPTION_SUFFIX}`,
      params: [query('digest', 'the digest of the body (monolithic upload)'), query('mount', 'a digest to mount'), query('from', 'the repository to mount it from')],
      body: { required: false, content: BINARY },
      responses: { 201: { description: 'stored or mounted', content: EMPTY, headers: { ...DIGEST_HEADER, ...LOCATION() } }, 202: { description: 'a session', content: EMPTY, headers: LOCATION() } },
      errors: ['INVALID_NAME', 'INVALID_DIGEST', 'DIGEST_MISMATCH', 'PAYLOAD_TOO_LARGE', ...STORAGE],
    },
    handle: ({ services: { oci, uploads }, maxUploadBytes }) => async (req, res) => {
      const caller = callerOf(req);
      const mount = queryString(req, 'mount');
      const from = queryString(req, 'from');
      if (mount && oci.mountable(mount, from, caller)) {
        blobCreated(res, req.params.name, mount);
        return;
      }
      const session = uploads.create(caller);
      const digest = queryString(req, 'digest');
      if (digest !== undefined) {
        const body = limitedBody(req, () => 0, maxUploadBytes);
        const blob = await uploads.finish(session.id, digest, body, caller);
        blobCreated(res, req.params.name, blob.digest);
        return;
      }
      setUploadHeaders(res, req.params.name, session.id, 0).status(202).set('Content-Length', '0').end();
    },
  }),
  route({
    method: 'get',
    path: '/v2/:name/blobs/uploads/:id',
    access: WRITE,
    doc: {
      id: 'ociUploadStatus',
      tag: 'oci',
      summary: 'Where a blob upload stands',
      params: [SESSION],
      responses: { 204: { description: 'the session: `Range: 0-<offset-1>`', headers: LOCATION() } },
      errors: ['UPLOAD_NOT_FOUND'],
    },
    handle: ({ services: { uploads } }) => (req, res) => {
      const session = uploads.get(req.params.id, callerOf(req));
      setUploadHeaders(res, req.params.name, session.id, session.offset).status(204).end();
    },
  }),
  route({
    method: 'patch',
    path: '/v2/:name/blobs/uploads/:id',
    access: WRITE,
    doc: {
      id: 'ociUploadChunk',
      tag: 'oci',
      summary: 'Append a chunk to a blob upload (streamed into the chunk store)',
      description: `With \`Content-Range: <start>-<end>\` the start must be where the session stands: 416 otherwise.${DESCRIPTION_SUFFIX}`,
      params: [SESSION, header('Content-Range', '`<start>-<end>`')],
      body: { required: true, content: BINARY },
      responses: { 202: { description: 'appended', content: EMPTY, headers: LOCATION() } },
      errors: ['INVALID_ARGUMENT', 'UPLOAD_NOT_FOUND', 'UPLOAD_OFFSET_MISMATCH', 'UPLOAD_BUSY', 'PAYLOAD_TOO_LARGE', 'STORAGE_UNAVAILABLE'],
    },
    handle: ({ services: { uploads }, maxUploadBytes }) => async (req, res) => {
      const caller = callerOf(req);
      const range = parseChunkRange(req.headers['content-range']);
      const body = limitedBody(req, () => uploads.get(req.params.id, caller).offset, maxUploadBytes);
      const session = await uploads.append(req.params.id, range?.start, body, caller);
      setUploadHeaders(res, req.params.name, session.id, session.offset).status(202).set('Content-Length', '0').end();
    },
  }),
  route({
    method: 'put',
    path: '/v2/:name/blobs/uploads/:id',
    access: WRITE,
    doc: {
      id: 'ociFinishUpload',
      tag: 'oci',
      summary: 'Finish a blob upload (?digest=), with an optional last chunk',
      description: `With \`Content-Range\` the last chunk must start where the session stands: 416 otherwise.${DESCRIPTION_SUFFIX}`,
      params: [SESSION, query('digest', 'the digest of the whole blob', { type: 'string' }, true)],
      body: { required: false, content: BINARY },
      responses: { 201: { description: 'stored', content: EMPTY, headers: { ...DIGEST_HEADER, ...LOCATION() } } },
      errors: ['INVALID_DIGEST', 'DIGEST_MISMATCH', 'UPLOAD_NOT_FOUND', 'UPLOAD_OFFSET_MISMATCH', 'UPLOAD_BUSY', 'PAYLOAD_TOO_LARGE', ...STORAGE],
    },
    handle: ({ services: { uploads }, maxUploadBytes }) => async (req, res) => {
      const caller = callerOf(req);
      const range = parseChunkRange(req.headers['content-range']);
      const offset = uploads.get(req.params.id, caller).offset;
      if (range && range.start !== offset) throw new CairnError('UPLOAD_OFFSET_MISMATCH', `upload ${req.params.id} is at offset ${offset}, not ${range.start}`, { offset });
      const body = hasBody(req) ? limitedBody(req, () => uploads.get(req.params.id, caller).offset, maxUploadBytes) : undefined;
      const blob = await uploads.finish(req.params.id, queryString(req, 'digest'), body, caller);
      blobCreated(res, req.params.name, blob.digest);
    },
  }),
  route({
    method: 'delete',
    path: '/v2/:name/blobs/uploads/:id',
    access: WRITE,
    doc: {
      id: 'ociCancelUpload',
      tag: 'oci',
      summary: 'Cancel a blob upload',
      params: [SESSION],
      responses: { 204: { description: 'cancelled' } },
      errors: ['UPLOAD_NOT_FOUND', 'UPLOAD_BUSY'],
    },
    handle: ({ services: { uploads } }) => async (req, res) => {
      await uploads.cancel(req.params.id, callerOf(req));
      res.status(204).end();
    },
  }),
  route({
    method: 'get',
    path: '/v2/:name/tags/list',
    access: READ,
    doc: {
      id: 'ociTags',
      tag: 'oci',
      summary: "A repository's tags: its versions and aliases, in lexical order",
      description: `\`n\` and \`last\` page through them; a \`Link: <…>; rel="next"\` header when more follow. \`latest\` and the image forms (\`<version>-image\`) resolve but are not listed.${DESCRIPTION_SUFFIX}`,
      params: [query('n', 'page size', { type: 'integer', minimum: 0 }), query('last', 'the last tag of the previous page')],
      responses: { 200: JSON_DOC('`{name, tags}`') },
      errors: [...NAME_ERRORS, 'INVALID_ARGUMENT'],
    },
    handle: ({ services: { oci } }) => (req, res) => {
      const rawN = queryString(req, 'n');
      if (rawN !== undefined && !/^\d{1,6}$/.test(rawN)) throw new CairnError('INVALID_ARGUMENT', `n must be a non-negative integer, got ${JSON.stringify(rawN)}`);
      const page = oci.tags(req.params.name, callerOf(req), rawN === undefined ? undefined : Number(rawN), queryString(req, 'last'));
      if (page.more !== undefined) res.set('Link', `</v2/${page.name}/tags/list?n=${rawN}&last=${encodeURIComponent(page.more)}>; rel="next"`);
      res.json({ name: page.name, tags: page.tags });
    },
  }),
  route({
    method: 'get',
    path: '/v2/:name/referrers/:digest',
    access: READ,
    doc: {
      id: 'ociReferrers',
      tag: 'oci',
      summary: 'The manifests whose subject is a digest (an image index)',
      description: `\`artifactType\` filters them (and sets \`OCI-Filters-Applied\`). A version's image form lists its artifact manifest as its subject.${DESCRIPTION_SUFFIX}`,
      params: [DIGEST, query('artifactType', 'only referrers of this artifact type')],
      responses: { 200: { description: 'an OCI image index', content: { [MEDIA.ociIndex]: { schema: { type: 'object' } } } } },
      errors: ['INVALID_NAME', 'INVALID_DIGEST'],
    },
    handle: ({ services: { oci } }) => (req, res) => {
      const artifactType = queryString(req, 'artifactType');
      const manifests = oci.referrers(req.params.name, req.params.digest, callerOf(req), artifactType);
      if (artifactType !== undefined) res.set('OCI-Filters-Applied', 'artifactType');
      res.set('Content-Type', MEDIA.ociIndex).end(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests }));
    },
  }),
];
