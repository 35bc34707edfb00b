// Queries for resumable upload sessions.
import type { Database } from './db.ts';
import type { TensorLayout } from '../codecs/tensor-layout.ts';
import type { ChunkRef } from '../blobs/chunk-index.ts';

export interface UploadRow {
  id: string;
  size: number;
  created_at: string;
  updated_at: string;
  digest: string | null;
  /** the tensor layout found at the start of the upload (JSON), see resumePoint */
  layout: string | null;
  /** the token that started it (`token:<id>`); null: started with auth off */
  owner: string | null;
}

export class UploadQueries {
  constructor(private readonly db: Database) {}

  create(id: string, now: string, owner: string | null): UploadRow {
    this.db.run('INSERT INTO uploads (id, size, created_at, updated_at, owner) VALUES (?, 0, ?, ?, ?)', [id, now, now, owner]);
    return this.get(id)!;
  }

  get(id: string): UploadRow | undefined {
    return this.db.first<UploadRow>('SELECT * FROM uploads WHERE id = ?', [id]);
  }

  /**
   * Appends stored chunks, in order, and moves the session's offset past
   * them. Chunks already recorded from the first new chunk's offset on are
   * replaced: a continued request cuts the session's last chunk again.
   */
  appendChunks(id: string, chunks: ChunkRef[]): void {
    this.db.transaction(() => {
      const first = chunks[0];
      if (first) this.db.run('DELETE FROM upload_chunks WHERE upload_id = ? AND offset >= ?', [id, first.offset]);
      let seq = this.db.first<{ n: number }>('SELECT coalesce(max(seq) + 1, 0) AS n FROM upload_chunks WHERE upload_id = ?', [id])!.n;
      for (const chunk of chunks) {
        this.db.run('INSERT INTO upload_chunks (upload_id, seq, offset, size, chunk_digest) VALUES (?, ?, ?, ?, ?)', [
          id,
          seq++,
          chunk.offset,
          chunk.size,
          chunk.digest,
        ]);
      }
      const last = chunks[chunks.length - 1];
      if (last) this.db.run('UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?', [last.offset + last.size, new Date().toISOString(), id]);
    });
  }

  setLayout(id: string, layout: TensorLayout): void {
    this.db.run('UPDATE uploads SET layout = ? WHERE id = ?', [JSON.stringify(layout), id]);
  }

  /** Where the next request of a session continues: its last chunk (cut again with the new bytes) and its tensor layout. */
  resumePoint(id: string): { replay?: ChunkRef; layout?: TensorLayout } {
    const last = this.db.first<{ chunk_digest: string; offset: number; size: number }>(
      'SELECT chunk_digest, offset, size FROM upload_chunks WHERE upload_id = ? ORDER BY seq DESC LIMIT 1',
      [id],
    );
    const row = this.db.first<{ layout: string | null }>('SELECT layout FROM uploads WHERE id = ?', [id]);
    return {
      ...(last ? { replay: { digest: last.chunk_digest, offset: last.offset, size: last.size } } : {}),
      ...(row?.layout ? { layout: JSON.parse(row.layout) as TensorLayout } : {}),
    };
  }

  chunks(id: string): ChunkRef[] {
    return this.db.all<{ chunk_digest: string; offset: number; size: number }>(
      'SELECT chunk_digest, offset, size FROM upload_chunks WHERE upload_id = ? ORDER BY seq',
      [id],
    ).map((r) => ({ digest: r.chunk_digest, offset: r.offset, size: r.size }));
  }

  /**
   * Records presigned PUTs handed out to a session (digest → stored size; a
   * digest asked for again is signed for its new size) and returns the bytes
   * they add up to.
   */
  stage(id: string, chunks: Array<{ digest: string; storedSize: number }>): number {
    return this.db.transaction(() => {
      for (const c of chunks) {
        this.db.run(
          'INSERT INTO upload_staged (upload_id, chunk_digest, stored_size) VALUES (?, ?, ?) ON CONFLICT (upload_id, chunk_digest) DO UPDATE SET stored_size = excluded.stored_size',
          [id, c.digest, c.storedSize],
        );
      }
      return this.stagedBytes(id);
    });
  }

  unstage(id: string, digests: string[]): void {
    this.db.transaction(() => {
      for (const d of digests) this.db.run('DELETE FROM upload_staged WHERE upload_id = ? AND chunk_digest = ?', [id, d]);
    });
  }

  stagedBytes(id: string): number {
    return this.db.first<{ n: number }>('SELECT coalesce(sum(stored_size), 0) AS n FROM upload_staged WHERE upload_id = ?', [id])!.n;
  }

  /** The chunks a session was handed presigned PUTs for, with the size each was signed for. */
  staged(id: string): Map<string, number> {
    const rows = this.db.all<{ chunk_digest: string; stored_size: number }>('SELECT chunk_digest, stored_size FROM upload_staged WHERE upload_id = ?', [id]);
    return new Map(rows.map((r) => [r.chunk_digest, r.stored_size]));
  }

  delete(id: string): void {
    this.db.run('DELETE FROM uploads WHERE id = ?', [id]);
  }
}
