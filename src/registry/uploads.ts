// Resumable upload sessions, and which stored content a caller may name.
// This service is the one owner of a session's state on this thread: its row
// (offset, chunks, layout), the lock that lets one request at a time write to
// it, and its running hash (a handle to a hash kept in a codec worker, dropped
// when the session ends, whoever ends it: finish, cancel, or gc's expiry).
// A session belongs to the token that started it: to any other it does not exist.
import { createHash, randomBytes } from 'node:crypto';
import type { Caller } from '../access.ts';
import type { BlobDoc, UploadDoc } from '../api/index.ts';
import type { ChunkStore } from '../blobs/chunk-store.ts';
import type { RunningHash } from '../codecs/codec-pool.ts';
import { CairnError } from '../errors.ts';
import { checkDigest } from '../identifiers.ts';
import type { UploadQueries } from '../metadata/uploads.ts';
import type { Catalog } from './catalog.ts';

export class Uploads {
  /** Sessions with a request in progress: one writer at a time. */
  private readonly busy = new Set<string>();
  /** The running sha256 of each session this process has seen from its first byte on. */
  private readonly hashes = new Map<string, RunningHash>();

  constructor(
    private readonly catalog: Catalog,
    private readonly uploads: UploadQueries,
    private readonly chunks: ChunkStore,
  ) {}

  create(caller: Caller): UploadDoc {
    const id = randomBytes(16).toString('base64url');
    const row = this.uploads.create(id, this.catalog.now().toISOString(), caller.principal ?? null);
    return uploadDoc(row);
  }

  get(id: string, caller: Caller): UploadDoc {
    return uploadDoc(this.require(id, caller));
  }

  /**
   * Appends a request body at `start` (which must be the current offset).
   * Every byte received is stored, even when the client goes away mid-way,
   * so the session resumes from exactly what the server has.
   */
  append(id: string, start: number | undefined, source: AsyncIterable<Uint8Array>, caller: Caller): Promise<UploadDoc> {
    return this.locked(id, caller, async () => {
      const row = this.require(id, caller);
      if (start !== undefined && start !== row.size) {
        throw new CairnError('UPLOAD_OFFSET_MISMATCH', `upload ${id} is at offset ${row.size}, not ${start}`, { offset: row.size });
      }
      // The session's running hash sees the bytes too, as long as it has
      // seen every byte stored so far; otherwise (this process started after
      // the session did) finishing reads the content back.
      // Each request continues the chunking of the one before (its last
      // chunk is cut again with the new bytes): the session's chunks are
      // those of a single upload of the same bytes, whatever the part sizes.
      let hash = this.hashes.get(id);
      if (!hash && row.size === 0) this.hashes.set(id, (hash = this.chunks.runningHash()));
      await this.chunks.store(source, {
        startOffset: row.size,
        keepPartial: true,
        hash,
        resume: this.uploads.resumePoint(id),
        onLayout: (layout) => this.uploads.setLayout(id, layout),
        onChunks: (chunks) => this.uploads.appendChunks(id, chunks),
      });
      return uploadDoc(this.require(id, caller));
    });
  }

  /** Checks the digest of everything received and turns the session into a blob the caller may use. */
  async finish(id: string, digest: unknown, source: AsyncIterable<Uint8Array> | undefined, caller: Caller): Promise<BlobDoc> {
    const expected = checkDigest(digest);
    if (source) await this.append(id, undefined, source, caller);
    return this.locked(id, caller, async () => {
      const row = this.require(id, caller);
      const chunks = this.uploads.chunks(id);
      const running = await this.hashes.get(id)?.digest();
      let actual: string;
      if (running && running.size === row.size) {
        actual = running.digest;
      } else {
        // This process has not seen every byte (it restarted): read them back.
        const hash = createHash('sha256');
        for (const c of chunks) hash.update(await this.chunks.readChunk(c.digest));
        actual = `sha256:${hash.digest('hex')}`;
      }
      if (actual !== expected) {
        throw new CairnError('DIGEST_MISMATCH', `upload ${id} holds ${row.size} bytes with digest ${actual}, not ${expected}`, {
          actual,
          size: row.size,
        });
      }
      this.catalog.db.transaction(() => {
        this.catalog.blobs.addBlob(actual, row.size, chunks);
        if (row.owner !== null) this.catalog.blobs.addGrant(actual, row.owner);
        this.uploads.delete(id);
      });
      this.forget(id);
      return { digest: actual, size: row.size };
    });
  }

  cancel(id: string, caller: Caller): Promise<void> {
    return this.locked(id, caller, async () => {
      this.uploads.delete(id);
      this.forget(id);
    });
  }

  /** A session that is gone (finished, cancelled, expired by gc): its running hash goes too. */
  forget(id: string): void {
    this.hashes.get(id)?.drop();
    this.hashes.delete(id);
  }

  /** A stored blob the caller may name (see Catalog.usableBlob); undefined otherwise, as if it were not stored. */
  hasBlob(digest: string, caller: Caller): { size: number } | undefined {
    const blob = this.catalog.usableBlob(checkDigest(digest), caller);
    return blob ? { size: blob.size } : undefined;
  }

  private require(id: string, caller: Caller) {
    const row = typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? this.uploads.get(id) : undefined;
    // with auth off (no principal) every session is everyone's
    if (!row || (caller.principal !== undefined && row.owner !== caller.principal)) throw new CairnError('UPLOAD_NOT_FOUND', `no upload session ${id}`);
    return row;
  }

  private async locked<T>(id: string, caller: Caller, fn: () => Promise<T>): Promise<T> {
    this.require(id, caller);
    if (this.busy.has(id)) throw new CairnError('UPLOAD_BUSY', `upload ${id} has another request in progress`);
    this.busy.add(id);
    try {
      return await fn();
    } finally {
      this.busy.delete(id);
    }
  }
}

function uploadDoc(row: { id: string; size: number; created_at: string; updated_at: string }): UploadDoc {
  return { id: row.id, offset: row.size, created_at: row.created_at, updated_at: row.updated_at };
}
