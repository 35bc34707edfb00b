// Queries for resumable upload sessions.
import type { Database } from './db.ts';
import type { ChunkRef } from './blobs.ts';

export interface UploadRow {
  id: string;
  size: number;
  created_at: string;
  updated_at: string;
  digest: string | null;
}

export class UploadQueries {
  constructor(private readonly db: Database) {}

  create(id: string, now: string): UploadRow {
    this.db.run('INSERT INTO uploads (id, size, created_at, updated_at) VALUES (?, 0, ?, ?)', [id, now, now]);
    return this.get(id)!;
  }

  get(id: string): UploadRow | undefined {
    return this.db.first<UploadRow>('SELECT * FROM uploads WHERE id = ?', [id]);
  }

  /** Appends stored chunks, in order, and moves the session's offset past them. */
  appendChunks(id: string, chunks: ChunkRef[]): void {
    this.db.transaction(() => {
      let seq = this.db.first<{ n: number }>('SELECT count(*) AS n FROM upload_chunks WHERE upload_id = ?', [id])!.n;
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

  chunks(id: string): ChunkRef[] {
    return this.db.all<{ chunk_digest: string; offset: number; size: number }>(
      'SELECT chunk_digest, offset, size FROM upload_chunks WHERE upload_id = ? ORDER BY seq',
      [id],
    ).map((r) => ({ digest: r.chunk_digest, offset: r.offset, size: r.size }));
  }

  delete(id: string): void {
    this.db.run('DELETE FROM uploads WHERE id = ?', [id]);
  }
}
