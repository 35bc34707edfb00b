// The read side of the Hugging Face Hub API under /hf, so that Hugging Face
// clients download from Cairn: huggingface_hub with
// HF_ENDPOINT=http://HOST:PORT/hf, @huggingface/hub with hubUrl. A repo is a
// model; a revision is `main`/`HEAD` (the latest version), a version, an
// alias, a manifest digest, or a version's publish commit id in the lineage
// repository — the id these clients pin to (X-Repo-Commit) and cache under.
// Routes only parse, ask the services, and answer in the Hub's shapes; a
// file's bytes go out as on the /v1 file route (../file-response.ts).
import express, { type Request, type Response } from 'express';
import type { FileDoc, VersionDoc } from '../../api/index.ts';
import { CairnError } from '../../errors.ts';
import { MAIN } from '../../identifiers.ts';
import type { Services } from '../../registry/index.ts';
import { callerOf, tokenOf } from '../auth.ts';
import { sendFile } from '../file-response.ts';
import { jsonBodyParser } from '../json-body.ts';
import { BINARY, CURSOR, header, LIMIT, pathParam, query, REF_ERRORS, STORAGE } from '../openapi.ts';
import { route } from '../route.ts';
import { hex, HUB_JSON, HUB_REVISION, hubOrigin, READ } from './shared.ts';
import type { Logger } from '../../log.ts';

/** The size the Hub reports for a git-lfs pointer file; clients only carry it along. */
const LFS_POINTER_SIZE = 134;

const hubFileHeaders = {
  'X-Repo-Commit': { schema: { type: 'string' }, description: "the version's publish commit" },
  ETag: { schema: { type: 'string' }, description: "the file's sha256, hex, quoted" },
  'X-Linked-Etag': { schema: { type: 'string' }, description: 'the same as ETag' },
  'X-Linked-Size': { schema: { type: 'integer' }, description: "the file's size" },
};

/** The version at a revision (`HEAD` is `main`) and its publish commit. */
function atRevision(services: Services, req: Request<{ name: string }>, revision: string) {
  return services.versions.atRevision(req.params.name, revision === 'HEAD' ? MAIN : revision, callerOf(req));
}

/**
 * Whether the revision is `main` of a model with no version yet (made by
 * create_repo): an empty repo, as on the Hub — its files are not found
 * (transformers' push_to_hub looks for a README.md there first), its tree
 * and paths-info are empty.
 */
function emptyMain(services: Services, req: Request<{ name: string }>, revision: string): boolean {
  return (revision === MAIN || revision === 'HEAD') && services.models.get(req.params.name).latest === null;
}

/** A `Link: <…>; rel="next"` to the same URL with `cursor` set, as the Hub pages (huggingface_hub utils/_pagination.py). */
function linkNext(req: Request, res: Response, cursor: string | null): void {
  if (cursor === null) return;
  const url = new URL(req.originalUrl, hubOrigin(req));
  url.searchParams.set('cursor', cursor);
  res.set('Link', `<${url.href}>; rel="next"`);
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
      description:
        '`sha` is the publish commit of the version; `siblings` its files. A model with no version yet (made by create_repo) is an empty repo at `main`. For `huggingface_hub` (`HF_ENDPOINT=http://HOST:PORT/hf`) and `@huggingface/hub` (`hubUrl`).',
      params: path.endsWith(':revision') ? [HUB_REVISION] : [],
      responses: { 200: HUB_JSON('model info', 'object') },
      errors: [...REF_ERRORS, 'COMMIT_PENDING'],
    },
    handle: ({ services }) => async (req, res) => {
      const revision = (req.params as { revision?: string }).revision ?? MAIN;
      const model = services.models.get(req.params.name);
      const identity = { _id: model.name, id: model.name, modelId: model.name, author: model.name.includes('/') ? model.name.split('/')[0] : undefined, private: false, disabled: false, gated: false, downloads: 0, likes: 0 };
      // with milliseconds: huggingface_hub parses exactly that form
      const createdAt = new Date(model.created_at).toISOString();
      if (model.latest === null && (revision === MAIN || revision === 'HEAD')) {
        res.json({ ...identity, sha: null, createdAt, lastModified: createdAt, tags: [], siblings: [], usedStorage: 0 });
        return;
      }
      const { version, commit } = await atRevision(services, req, revision);
      res.json({
        ...identity,
        _id: `${version.name}@${version.version}`,
        sha: commit,
        createdAt,
        lastModified: new Date(version.created_at).toISOString(),
        author: identity.author ?? version.created_by,
        tags: [...new Set(version.files.map((f) => f.format).filter((f) => f !== 'unknown'))],
        library_name: version.summary.framework ?? undefined,
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
      if (emptyMain(services, req, params.revision) && !params.path) {
        res.json([]);
        return;
      }
      const { version } = await atRevision(services, req, params.revision);
      const recursive = req.query.recursive === 'true' || req.query.recursive === '1';
      res.json(treeEntries(version, params.path?.join('/') ?? '', recursive));
    },
  });
}

/** `resolve` (what hf_hub_download fetches) and `raw` (what @huggingface/hub's fileExists asks with HEAD): a file's bytes. */
function hubFile(kind: 'resolve' | 'raw') {
  return route({
    method: 'get',
    path: `/hf/:name/${kind}/:revision/*path`,
    access: READ,
    doc: {
      id: kind === 'resolve' ? 'hubResolve' : 'hubRaw',
      tag: 'hugging-face',
      summary: kind === 'resolve' ? "A file's bytes, as the Hugging Face Hub serves them (HEAD: headers only)" : "A file's bytes (the Hub's `raw`; HEAD tells whether it exists)",
      description: 'What `hf_hub_download`, `@huggingface/hub` `downloadFile` and `fileExists` fetch. Every chunk is verified, as for getFile.',
      params: [HUB_REVISION, pathParam('path', 'the path inside the version; may contain `/`'), header('Range', 'one byte range')],
      responses: {
        200: { description: 'the whole file', headers: hubFileHeaders, content: BINARY },
        206: { description: 'the requested range', headers: { ...hubFileHeaders, 'Content-Range': { schema: { type: 'string' } } }, content: BINARY },
      },
      errors: [...REF_ERRORS, 'FILE_NOT_FOUND', 'RANGE_NOT_SATISFIABLE', 'COMMIT_PENDING', ...STORAGE],
    },
    handle: ({ services, log }) => async (req, res) => {
      const params = req.params as { name: string; revision: string; path: string[] };
      await sendVersionFile(services, log, req, res, params.revision, params.path.join('/'));
    },
  });
}

async function sendVersionFile(services: Services, log: Logger, req: Request, res: Response, revision: string, path: string): Promise<void> {
  if (emptyMain(services, req as Request<{ name: string }>, revision)) throw new CairnError('FILE_NOT_FOUND', `${String(req.params.name)} has no version yet: main holds no ${path}`);
  const { version, commit } = await atRevision(services, req as Request<{ name: string }>, revision);
  const file = version.files.find((f) => f.path === path);
  if (!file) throw new CairnError('FILE_NOT_FOUND', `${version.name}@${version.version} has no file ${path}`);
  const etag = `"${hex(file.digest)}"`;
  const headers = { 'X-Repo-Commit': commit, 'X-Linked-Etag': etag, 'X-Linked-Size': String(file.size) };
  await sendFile(req, res, { version, file, etag, headers }, { versions: services.versions, log });
}

/** paths-info bodies: JSON from @huggingface/hub, a form (`paths=a&paths=b&expand=…`) from huggingface_hub. */
const jsonBody = jsonBodyParser('1mb');
const formBody = express.urlencoded({ extended: false, limit: '1mb', parameterLimit: 10_000 });

export const hubReadRoutes = [
  hubInfo('/hf/api/models/:name', 'hubModelInfo'),
  hubInfo('/hf/api/models/:name/revision/:revision', 'hubModelInfoAtRevision'),
  hubTree('/hf/api/models/:name/tree/:revision', 'hubTree'),
  hubTree('/hf/api/models/:name/tree/:revision/*path', 'hubTreeAt'),
  hubFile('resolve'),
  hubFile('raw'),
  route({
    method: 'get',
    path: '/hf/api/models/:name/refs',
    access: READ,
    doc: {
      id: 'hubRefs',
      tag: 'hugging-face',
      summary: "A model's refs (list_repo_refs): branches `main` (the latest version) and the aliases, tags the versions",
      responses: { 200: HUB_JSON('`{branches, tags, converts: [], pullRequests: []}`, each ref `{name, ref, targetCommit}`', 'object') },
      errors: ['INVALID_NAME', 'MODEL_NOT_FOUND', 'COMMIT_PENDING'],
    },
    handle: ({ services }) => async (req, res) => {
      const refs = await services.hubRepos.refs(req.params.name);
      res.json({ ...refs, converts: [], pullRequests: [] });
    },
  }),
  route({
    method: 'get',
    path: '/hf/api/models/:name/commits/:revision',
    access: READ,
    doc: {
      id: 'hubCommits',
      tag: 'hugging-face',
      summary: 'The commits of a revision (list_repo_commits), newest first: the model\'s events up to the one that published it',
      description: 'Ids are lineage commit ids (those of `X-Repo-Commit`); the title is the first line of the message (a Hub commit\'s summary), else the git subject. Pages follow the `Link: <…>; rel="next"` header.',
      params: [HUB_REVISION, LIMIT, CURSOR],
      responses: { 200: { ...HUB_JSON('`[{id, title, message, authors: [{user}], date}]`', 'array'), headers: { Link: { schema: { type: 'string' }, description: 'the next page' } } } },
      errors: [...REF_ERRORS, 'INVALID_ARGUMENT', 'COMMIT_PENDING'],
    },
    handle: ({ services }) => async (req, res) => {
      const revision = req.params.revision === 'HEAD' ? MAIN : req.params.revision;
      const page = await services.hubRepos.log(req.params.name, revision, req.query, callerOf(req));
      linkNext(req, res, page.next_cursor);
      res.json(page.commits);
    },
  }),
  route({
    method: 'post',
    path: '/hf/api/models/:name/paths-info/:revision',
    access: READ,
    doc: {
      id: 'hubPathsInfo',
      tag: 'hugging-face',
      summary: 'What some paths of a revision are (get_paths_info): files and directories; paths that are neither are left out',
      params: [HUB_REVISION],
      body: {
        required: true,
        content: {
          'application/json': { schema: { type: 'object', properties: { paths: { type: 'array', items: { type: 'string' } }, expand: { type: 'boolean' } }, required: ['paths'] } },
          'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { paths: { type: 'array', items: { type: 'string' } }, expand: { type: 'string' } } } },
        },
      },
      responses: { 200: HUB_JSON('entries as the tree lists them', 'array') },
      errors: [...REF_ERRORS, 'INVALID_ARGUMENT', 'COMMIT_PENDING'],
    },
    before: () => [jsonBody, formBody],
    handle: ({ services }) => async (req, res) => {
      if (emptyMain(services, req, req.params.revision)) {
        res.json([]);
        return;
      }
      const { version } = await atRevision(services, req, req.params.revision);
      const given = (req.body as { paths?: unknown } | undefined)?.paths;
      const paths = typeof given === 'string' ? [given] : given;
      if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) throw new CairnError('INVALID_ARGUMENT', 'paths must be a list of paths');
      res.json(pathsInfo(version, paths as string[]));
    },
  }),
  route({
    method: 'get',
    path: '/hf/api/models',
    access: { scope: 'read' },
    doc: {
      id: 'hubListModels',
      tag: 'hugging-face',
      summary: 'The models the token may read (list_models), by name',
      params: [query('search', 'a part of the name or description'), query('author', 'a namespace'), LIMIT, CURSOR],
      responses: { 200: { ...HUB_JSON('`[{id, author, createdAt, lastModified, …}]`', 'array'), headers: { Link: { schema: { type: 'string' }, description: 'the next page' } } } },
      errors: ['INVALID_ARGUMENT'],
    },
    handle: ({ services }) => (req, res) => {
      const { search, author, limit, cursor } = req.query as Record<string, unknown>;
      // the Hub caps a page rather than refusing a large one
      const pageSize = typeof limit === 'string' && /^\d+$/.test(limit) ? String(Math.min(Number(limit), 1000)) : limit;
      const page = services.models.list({ q: search, namespace: author, limit: pageSize, cursor }, callerOf(req));
      linkNext(req, res, page.next_cursor);
      res.json(
        page.models.map((m) => ({
          _id: m.name,
          id: m.name,
          modelId: m.name,
          author: m.name.includes('/') ? m.name.split('/')[0] : undefined,
          createdAt: new Date(m.created_at).toISOString(),
          lastModified: new Date(m.updated_at).toISOString(),
          private: false,
          downloads: 0,
          likes: 0,
          tags: [],
          cairn: { latest_version: m.latest_version, versions: m.versions },
        })),
      );
    },
  }),
  route({
    method: 'get',
    path: '/hf/api/whoami-v2',
    access: { scope: 'read' },
    doc: {
      id: 'hubWhoami',
      tag: 'hugging-face',
      summary: 'Who the token is (whoami): its name, scope, and as `orgs` the namespaces its model patterns name',
      responses: { 200: HUB_JSON('`{type: "user", name, orgs: [{name}], auth: {accessToken: {displayName, role}}}`', 'object') },
      errors: [],
    },
    handle: () => (req, res) => {
      const token = tokenOf(req);
      const namespaces = [...new Set(token.models.map((p) => p.split('/')).filter((parts) => parts.length === 2 && !parts[0]!.includes('*')).map((parts) => parts[0]!))];
      const entity = (name: string) => ({ id: name, name, fullname: name, email: null, canPay: false, avatarUrl: '', periodEnd: null });
      res.json({
        type: 'user',
        ...entity(token.name),
        emailVerified: false,
        isPro: false,
        orgs: namespaces.map((ns) => ({ type: 'org', ...entity(ns), roleInOrg: token.scope })),
        auth: { type: 'access_token', accessToken: { displayName: token.name, role: token.scope } },
        cairn: { scope: token.scope, models: token.models },
      });
    },
  }),
];

function fileEntry(f: FileDoc) {
  return { type: 'file', oid: hex(f.digest), size: f.size, path: f.path, lfs: { oid: hex(f.digest), size: f.size, pointerSize: LFS_POINTER_SIZE } };
}

function directoryEntry(version: Pick<VersionDoc, 'digest'>, path: string) {
  return { type: 'directory', oid: hex(version.digest), size: 0, path };
}

/** paths-info: each path that is a file or a directory of the version, once, in the order asked. */
export function pathsInfo(version: Pick<VersionDoc, 'digest' | 'files'>, paths: readonly string[]): unknown[] {
  const files = new Map(version.files.map((f) => [f.path, f]));
  const dirs = new Set(version.files.flatMap((f) => f.path.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
  const out: unknown[] = [];
  for (const path of new Set(paths.map((p) => p.replace(/^\/+|\/+$/g, '')))) {
    const file = files.get(path);
    if (file) out.push(fileEntry(file));
    else if (dirs.has(path)) out.push(directoryEntry(version, path));
  }
  return out;
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
    if (!dirs.has(sub)) entries.push(directoryEntry(version, sub));
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
