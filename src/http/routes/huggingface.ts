// A read-only subset of the Hugging Face Hub API under /hf, so that Hugging
// Face clients download from Cairn: huggingface_hub with
// HF_ENDPOINT=http://HOST:PORT/hf, @huggingface/hub with hubUrl. A repo is a
// model; a revision is `main`/`HEAD` (the latest version), a version, an
// alias, a manifest digest, or a version's publish commit id in the lineage
// repository — the id these clients pin to (X-Repo-Commit) and cache under.
// Routes only parse, ask the registry, and answer in the Hub's shapes.
import type { ErrorRequestHandler, Express, Request, Response } from 'express';
import { CairnError, isCairnError, type ErrorCode } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { FileDoc, VersionDoc } from '../../api/index.ts';
import type { Services } from '../../registry/index.ts';
import { callerOf } from '../auth.ts';
import { answerRange } from '../ranges.ts';
import { markPull } from '../request-log.ts';
import { contentDisposition, send } from './models.ts';

/** The Hub's X-Error-Code for our 404s: the clients turn these into their own not-found errors. */
const HUB_ERROR_CODE: Partial<Record<ErrorCode, string>> = {
  MODEL_NOT_FOUND: 'RepoNotFound',
  VERSION_NOT_FOUND: 'RevisionNotFound',
  VERSION_DELETED: 'RevisionNotFound',
  ALIAS_NOT_FOUND: 'RevisionNotFound',
  FILE_NOT_FOUND: 'EntryNotFound',
  INVALID_REF: 'RevisionNotFound',
};

function hubErrorCodes(): ErrorRequestHandler {
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

export function registerHuggingFaceRoutes(app: Express, { services, log }: { services: Services; log: Logger }): void {
  const { models, versions } = services;
  /** The version at a revision and its publish commit, once the mirror has written it. */
  async function atRevision(req: Request, name: string, revision: string): Promise<{ version: VersionDoc; commit: string }> {
    return versions.atRevision(name, revision === 'HEAD' ? 'main' : revision, callerOf(req));
  }

  async function modelInfo(req: Request<{ name: string; revision?: string }>, res: Response) {
    const { version, commit } = await atRevision(req, req.params.name, req.params.revision ?? 'main');
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
  }
  app.get('/hf/api/models/:name', modelInfo);
  app.get('/hf/api/models/:name/revision/:revision', modelInfo);

  app.get(['/hf/api/models/:name/tree/:revision', '/hf/api/models/:name/tree/:revision/*path'], async (req: Request<{ name: string; revision: string; path?: string[] }>, res) => {
    const { version } = await atRevision(req, req.params.name, req.params.revision);
    const recursive = req.query.recursive === 'true' || req.query.recursive === '1';
    res.json(treeEntries(version, req.params.path?.join('/') ?? '', recursive));
  });

  app.get('/hf/:name/resolve/:revision/*path', async (req: Request<{ name: string; revision: string; path: string[] }>, res) => {
    const { version, commit } = await atRevision(req, req.params.name, req.params.revision);
    const path = req.params.path.join('/');
    const file = version.files.find((f) => f.path === path);
    if (!file) throw new CairnError('FILE_NOT_FOUND', `${version.name}@${version.version} has no file ${path}`);
    markPull(res, version.name, version.version);
    const etag = `"${hex(file.digest)}"`;
    res.set({
      'X-Repo-Commit': commit,
      ETag: etag,
      'X-Linked-Etag': etag,
      'X-Linked-Size': String(file.size),
      'X-Content-Digest': file.digest,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': contentDisposition(path),
    });
    const { range, length } = answerRange(res, req.headers.range, file.size);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const opened = await versions.open(file, range);
    await send(res, opened.stream, log, `hf ${version.name}@${version.version}/${path}`);
  });

  app.use('/hf', hubErrorCodes());
}

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
