// Resumable upload sessions, and which stored content a caller may name.
// This service is the one owner of a session's state on this thread: its row
// (offset, chunks, layout), the lock that lets one request at a time write to
// it, and its running hash (a handle to a hash kept in a codec worker, dropped
// when the session ends, whoever ends it: finish, cancel, or gc's expiry).
// A session belongs to the token that started it: to any other it does not exist.
//
// A session's bytes arrive either through the server (PATCH: the chunk store
// cuts and stores them) or, with S3 storage, as chunks a client cut, encoded
// and put into the bucket itself (a direct push): it asks which chunks are
// missing, gets presigned PUTs into the session's staging area for those,
// then appends the file as a chunk list, which the chunk store verifies
// (ChunkStore.adopt) before anything is recorded. Either way finishing is
// the same: the digest of everything, checked against the claim.
import { createHash, randomBytes } from 'node:crypto';
import type { Caller } from '../access.ts';
import { MAX_DIRECT_CHUNKS, type BlobDoc, type MissingChunks, type StagingUrls, type UploadDoc } from '../api/index.ts';
import type { ChunkStore } from '../blobs/chunk-store.ts';
import { Staging } from '../blobs/staging.ts';
import type { RunningHash } from '../codecs/codec-pool.ts';
import { CairnError } from '../errors.ts';
import { checkDigest } from '../identifiers.ts';
import type { UploadQueries, UploadRow } from '../metadata/uploads.ts';
import type { Catalog } from './catalog.ts';

/** Bytes a session may have staged and not yet appended (the URLs it holds can write at most this much). */
export const STAGING_LIMIT = 2 * 1024 * 1024 * 1024;
/** Codec byte and byte-grouped headers: an encoded chunk is at most this much larger than its raw bytes. */
const ENCODING_OVERHEAD = 64;
const DEFAULT_PRESIGN_SECONDS = 300;

export class Uploads {
  /** Sessions with a request in progress: one writer at a time. */
  private readonly busy = new Set<string>();
  /** The running sha256 of each session this process has seen from its first byte on. */
  private readonly hashes = new Map<string, RunningHash>();
  /** where direct pushes put their chunks before they are checked */
  private readonly staging: Staging;

  constructor(
    private readonly catalog: Catalog,
    private readonly uploads: UploadQueries,
    private readonly chunks: ChunkStore,
    private readonly options: { presignSeconds?: number } = {},
  ) {
    this.staging = new Staging(chunks, catalog.blobs);
  }

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
      const { row, hash } = this.appendAt(id, start, caller);
      // Each request continues the chunking of the one before (its last
      // chunk is cut again with the new bytes): the session's chunks are
      // those of a single upload of the same bytes, whatever the part sizes.
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

  /**
   * Of these chunk digests, those a direct push must upload: not stored, or
   * stored only in content the caller may not use (it cannot tell which).
   */
  missingChunks(body: unknown, caller: Caller): MissingChunks {
    this.requireDirect();
    const digests = listOf(body, 'digests', (d) => checkDigest(d));
    const usable = this.catalog.chunkUsability(caller);
    return { missing: [...new Set(digests)].filter((d) => !usable(d)) };
  }

  /**
   * Presigned PUTs into the session's staging area, one per chunk, each for
   * exactly the stored size the client names. What a session has staged and
   * not appended is bounded (STAGING_LIMIT): the URLs can write no more.
   */
  async stage(id: string, body: unknown, caller: Caller): Promise<StagingUrls> {
    this.requireDirect();
    this.require(id, caller);
    const maxStored = this.chunks.maxChunkSize + ENCODING_OVERHEAD;
    const chunks = listOf(body, 'chunks', (c) => {
      const { digest, stored_size: storedSize } = (c ?? {}) as Record<string, unknown>;
      return { digest: checkDigest(digest), storedSize: integerIn(storedSize, 1, maxStored, 'stored_size') };
    });
    this.catalog.db.transaction(() => {
      const total = this.uploads.stage(id, chunks);
      if (total > STAGING_LIMIT) {
        throw new CairnError('STAGING_LIMIT', `upload ${id} would have ${total} bytes staged and not appended; at most ${STAGING_LIMIT}: append what is staged first`, {
          max_bytes: STAGING_LIMIT,
        });
      }
    });
    const seconds = this.options.presignSeconds ?? DEFAULT_PRESIGN_SECONDS;
    const expires = new Date(Date.now() + seconds * 1000).toISOString();
    const urls = await Promise.all(chunks.map(async (c) => ({ digest: c.digest, url: await this.staging.url(id, c.digest, c.storedSize, seconds) })));
    return { expires_at: expires, urls };
  }

  /**
   * Appends chunks at `offset` (the session's offset): each one staged for
   * this session or already stored and usable by the caller, verified
   * (Staging.adopt) before it is recorded. The chunks verified before a
   * failing one stay appended; the session says where it stands.
   */
  appendChunks(id: string, body: unknown, caller: Caller): Promise<UploadDoc> {
    this.requireDirect();
    const offset = integerIn(((body ?? {}) as Record<string, unknown>).offset, 0, Number.MAX_SAFE_INTEGER, 'offset');
    const maxSize = this.chunks.maxChunkSize;
    const pushed = listOf(body, 'chunks', (c) => {
      const { digest, size } = (c ?? {}) as Record<string, unknown>;
      return { digest: checkDigest(digest), size: integerIn(size, 1, maxSize, "a chunk's size") };
    });
    if (pushed.length === 0) throw new CairnError('INVALID_ARGUMENT', 'chunks must not be empty');
    return this.locked(id, caller, async () => {
      const { row, hash } = this.appendAt(id, offset, caller);
      const staged = this.uploads.staged(id);
      const mine = new Set(this.uploads.chunks(id).map((c) => c.digest));
      const usable = this.catalog.chunkUsability(caller);
      await this.staging.adopt(id, pushed, {
        startOffset: row.size,
        staged,
        usable: (digest) => mine.has(digest) || usable(digest),
        onBytes: (raw, at) => void hash?.update(raw, at).catch(() => undefined), // a lost hash: finish reads the content back
        onChunks: (chunks) => {
          this.uploads.appendChunks(id, chunks);
          for (const c of chunks) mine.add(c.digest);
        },
      });
      this.uploads.unstage(id, pushed.map((c) => c.digest)); // adopted: their URLs no longer count against the limit
      return uploadDoc(this.require(id, caller));
    });
  }

  /**
   * A session about to be appended to at `start` (its offset; undefined:
   * wherever it stands), with its running hash. The hash sees the new bytes
   * as long as it has seen every byte stored so far; otherwise (this process
   * started after the session did) finishing reads the content back.
   */
  private appendAt(id: string, start: number | undefined, caller: Caller): { row: UploadRow; hash: RunningHash | undefined } {
    const row = this.require(id, caller);
    if (start !== undefined && start !== row.size) {
      throw new CairnError('UPLOAD_OFFSET_MISMATCH', `upload ${id} is at offset ${row.size}, not ${start}`, { offset: row.size });
    }
    let hash = this.hashes.get(id);
    if (!hash && row.size === 0) this.hashes.set(id, (hash = this.chunks.runningHash()));
    return { row, hash };
  }

  private requireDirect(): void {
    if (!this.staging.direct) {
      throw new CairnError('DIRECT_UNAVAILABLE', 'this server stores content on its own disk: clients cannot put chunks into storage; upload the bytes (PATCH /v1/uploads/{id})');
    }
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
      const staged = this.uploads.staged(id);
      this.catalog.db.transaction(() => {
        this.catalog.blobs.addBlob(actual, row.size, chunks);
        if (row.owner !== null) this.catalog.blobs.addGrant(actual, row.owner);
        this.uploads.delete(id);
      });
      this.forget(id);
      await this.staging.drop(id, staged.keys());
      return { digest: actual, size: row.size };
    });
  }

  cancel(id: string, caller: Caller): Promise<void> {
    return this.locked(id, caller, async () => {
      const staged = this.uploads.staged(id);
      this.uploads.delete(id);
      this.forget(id);
      await this.staging.drop(id, staged.keys());
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

function integerIn(value: unknown, min: number, max: number, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) throw new CairnError('INVALID_ARGUMENT', `${what} must be an integer from ${min} to ${max}`);
  return value as number;
}

/** `body[field]`, an array of at most MAX_DIRECT_CHUNKS items, each checked by `check`. */
function listOf<T>(body: unknown, field: string, check: (item: unknown) => T): T[] {
  const list = body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
  if (!Array.isArray(list)) throw new CairnError('INVALID_ARGUMENT', `${field} must be an array`);
  if (list.length > MAX_DIRECT_CHUNKS) throw new CairnError('INVALID_ARGUMENT', `at most ${MAX_DIRECT_CHUNKS} ${field} per request`);
  return list.map(check);
}

function uploadDoc(row: { id: string; size: number; created_at: string; updated_at: string }): UploadDoc {
  return { id: row.id, offset: row.size, created_at: row.created_at, updated_at: row.updated_at };
}
