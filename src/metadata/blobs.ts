// Queries for chunks and blobs (whole file contents as ordered chunk lists):
// the chunk store's index (blobs/chunk-index.ts), and the blob records the
// registry writes.
import type { ChunkIndex, ChunkRecord, ChunkRef, StoredChunkRef } from '../blobs/chunk-index.ts';
import type { Database } from './db.ts';

export interface BlobRow {
  digest: string;
  size: number;
  chunk_count: number;
  created_at: string;
}

export class BlobIndex implements ChunkIndex {
  constructor(private readonly db: Database) {}

  hasChunk(digest: string): boolean {
    return this.db.first('SELECT 1 FROM chunks WHERE digest = ?', [digest]) !== undefined;
  }

  /** Records chunks already durable in storage, and runs `also` in the same transaction. */
  recordChunks(chunks: ChunkRecord[], also: () => void = () => {}): void {
    this.db.transaction(() => {
      const now = new Date().toISOString();
      for (const c of chunks) {
        this.db.run('INSERT OR IGNORE INTO chunks (digest, raw_size, stored_size, codec, created_at) VALUES (?, ?, ?, ?, ?)', [
          c.digest,
          c.rawSize,
          c.storedSize,
          c.codec,
          now,
        ]);
      }
      also();
    });
  }

  /** Up to `limit` blobs that hold a chunk. */
  blobsHolding(chunk: string, limit: number): string[] {
    return this.db.all<{ blob_digest: string }>('SELECT DISTINCT blob_digest FROM blob_chunks WHERE chunk_digest = ? LIMIT ?', [chunk, limit]).map((r) => r.blob_digest);
  }

  getBlob(digest: string): BlobRow | undefined {
    return this.db.first<BlobRow>('SELECT * FROM blobs WHERE digest = ?', [digest]);
  }

  /**
   * Records a blob and its chunk list in one transaction (a crash in between
   * must not leave a blob that names no chunks); a blob already known keeps
   * its first chunk list.
   */
  addBlob(digest: string, size: number, chunks: ChunkRef[]): void {
    this.db.transaction(() => {
      const inserted = this.db.run(
        'INSERT OR IGNORE INTO blobs (digest, size, chunk_count, created_at) VALUES (?, ?, ?, ?)',
        [digest, size, chunks.length, new Date().toISOString()],
      );
      if (inserted.changes === 0) return;
      chunks.forEach((c, seq) => {
        this.db.run('INSERT INTO blob_chunks (blob_digest, seq, offset, size, chunk_digest) VALUES (?, ?, ?, ?, ?)', [
          digest,
          seq,
          c.offset,
          c.size,
          c.digest,
        ]);
      });
    });
  }

  /** Records that `principal` has shown it holds the bytes of a stored blob (uploaded them). */
  addGrant(digest: string, principal: string): void {
    this.db.run('INSERT OR IGNORE INTO blob_grants (blob_digest, principal, created_at) VALUES (?, ?, ?)', [digest, principal, new Date().toISOString()]);
  }

  hasGrant(digest: string, principal: string): boolean {
    return this.db.first('SELECT 1 FROM blob_grants WHERE blob_digest = ? AND principal = ?', [digest, principal]) !== undefined;
  }

  /** Bytes of blob `digest` that lie in chunks some blob of `others` also has. */
  sharedBytes(digest: string, others: readonly string[]): number {
    return this.db.first<{ n: number }>(
      `SELECT coalesce(sum(size), 0) AS n FROM blob_chunks
        WHERE blob_digest = ? AND chunk_digest IN (SELECT chunk_digest FROM blob_chunks WHERE blob_digest IN (SELECT value FROM json_each(?)))`,
      [digest, JSON.stringify(others)],
    )!.n;
  }

  /** Stored bytes of the distinct chunks of `blobs` that no blob of `others` has: what they cost beyond those. */
  newStoredBytes(blobs: readonly string[], others: readonly string[]): number {
    return this.db.first<{ n: number }>(
      `SELECT coalesce(sum(stored_size), 0) AS n FROM chunks
        WHERE digest IN (SELECT chunk_digest FROM blob_chunks WHERE blob_digest IN (SELECT value FROM json_each(?)))
          AND digest NOT IN (SELECT chunk_digest FROM blob_chunks WHERE blob_digest IN (SELECT value FROM json_each(?)))`,
      [JSON.stringify(blobs), JSON.stringify(others)],
    )!.n;
  }

  /** The chunks of a blob that overlap the inclusive byte range [start, end], in order. */
  chunksInRange(digest: string, start: number, end: number): ChunkRef[] {
    return this.db.all<ChunkRef>(
      `SELECT chunk_digest AS digest, offset, size FROM blob_chunks
        WHERE blob_digest = ? AND offset <= ? AND offset + size > ? ORDER BY seq`,
      [digest, end, start],
    );
  }

  storedChunksInRange(digest: string, start: number, end: number): StoredChunkRef[] {
    return this.db.all<StoredChunkRef>(
      `SELECT b.chunk_digest AS digest, b.offset, b.size, c.codec, c.stored_size AS storedSize
         FROM blob_chunks b JOIN chunks c ON c.digest = b.chunk_digest
        WHERE b.blob_digest = ? AND b.offset <= ? AND b.offset + b.size > ? ORDER BY b.seq`,
      [digest, end, start],
    );
  }
}
