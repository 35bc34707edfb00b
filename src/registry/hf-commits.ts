// Writing to a model as Hugging Face clients do: create_repo, preupload (how
// each file is to be sent) and commits. A commit is a new version (README
// "With Hugging Face clients"): the files it does not touch carry over from
// the version at its branch by reference, its version string is the
// version's number unless the committer names one, its parent is that
// version (`derived-from`), and it is published like any other — analysed,
// scanned, mirrored to git — in one transaction that also checks the branch
// has not moved meanwhile.
import { createHash } from 'node:crypto';
import type { Caller } from '../access.ts';
import type { VersionDoc } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import { checkFilePath, checkNewName, checkNewVersion, MAIN } from '../identifiers.ts';
import type { ChunkStore } from '../blobs/chunk-store.ts';
import type { ModelRow } from '../metadata/models.ts';
import type { Catalog } from './catalog.ts';
import type { HubRepos } from './hf-refs.ts';
import type { Publishing } from './publish.ts';
import type { Versions } from './versions.ts';

/** Files up to this size are sent inline in the commit (`regular`); larger ones through git LFS. */
export const REGULAR_MAX_BYTES = 1024 * 1024;

/** `Cairn-Version: <version>` in a commit's description names its version. */
const VERSION_TRAILER = /^Cairn-Version:[ \t]*(\S+)[ \t]*$/m;

/** Times a commit without parentCommit is built again when its branch moved while it was published. */
const RACE_RETRIES = 3;

export interface UploadMode {
  path: string;
  uploadMode: 'regular' | 'lfs';
  shouldIgnore: false;
  /** what the file at this path is now, in the form the client compares to: sha256 (lfs) or git blob sha1 (regular) */
  oid: string | null;
}

export interface HubCommitResult {
  version: VersionDoc;
  commit: string;
}

type Operation = { path: string; digest: string | null } | { folder: string };

/** Thrown by a commit's precondition when its branch moved while it was being published: it is built again. */
class BranchMoved extends Error {}

export interface HubCommitsDeps {
  catalog: Catalog;
  publishing: Publishing;
  versions: Versions;
  repos: HubRepos;
  chunks: ChunkStore;
}

export class HubCommits {
  private readonly catalog: Catalog;
  private readonly publishing: Publishing;
  private readonly versions: Versions;
  private readonly repos: HubRepos;
  private readonly chunks: ChunkStore;

  constructor(deps: HubCommitsDeps) {
    this.chunks = deps.chunks;
    this.catalog = deps.catalog;
    this.publishing = deps.publishing;
    this.versions = deps.versions;
    this.repos = deps.repos;
  }

  /**
   * An empty model, as create_repo makes one (MODEL_EXISTS, with `details`,
   * if it is there). It has no version until the first commit.
   */
  createRepo(name: string, details: Record<string, unknown> = {}): { name: string } {
    const { catalog } = this;
    checkNewName(name);
    return catalog.db.transaction(() => {
      if (catalog.models.model(name)) throw new CairnError('MODEL_EXISTS', `model ${name} already exists`, details);
      catalog.models.createModel(name, catalog.now().toISOString());
      return { name };
    });
  }

  /** How each file is to be sent (preupload), with what the branch holds at its path now: a client leaves out a file it already holds. */
  async uploadModes(name: string, branch: string, files: unknown): Promise<UploadMode[]> {
    if (!Array.isArray(files)) throw new CairnError('INVALID_ARGUMENT', 'files must be a list of {path, size, sample}');
    const model = this.catalog.requireModel(name);
    const head = this.repos.head(model, branch);
    const current = new Map((head ? this.catalog.models.files(head.id) : []).map((f) => [f.path, f]));
    const modes: UploadMode[] = [];
    for (const f of files as Array<{ path?: unknown; size?: unknown }>) {
      const path = checkFilePath(f?.path);
      if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) throw new CairnError('INVALID_ARGUMENT', `files[].size of ${path} must be a whole number of bytes`);
      const uploadMode = f.size <= REGULAR_MAX_BYTES ? 'regular' : 'lfs';
      const now = current.get(path);
      let oid: string | null = null;
      if (now && uploadMode === 'lfs') oid = now.blob_digest.slice('sha256:'.length);
      // a git blob id costs a read of the file: only when it could be the same
      else if (now && now.size === f.size) oid = await this.gitBlobId(now.blob_digest, now.size);
      modes.push({ path, uploadMode, shouldIgnore: false, oid });
    }
    return modes;
  }

  /**
   * A commit (the Hub's NDJSON items, parsed): a header first
   * (`{summary, description, parentCommit}`), then `file` (inline base64 or
   * utf-8 content, stored as it comes), `lfsFile` (content uploaded before,
   * named by sha256), `deletedFile` and `deletedFolder` items. Publishes the
   * new version and answers it with its publish commit.
   */
  async commit(input: { name: string; branch: string; items: AsyncIterable<unknown>; actor: string; caller: Caller }): Promise<HubCommitResult> {
    const { name, branch, actor, caller } = input;
    const model = this.catalog.requireModel(name);
    this.repos.head(model, branch); // an unknown branch fails before any byte is stored
    let header: { summary: string; description: string; parentCommit?: string } | undefined;
    const operations: Operation[] = [];
    for await (const item of input.items) {
      const { key, value } = (item ?? {}) as { key?: unknown; value?: Record<string, unknown> };
      if (!value || typeof value !== 'object') throw new CairnError('INVALID_ARGUMENT', `each line is {"key": …, "value": {…}}; got ${JSON.stringify(item)?.slice(0, 80)}`);
      if (key === 'header') {
        header = commitHeader(value);
        continue;
      }
      if (!header) throw new CairnError('INVALID_ARGUMENT', 'the first line of a commit is its header ({"key": "header", …})');
      operations.push(await this.operation(String(key), value, caller));
    }
    if (!header) throw new CairnError('INVALID_ARGUMENT', 'a commit needs a header line ({"key": "header", "value": {"summary": …}})');
    const named = VERSION_TRAILER.exec(header.description)?.[1];
    for (let attempt = 0; ; attempt++) {
      try {
        const version = await this.publishOnce(model.name, branch, header, named === undefined ? undefined : checkNewVersion(named), operations, actor, caller);
        const commits = await this.versions.commitsOf(name, [version.version]);
        return { version, commit: commits.get(version.version)! };
      } catch (err) {
        if (!(err instanceof BranchMoved)) throw err;
        if (header.parentCommit !== undefined || attempt >= RACE_RETRIES) {
          throw new CairnError('PRECONDITION_FAILED', `${name}@${branch} moved while this commit was published${header.parentCommit ? ` (parentCommit ${header.parentCommit} is no longer its head)` : ''}; commit again`);
        }
      }
    }
  }

  private async publishOnce(
    name: string,
    branch: string,
    header: { summary: string; description: string; parentCommit?: string },
    named: string | undefined,
    operations: Operation[],
    actor: string,
    caller: Caller,
  ): Promise<VersionDoc> {
    const { models } = this.catalog;
    const model = this.catalog.requireModel(name);
    const head = this.repos.head(model, branch);
    if (header.parentCommit !== undefined) {
      const headCommit = head && (await this.versions.commitsOf(name, [head.version])).get(head.version);
      if (headCommit !== header.parentCommit) {
        throw new CairnError('PRECONDITION_FAILED', `parentCommit ${header.parentCommit} is not the head of ${name}@${branch} (${headCommit ?? 'no version yet'}): the branch moved; commit again on top of it`);
      }
    }
    const files = applyOperations(name, head ? models.files(head.id).map((f) => [f.path, f.blob_digest] as const) : [], operations);
    const version = named ?? this.nextVersion(model);
    const lastNumber = model.last_number;
    const message = header.description.trim() === '' ? header.summary : `${header.summary}\n\n${header.description.trim()}`;
    return this.publishing.publish({
      name,
      version,
      files,
      message,
      aliases: branch === MAIN ? [] : [branch],
      parents: head ? [{ ref: `${name}@${head.version}`, relation: 'derived-from' }] : [],
      actor,
      caller,
      // the version number it was named after, and the version it carries files over from, are still what they were
      precondition: () => {
        const now = models.model(name);
        if (!now || now.last_number !== lastNumber || this.repos.head(now, branch)?.id !== head?.id) throw new BranchMoved();
      },
    });
  }

  /**
   * The version string of a commit that names none: the version's number
   * (the next one of the model), or when a version or an alias already has
   * that string, `<number>.<k>` with the first free k.
   */
  private nextVersion(model: ModelRow): string {
    const { models } = this.catalog;
    const number = String(model.last_number + 1);
    const taken = (v: string) => models.versionByString(model.id, v) !== undefined || models.aliasTarget(model.id, v) !== undefined;
    if (!taken(number)) return number;
    let k = 1;
    while (taken(`${number}.${k}`)) k++;
    return `${number}.${k}`;
  }

  /** One operation of a commit: inline content is stored now (its digest is what the commit holds). */
  private async operation(key: string, value: Record<string, unknown>, caller: Caller): Promise<Operation> {
    switch (key) {
      case 'file': {
        const path = checkFilePath(value.path);
        if (value.oldPath !== undefined) throw new CairnError('INVALID_ARGUMENT', `${path}: renames (oldPath) are not supported; send the content`);
        if (typeof value.content !== 'string') throw new CairnError('INVALID_ARGUMENT', `${path}: content must be a string`);
        const encoding = value.encoding ?? 'utf-8';
        if (encoding !== 'base64' && encoding !== 'utf-8') throw new CairnError('INVALID_ARGUMENT', `${path}: encoding must be base64 or utf-8`);
        const bytes = Buffer.from(value.content, encoding === 'base64' ? 'base64' : 'utf8');
        const stored = await this.publishing.storeFile(oneChunk(bytes), caller);
        return { path, digest: stored.digest };
      }
      case 'lfsFile': {
        const path = checkFilePath(value.path);
        if (value.algo !== undefined && value.algo !== 'sha256') throw new CairnError('INVALID_ARGUMENT', `${path}: algo must be sha256`);
        if (typeof value.oid !== 'string' || !/^[0-9a-f]{64}$/.test(value.oid)) throw new CairnError('INVALID_DIGEST', `${path}: oid must be the file's sha256, 64 lowercase hex digits`);
        const digest = `sha256:${value.oid}`;
        const blob = this.catalog.usableBlob(digest, caller);
        // content this caller has not uploaded (or may not read) does not exist for it
        if (!blob) throw new CairnError('UNKNOWN_BLOB', `${path}: no uploaded content with sha256 ${value.oid}; upload it through the LFS batch API first`);
        if (value.size !== undefined && value.size !== blob.size) {
          throw new CairnError('DIGEST_MISMATCH', `${path}: the content with sha256 ${value.oid} is ${blob.size} bytes, not ${String(value.size)}`, { actual_size: blob.size });
        }
        return { path, digest };
      }
      case 'deletedFile':
        return { path: checkFilePath(value.path), digest: null };
      case 'deletedFolder': {
        const folder = typeof value.path === 'string' ? value.path.replace(/\/+$/, '') : value.path;
        return { folder: checkFilePath(folder) };
      }
      default:
        throw new CairnError('INVALID_ARGUMENT', `unknown commit operation ${JSON.stringify(key)}: header, file, lfsFile, deletedFile or deletedFolder`);
    }
  }

  /** The git blob id (sha1 of `blob <size>\0<content>`) of a stored file, as the Hub gives a regular file's oid. */
  private async gitBlobId(digest: string, size: number): Promise<string> {
    const hash = createHash('sha1').update(`blob ${size}\0`);
    const { stream } = await this.chunks.open(digest);
    for await (const piece of stream) hash.update(piece as Buffer);
    return hash.digest('hex');
  }
}

function commitHeader(value: Record<string, unknown>): { summary: string; description: string; parentCommit?: string } {
  const { summary, description, parentCommit } = value;
  if (typeof summary !== 'string' || summary.trim() === '') throw new CairnError('INVALID_ARGUMENT', 'the header needs a summary (the commit title)');
  if (description !== undefined && description !== null && typeof description !== 'string') throw new CairnError('INVALID_ARGUMENT', 'the header description must be a string');
  if (parentCommit !== undefined && parentCommit !== null && (typeof parentCommit !== 'string' || !/^[0-9a-f]{40}$/.test(parentCommit))) {
    throw new CairnError('INVALID_ARGUMENT', 'parentCommit must be a commit id (40 lowercase hex digits)');
  }
  return { summary: summary.trim(), description: description ?? '', ...(typeof parentCommit === 'string' ? { parentCommit } : {}) };
}

/** The files of the new version: those at the head, changed by the operations in order. */
function applyOperations(name: string, current: ReadonlyArray<readonly [string, string]>, operations: Operation[]): Array<{ path: string; digest: string }> {
  const files = new Map(current);
  for (const op of operations) {
    if ('folder' in op) {
      const prefix = `${op.folder}/`;
      const inside = [...files.keys()].filter((p) => p.startsWith(prefix));
      if (inside.length === 0) throw new CairnError('FILE_NOT_FOUND', `${name} has no folder ${op.folder} to delete`);
      for (const p of inside) files.delete(p);
    } else if (op.digest === null) {
      if (!files.delete(op.path)) throw new CairnError('FILE_NOT_FOUND', `${name} has no file ${op.path} to delete`);
    } else {
      files.set(op.path, op.digest);
    }
  }
  return [...files].map(([path, digest]) => ({ path, digest }));
}

/** Bytes held already (an inline file: one bounded commit line) as the stream storeFile takes. */
async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
