// A read-only subset of the Hugging Face Hub API under /hf, so that Hugging
// Face clients download from Cairn: huggingface_hub with
// HF_ENDPOINT=http://HOST:PORT/hf, @huggingface/hub with hubUrl. A repo is a
// model; a revision is `main`/`HEAD` (the latest version), a version, an
// alias, a manifest digest, or a version's publish commit id in the lineage
// repository — the id these clients pin to (X-Repo-Commit) and cache under.
// Routes only parse, ask the services, and answer in the Hub's shapes; a
// file's bytes go out as on the /v1 file route (../file-response.ts).
import type { ErrorRequestHandler, Request } from 'express';
import type { FileDoc, VersionDoc } from '../../api/index.ts';
import { CairnError, isCairnError, type ErrorCode } from '../../errors.ts';
import type { Versions } from '../../registry/versions.ts';
import { callerOf } from '../auth.ts';
import { sendFile } from '../file-response.ts';
import { BINARY, header, pathParam, query, REF_ERRORS, STORAGE } from '../openapi.ts';
import { route } from '../route.ts';

/** The Hub's X-Error-Code for our 404s: the clients turn these into their own not-found errors. */
const HUB_ERROR_CODE: Partial<Record<ErrorCode, string>> = {
  MODEL_NOT_FOUND: 'RepoNotFound',
  VERSION_NOT_FOUND: 'RevisionNotFound',
  VERSION_DELETED: 'RevisionNotFound',
  ALIAS_NOT_FOUND: 'RevisionNotFound',
  FILE_NOT_FOUND: 'EntryNotFound',
  INVALID_REF: 'RevisionNotFound',
};

/** Registered on /hf after the routes: the Hub's error code header on our errors. */
export function hubErrorCodes(): ErrorRequestHandler {
  return function hubErrorCode(err, _req, res, next) {
    const code = isCairnError(err) ? HUB_ERROR_CODE[err.code] : undefined;
    if (code && !res.headersSent) res.set('X-Error-Code', code);
    next(err);
  };
}

/** The size the Hub reports for a git-lfs pointer file; clients only carry it along. */
const LFS_POINTER_SIZE = 134;

/** sha256:<hex> → <hex>, the form the Hub gives LFS files' ids in. */
const hex = (digest: string) => digest.slice('sha256:'.length);

/** What the Hub answers with: a JSON document its clients parse (not a Cairn wire type). */
const HUB_JSON = (description: string, type: 'object' | 'array') => ({
  description,
  content: { 'application/json': { schema: type === 'object' ? { type: 'object' } : { type: 'array', items: { type: 'object' } } } },
});
const HUB_REVISION = pathParam(
  'revision',
  "`main` or `HEAD` (the latest version), a version, an alias, a manifest digest, or the 40-hex id of a version's publish commit in the lineage repository (what Hugging Face clients pin to)",
);
const hubFileHeaders = {
  'X-Repo-Commit': { schema: { type: 'string' }, description: "the version's publish commit" },
  ETag: { schema: { type: 'string' }, description: "the file's sha256, hex, quoted" },
  'X-Linked-Etag': { schema: { type: 'string' }, description: 'the same as ETag' },
  'X-Linked-Size': { schema: { type: 'integer' }, description: "the file's size" },
  'X-Error-Code': { schema: { type: 'string' }, description: 'on 404: `RepoNotFound`, `RevisionNotFound` or `EntryNotFound`' },
};
const READ = { scope: 'read', model: 'name' } as const;

/** The version at a revision (`HEAD` is `main`) and its publish commit. */
function atRevision(versions: Versions, req: Request<{ name: string }>, revision: string) {
  return versions.atRevision(req.params.name, revision === 'HEAD' ? 'main' : revision, callerOf(req));
}

function hubInfo(path: '/hf/api/models/:name' | '/hf/api/models/:name/revision/:revision', id: string) {
  return route({
    method: 'get',
    path,
    access: READ,
    doc: {
      id,
      tag: 'hugging-face',
      summary: path.endsWith(':revision') ? 'A model at a revision, in the Hugging Face Hub shape' : 'A model at `main`, in the Hugging Face Hub shape',
      description: '`sha` is the publish commit of the version; `siblings` its files. For `huggingface_hub` (`HF_ENDPOINT=http://HOST:PORT/hf`) and `@huggingface/hub` (`hubUrl`).',
      params: path.endsWith(':revision') ? [HUB_REVISION] : [],
      responses: { 200: HUB_JSON('model info', 'object') },
      errors: [...REF_ERRORS, 'COMMIT_PENDING'],
    },
    handle: ({ services: { versions, models } }) => async (req, res) => {
      const { version, commit } = await atRevision(versions, req, (req.params as { revision?: string }).revision ?? 'main');
      const model = models.get(req.params.name);
      res.json({
        _id: `${version.name}@${version.version}`,
        id: version.name,
        modelId: version.name,
        sha: commit,
        private: false,
        disabled: false,
        gated: false,
        // with milliseconds: huggingface_hub parses exactly that form
        createdAt: new Date(model.created_at).toISOString(),
        lastModified: new Date(version.created_at).toISOString(),
        author: version.created_by,
        tags: [...new Set(version.files.map((f) => f.format).filter((f) => f !== 'unknown'))],
        library_name: version.summary.framework ?? undefined,
        downloads: 0,
        likes: 0,
        cairn: { version: version.version, number: version.number, digest: version.digest, aliases: version.aliases },
        siblings: version.files.map((f) => ({ rfilename: f.path, size: f.size, blobId: hex(f.digest), lfs: { sha256: hex(f.digest), size: f.size, pointerSize: LFS_POINTER_SIZE } })),
        usedStorage: version.size,
      });
    },
  });
}

function hubTree(path: '/hf/api/models/:name/tree/:revision' | '/hf/api/models/:name/tree/:revision/*path', id: string) {
  const withPath = path.endsWith('*path');
  return route({
    method: 'get',
    path,
    access: READ,
    doc: {
      id,
      tag: 'hugging-face',
      summary: withPath ? 'The files under a directory of a revision (Hugging Face Hub tree)' : 'The files of a revision (Hugging Face Hub tree)',
      params: [HUB_REVISION, ...(withPath ? [pathParam('path', 'a directory inside the version')] : []), query('recursive', '`true`: everything below, not just the direct entries')],
      responses: { 200: HUB_JSON('entries: `{type: file|directory, path, size, oid, lfs?}`', 'array') },
      errors: [...REF_ERRORS, 'FILE_NOT_FOUND', 'COMMIT_PENDING'],
    },
    handle: ({ services }) => async (req, res) => {
      const params = req.params as { name: string; revision: string; path?: string[] };
      const { version } = await atRevision(services.versions, req, params.revision);
      const recursive = req.query.recursive === 'true' || req.query.recursive === '1';
      res.json(treeEntries(version, params.path?.join('/') ?? '', recursive));
    },
  });
}

export const huggingFaceRoutes = [
  hubInfo('/hf/api/models/:name', 'hubModelInfo'),
  hubInfo('/hf/api/models/:name/revision/:revision', 'hubModelInfoAtRevision'),
  hubTree('/hf/api/models/:name/tree/:revision', 'hubTree'),
  hubTree('/hf/api/models/:name/tree/:revision/*path', 'hubTreeAt'),
  route({
    method: 'get',
    path: '/hf/:name/resolve/:revision/*path',
    access: READ,
    doc: {
      id: 'hubResolve',
      tag: 'hugging-face',
      summary: "A file's bytes, as the Hugging Face Hub serves them (HEAD: headers only)",
      description: 'What `hf_hub_download` and `@huggingface/hub` fetch. Every chunk is verified, as for getFile.',
      params: [HUB_REVISION, pathParam('path', 'the path inside the version; may contain `/`'), header('Range', 'one byte range')],
      responses: {
        200: { description: 'the whole file', headers: hubFileHeaders, content: BINARY },
        206: { description: 'the requested range', headers: { ...hubFileHeaders, 'Content-Range': { schema: { type: 'string' } } }, content: BINARY },
      },
      errors: [...REF_ERRORS, 'FILE_NOT_FOUND', 'RANGE_NOT_SATISFIABLE', 'COMMIT_PENDING', ...STORAGE],
    },
    handle: ({ services, log }) => async (req, res) => {
      const { version, commit } = await atRevision(services.versions, req, req.params.revision);
      const path = req.params.path.join('/');
      const file = version.files.find((f) => f.path === path);
      if (!file) throw new CairnError('FILE_NOT_FOUND', `${version.name}@${version.version} has no file ${path}`);
      const etag = `"${hex(file.digest)}"`;
      const headers = { 'X-Repo-Commit': commit, 'X-Linked-Etag': etag, 'X-Linked-Size': String(file.size) };
      await sendFile(req, res, { version, file, etag, headers }, { versions: services.versions, log });
    },
  }),
];

function fileEntry(f: FileDoc) {
  return { type: 'file', oid: hex(f.digest), size: f.size, path: f.path, lfs: { oid: hex(f.digest), size: f.size, pointerSize: LFS_POINTER_SIZE } };
}

/**
 * The Hub's tree listing of a version's directory: its files and
 * subdirectories, or with `recursive` everything below it, each directory
 * named once and before what is in it, as the Hub lists them.
 */
export function treeEntries(version: Pick<VersionDoc, 'name' | 'version' | 'digest' | 'files'>, dir: string, recursive: boolean): unknown[] {
  const prefix = dir === '' ? '' : `${dir}/`;
  const inside = version.files.filter((f) => f.path.startsWith(prefix));
  if (dir !== '' && inside.length === 0) throw new CairnError('FILE_NOT_FOUND', `${version.name}@${version.version} has no directory ${dir}`);
  const entries: unknown[] = [];
  const dirs = new Set<string>();
  const directory = (sub: string) => {
    if (!dirs.has(sub)) entries.push({ type: 'directory', oid: hex(version.digest), size: 0, path: sub });
    dirs.add(sub);
  };
  for (const f of inside) {
    const rest = f.path.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (!recursive && slash >= 0) {
      directory(prefix + rest.slice(0, slash));
      continue;
    }
    // Recursive: every directory on the way, each once. Walking up from the
    // file's own directory stops at the first one listed already (its
    // ancestors are too), so each directory is built once: one pass, linear
    // in the size of the answer — not files × depth (1,900 files 495
    // directories deep took a second of CPU a request).
    if (recursive) {
      const fresh: string[] = [];
      for (let at = f.path.lastIndexOf('/'); at >= prefix.length && !dirs.has(f.path.slice(0, at)); at = f.path.lastIndexOf('/', at - 1)) fresh.push(f.path.slice(0, at));
      for (let i = fresh.length - 1; i >= 0; i--) directory(fresh[i]!);
    }
    entries.push(fileEntry(f));
  }
  return entries;
}
