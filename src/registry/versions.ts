// Reading versions: documents, pages, one file's bytes, a whole version as a
// tar stream, and what changed from one version to another.
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { type Caller, mayRead } from '../access.ts';
import type { ChunkMap, FileDoc, VersionDiff, VersionDoc, VersionList } from '../api/index.ts';
import type { BlobStream, ChunkStore } from '../blobs/chunk-store.ts';
import { canonicalJson } from '../canonical-json.ts';
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { checkPathShape, LATEST, parseLimit, parseNameRef } from '../identifiers.ts';
import { type Catalog, fileDoc } from './catalog.ts';

export interface VersionsDeps {
  catalog: Catalog;
  chunks: ChunkStore;
  /** lifetime of the URLs in chunk maps (default DEFAULT_PRESIGN_SECONDS) */
  presignSeconds?: number;
}

export const DEFAULT_PRESIGN_SECONDS = 300;

export class Versions {
  private readonly catalog: Catalog;
  private readonly chunks: ChunkStore;
  private readonly presignSeconds: number;

  constructor(deps: VersionsDeps) {
    this.catalog = deps.catalog;
    this.chunks = deps.chunks;
    this.presignSeconds = deps.presignSeconds ?? DEFAULT_PRESIGN_SECONDS;
  }

  get(name: string, ref: string, caller: Caller): VersionDoc {
    return this.catalog.version(name, ref, caller);
  }

  /** Newest first. */
  list(name: string, query: { limit?: unknown; cursor?: unknown }): VersionList {
    const model = this.catalog.requireModel(name);
    const limit = parseLimit(query.limit);
    const list = `versions:${model.id}`;
    const rows = this.catalog.models.listVersions(model.id, { beforeNumber: this.catalog.cursors.decode<number>(list, query.cursor, 'number'), limit: limit + 1 });
    const { page, next_cursor } = this.catalog.cursors.page(list, rows, limit, (last) => last.number);
    return { versions: page.map((r) => this.catalog.summary(r)), next_cursor };
  }

  /**
   * A version as Hugging Face clients name it — `main` (the latest version),
   * the id of its publish commit in the lineage repository (what those
   * clients pin to and cache under), or any ref — with that commit. The id
   * was recorded with the publish: no wait for the git mirror.
   */
  atRevision(name: string, revision: string, caller: Caller): { version: VersionDoc; commit: string } {
    const found = this.revision(name, revision, caller);
    // every event has its id from the transaction that recorded it (older ones get theirs at startup)
    if (!found.commit) throw new CairnError('COMMIT_PENDING', `${name}@${found.version.version} has no lineage commit recorded`);
    return { version: found.version, commit: found.commit };
  }

  /**
   * The id of the lineage commit that published `name@version`, recorded in
   * the publish's own transaction (the git mirror may write it a moment
   * later): what a Hugging Face commit returns as its `commitOid`.
   */
  publishCommit(name: string, version: string): string {
    const model = this.catalog.requireModel(name);
    const commit = this.catalog.events.publishCommit(model.id, version);
    if (!commit) throw new CairnError('VERSION_NOT_FOUND', `${name}@${version} was never published`);
    return commit;
  }

  /**
   * The publish commits of versions of a model (the commit ids Hugging Face
   * clients see): recorded with each publish, so none is ever pending.
   */
  commitsOf(name: string, versions: readonly string[]): Map<string, string> {
    return new Map(versions.map((v) => [v, this.publishCommit(name, v)] as const));
  }

  private revision(name: string, revision: string, caller: Caller): { version: VersionDoc; commit: string | null } {
    const { catalog } = this;
    const model = catalog.requireModel(name);
    const byCommit = /^[0-9a-f]{40}$/.test(revision) ? catalog.events.versionPublishedBy(model.id, revision) : undefined;
    // `main` is the branch HF clients ask for by default; a version or alias of that name wins
    const main = revision === 'main' && !catalog.models.versionByString(model.id, 'main') && !catalog.models.aliasTarget(model.id, 'main');
    const row = catalog.resolve(model, byCommit ?? (main ? LATEST : revision));
    return { version: catalog.versionDoc(model, row, caller), commit: catalog.events.publishCommit(model.id, row.version) };
  }

  /** Whether a version has a file at `path` (false as well for an unknown model, version or bad path). */
  hasFile(name: string, ref: string, path: string): boolean {
    try {
      return this.lookUpFile(name, ref, path).file !== undefined;
    } catch (err) {
      if (err instanceof CairnError) return false;
      throw err;
    }
  }

  private lookUpFile(name: string, ref: string, path: string) {
    const model = this.catalog.requireModel(name);
    const row = this.catalog.resolve(model, ref);
    // a lookup only: paths are stored in NFC, and whatever was stored before stays reachable as it was
    checkPathShape(path);
    const file = this.catalog.models.file(row.id, path) ?? this.catalog.models.file(row.id, path.normalize('NFC'));
    return { model, row, file };
  }

  /** One file of a version. */
  file(name: string, ref: string, path: string, caller: Caller): { version: VersionDoc; file: FileDoc } {
    const { model, row, file } = this.lookUpFile(name, ref, path);
    if (!file) throw new CairnError('FILE_NOT_FOUND', `${model.name}@${row.version} has no file ${path}`);
    return { version: this.catalog.versionDoc(model, row, caller), file: fileDoc(file) };
  }

  /**
   * A file's chunk map: the chunks overlapping `range` (inclusive; absent:
   * the whole file; `end` past the file is clipped), each with a URL that
   * fetches it straight from storage. The caller must be allowed to read the
   * file: `file` checked that. No byte is verified here — the client decodes
   * and checks every chunk against its digest, and the file against its own.
   */
  async chunkMap(file: FileDoc, range?: { start: number; end?: number }): Promise<ChunkMap> {
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? file.size - 1, file.size - 1);
    if (range && (start >= file.size || end < start)) {
      throw new CairnError('RANGE_NOT_SATISFIABLE', `${file.path} has ${file.size} bytes: range ${start}-${range.end ?? ''} is not satisfiable`);
    }
    // the URLs are signed now, by the real clock (S3 checks them against its own)
    const expiresAt = new Date(Date.now() + this.presignSeconds * 1000);
    const chunks = await this.chunks.directChunks(file.digest, { start, end }, this.presignSeconds);
    return {
      path: file.path,
      size: file.size,
      digest: file.digest,
      start,
      end,
      expires_at: expiresAt.toISOString(),
      chunks: chunks.map((c) => ({ offset: c.offset, size: c.size, digest: c.digest, codec: c.codec, stored_size: c.storedSize, url: c.url })),
    };
  }

  /** A file's bytes, every chunk verified; `range` is inclusive and already checked against its size. */
  open(file: FileDoc, range?: { start: number; end: number }): Promise<BlobStream> {
    return this.chunks.open(file.digest, range);
  }

  /** Random access to stored content (bounded reads, every chunk verified), for work that reads a file in pieces (derive). */
  source(digest: string, path: string): FileSource {
    return { path, ...this.chunks.blobReader(digest) };
  }

  /** Keeps content from gc until the returned function is called (a version deleted meanwhile loses its bytes only after). */
  hold(digests: Iterable<string>): () => void {
    return this.chunks.hold(digests);
  }

  /** All files of a version as one tar stream. Every chunk is verified; a failure destroys the stream. */
  async archive(name: string, ref: string, caller: Caller): Promise<{ version: VersionDoc; stream: Readable }> {
    const version = this.get(name, ref, caller);
    // every file is held from now on: gc keeps them even if the version is deleted meanwhile
    const release = this.chunks.hold(version.files.map((f) => f.digest));
    // Open the first file before answering, so a broken start is still an error status.
    let first: BlobStream | undefined;
    try {
      first = version.files[0] ? await this.open(version.files[0]) : undefined;
    } catch (err) {
      release();
      throw err;
    }
    const pack = tar.pack();
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    out.once('close', release);
    const mtime = new Date(version.created_at);
    const write = async () => {
      for (const [i, file] of version.files.entries()) {
        const opened = i === 0 && first ? first : await this.open(file);
        const entry = pack.entry({ name: file.path, size: file.size, mtime, mode: 0o644, type: 'file' });
        await pipeline(opened.stream, entry);
      }
      pack.finalize();
    };
    pipeline(pack, out).catch((err) => out.destroy(err));
    write().catch((err) => {
      first?.stream.destroy();
      pack.destroy(err);
      out.destroy(err);
    });
    return { version, stream: out };
  }

  /**
   * `name@ref` against `from` — a ref of the same model, or `<name>@<ref>`
   * of any model the caller may read: files by path (a file whose content
   * moved to another path is `renamed`, found by digest), what the format
   * analysis says changed in each (size, format, parameters, dtypes), the
   * metadata keys that differ, and the bytes their chunks share.
   */
  diff(name: string, ref: string, from: unknown, caller: Caller): VersionDiff {
    if (typeof from !== 'string' || from === '') throw new CairnError('INVALID_ARGUMENT', 'from is required: a ref of this model, or <name>@<ref>');
    const base = from.includes('@') ? parseNameRef(from) : { name, ref: from };
    // by name alone, before looking anything up: no oracle of other tenants' versions
    if (!mayRead(caller, base.name)) throw new CairnError('FORBIDDEN', `this token may not read model ${base.name}`);
    const toDoc = this.get(name, ref, caller);
    const fromDoc = this.get(base.name, base.ref, caller);
    const { blobs } = this.catalog;
    const fromBlobs = [...new Set(fromDoc.files.map((f) => f.digest))];
    const toBlobs = [...new Set(toDoc.files.map((f) => f.digest))];
    const before = new Map(fromDoc.files.map((f) => [f.path, f]));
    const after = new Map(toDoc.files.map((f) => [f.path, f]));
    // renames: a new path holding the content of a path that is gone (paired in path order)
    const goneByDigest = new Map<string, FileDoc[]>();
    for (const f of fromDoc.files) if (!after.has(f.path)) goneByDigest.set(f.digest, [...(goneByDigest.get(f.digest) ?? []), f]);
    const renamedFrom = new Map<string, FileDoc>();
    for (const f of toDoc.files) {
      const source = before.has(f.path) ? undefined : goneByDigest.get(f.digest)?.shift();
      if (source) renamedFrom.set(f.path, source);
    }
    const movedAway = new Set([...renamedFrom.values()].map((f) => f.path));
    const paths = [...new Set([...[...before.keys()].filter((p) => !movedAway.has(p)), ...after.keys()])].sort();
    const files: VersionDiff['files'] = paths.map((path) => {
      const b = after.get(path);
      const renamed = renamedFrom.get(path);
      const a = renamed ?? before.get(path);
      const status = renamed ? 'renamed' : !a ? 'added' : !b ? 'removed' : a.digest === b.digest ? 'unchanged' : 'changed';
      const shared = !b ? 0 : status === 'unchanged' || status === 'renamed' ? b.size : blobs.sharedBytes(b.digest, fromBlobs);
      return {
        path,
        status,
        ...(renamed ? { from_path: renamed.path } : {}),
        from: a ? { size: a.size, digest: a.digest } : null,
        to: b ? { size: b.size, digest: b.digest } : null,
        shared_bytes: shared,
        ...(status === 'changed' && a && b ? { delta: fileDelta(a, b) } : {}),
      };
    });
    const count = (s: string) => files.filter((f) => f.status === s).length;
    return {
      from: { name: fromDoc.name, version: fromDoc.version, digest: fromDoc.digest },
      to: { name: toDoc.name, version: toDoc.version, digest: toDoc.digest },
      files,
      metadata: metadataDiff(fromDoc.metadata, toDoc.metadata),
      summary: {
        added: count('added'),
        removed: count('removed'),
        changed: count('changed'),
        renamed: count('renamed'),
        unchanged: count('unchanged'),
        from_bytes: fromDoc.size,
        to_bytes: toDoc.size,
        from_parameters: fromDoc.summary.parameters ?? null,
        to_parameters: toDoc.summary.parameters ?? null,
        shared_bytes: files.reduce((n, f) => n + f.shared_bytes, 0),
        new_stored_bytes: blobs.newStoredBytes(toBlobs, fromBlobs),
      },
    };
  }
}

type FileDelta = NonNullable<VersionDiff['files'][number]['delta']>;

/** What the format analysis of two contents of one path says changed. */
function fileDelta(a: FileDoc, b: FileDoc): FileDelta {
  const delta: FileDelta = { size: b.size - a.size };
  if (a.format !== b.format) delta.format = { from: a.format, to: b.format };
  if ((a.parameters ?? null) !== (b.parameters ?? null)) delta.parameters = { from: a.parameters ?? null, to: b.parameters ?? null };
  const dtypes: NonNullable<FileDelta['dtypes']> = {};
  for (const dtype of new Set([...Object.keys(a.dtypes ?? {}), ...Object.keys(b.dtypes ?? {})])) {
    const before = a.dtypes?.[dtype] ?? 0;
    const after = b.dtypes?.[dtype] ?? 0;
    if (before !== after) dtypes[dtype] = { from: before, to: after };
  }
  if (Object.keys(dtypes).length > 0) delta.dtypes = dtypes;
  return delta;
}

/** Metadata keys that differ, as dotted paths into nested objects (arrays compare whole). */
export function metadataDiff(from: Record<string, unknown>, to: Record<string, unknown>): VersionDiff['metadata'] {
  const a = flatten(from);
  const b = flatten(to);
  const out: VersionDiff['metadata'] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (!b.has(key)) out.push({ key, status: 'removed', from: a.get(key) });
    else if (!a.has(key)) out.push({ key, status: 'added', to: b.get(key) });
    else if (canonicalJson(a.get(key)) !== canonicalJson(b.get(key))) out.push({ key, status: 'changed', from: a.get(key), to: b.get(key) });
  }
  return out;
}

function flatten(value: Record<string, unknown>, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) flatten(v as Record<string, unknown>, key, out);
    else out.set(key, v);
  }
  return out;
}
