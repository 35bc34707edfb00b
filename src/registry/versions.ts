// Reading versions: documents, pages, one file's bytes, a whole version as a
// tar stream, and what changed from one version to another.
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { type Caller, mayRead } from '../access.ts';
import type { FileDoc, VersionDiff, VersionDoc, VersionList } from '../api/index.ts';
import type { BlobStream, ChunkStore } from '../blobs/chunk-store.ts';
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { checkPathShape, LATEST, parseLimit, parseNameRef } from '../identifiers.ts';
import { type Catalog, fileDoc } from './catalog.ts';

export interface VersionsDeps {
  catalog: Catalog;
  chunks: ChunkStore;
}

export class Versions {
  private readonly catalog: Catalog;
  private readonly chunks: ChunkStore;

  constructor(deps: VersionsDeps) {
    this.catalog = deps.catalog;
    this.chunks = deps.chunks;
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
    const page = rows.slice(0, limit);
    return {
      versions: page.map((r) => this.catalog.summary(r)),
      next_cursor: rows.length > limit ? this.catalog.cursors.encode(list, page[page.length - 1]!.number) : null,
    };
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

  private revision(name: string, revision: string, caller: Caller): { version: VersionDoc; commit: string | null } {
    const { catalog } = this;
    const model = catalog.requireModel(name);
    const byCommit = /^[0-9a-f]{40}$/.test(revision) ? catalog.events.versionPublishedBy(model.id, revision) : undefined;
    // `main` is the branch HF clients ask for by default; a version or alias of that name wins
    const main = revision === 'main' && !catalog.models.versionByString(model.id, 'main') && !catalog.models.aliasTarget(model.id, 'main');
    const row = catalog.resolve(model, byCommit ?? (main ? LATEST : revision));
    return { version: catalog.versionDoc(model, row, caller), commit: catalog.events.publishCommit(model.id, row.version) };
  }

  /** One file of a version. */
  file(name: string, ref: string, path: string, caller: Caller): { version: VersionDoc; file: FileDoc } {
    const model = this.catalog.requireModel(name);
    const row = this.catalog.resolve(model, ref);
    // a lookup only: paths are stored in NFC, and whatever was stored before stays reachable as it was
    checkPathShape(path);
    const file = this.catalog.models.file(row.id, path) ?? this.catalog.models.file(row.id, path.normalize('NFC'));
    if (!file) throw new CairnError('FILE_NOT_FOUND', `${model.name}@${row.version} has no file ${path}`);
    return { version: this.catalog.versionDoc(model, row, caller), file: fileDoc(file) };
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
   * The files of `name@ref` against those of `from` — a ref of the same
   * model, or `<name>@<ref>` of any model the caller may read — with the
   * bytes their chunks share.
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
    const files: VersionDiff['files'] = [...new Set([...before.keys(), ...after.keys()])].sort().map((path) => {
      const a = before.get(path);
      const b = after.get(path);
      const status = !a ? 'added' : !b ? 'removed' : a.digest === b.digest ? 'unchanged' : 'changed';
      const shared = !b ? 0 : status === 'unchanged' ? b.size : blobs.sharedBytes(b.digest, fromBlobs);
      return { path, status, from: a ? { size: a.size, digest: a.digest } : null, to: b ? { size: b.size, digest: b.digest } : null, shared_bytes: shared };
    });
    const count = (s: string) => files.filter((f) => f.status === s).length;
    return {
      from: { name: fromDoc.name, version: fromDoc.version, digest: fromDoc.digest },
      to: { name: toDoc.name, version: toDoc.version, digest: toDoc.digest },
      files,
      summary: {
        added: count('added'),
        removed: count('removed'),
        changed: count('changed'),
        unchanged: count('unchanged'),
        to_bytes: toDoc.size,
        shared_bytes: files.reduce((n, f) => n + f.shared_bytes, 0),
        new_stored_bytes: blobs.newStoredBytes(toBlobs, fromBlobs),
      },
    };
  }
}
