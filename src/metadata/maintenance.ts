// Queries for maintenance: integrity checks (verify) and garbage collection.
// Times are ISO 8601 strings throughout (they compare correctly as text).
import type { Database } from './db.ts';

export interface LiveFileRow {
  model: string;
  version: string;
  path: string;
  blob_digest: string;
  /** null when the blob record itself is gone (never expected) */
  blob_size: number | null;
}

export interface LiveBlobChunkRow {
  blob_digest: string;
  seq: number;
  offset: number;
  size: number;
  chunk_digest: string;
  /** null when the chunk record is gone (never expected: foreign key) */
  stored_size: number | null;
}

export interface GcCutoffs {
  /** records created (blobs: last unpublished) before this are past the grace period */
  grace: string;
  /** upload sessions not updated since this have expired */
  uploadTtl: string;
  /** blobs being read right now: kept, however old */
  reading?: string[];
}

export interface GcSweep {
  uploads: string[];
  blobs: string[];
  chunks: Array<{ digest: string; stored_size: number }>;
}

export class MaintenanceQueries {
  constructor(private readonly db: Database) {}

  /** Every file of every live version. */
  liveFiles(): LiveFileRow[] {
    return this.db.all<LiveFileRow>(
      `SELECT m.name AS model, v.version, f.path, f.blob_digest, b.size AS blob_size
         FROM versions v
         JOIN models m ON m.id = v.model_id
         JOIN version_files f ON f.version_id = v.id
         LEFT JOIN blobs b ON b.digest = f.blob_digest
        WHERE v.deleted_at IS NULL
        ORDER BY m.name, v.number, f.path`,
    );
  }

  /** The chunk lists of every blob a live version uses, in order. */
  liveBlobChunks(): LiveBlobChunkRow[] {
    return this.db.all<LiveBlobChunkRow>(
      `SELECT bc.blob_digest, bc.seq, bc.offset, bc.size, bc.chunk_digest, c.stored_size
         FROM blob_chunks bc
         LEFT JOIN chunks c ON c.digest = bc.chunk_digest
        WHERE bc.blob_digest IN (SELECT f.blob_digest FROM version_files f JOIN versions v ON v.id = f.version_id
                                  WHERE v.deleted_at IS NULL)
        ORDER BY bc.blob_digest, bc.seq`,
    );
  }

  /**
   * Removes the records garbage collection may remove, in one transaction,
   * and returns what went: upload sessions not updated since `uploadTtl`;
   * blobs that no live version uses, not being read, and unused since before
   * `grace` — since the deletion of the last version that named them, or
   * their creation when none ever did (with the file rows of deleted
   * versions that still name them); then chunks older than `grace` that no
   * remaining blob or upload session references. With `dryRun` the
   * transaction is rolled back: the same answer, nothing changed.
   */
  sweepRecords(cutoffs: GcCutoffs, dryRun: boolean): GcSweep {
    const rollback = new Error('gc dry run: roll back');
    let result: GcSweep | undefined;
    try {
      this.db.transaction(() => {
        const uploads = this.db
          .all<{ id: string }>('SELECT id FROM uploads WHERE updated_at < ?', [cutoffs.uploadTtl])
          .map((r) => r.id);
        for (const id of uploads) this.db.run('DELETE FROM uploads WHERE id = ?', [id]); // upload_chunks cascade
        const blobs = this.db
          .all<{ digest: string }>(
            `SELECT b.digest FROM blobs b
              WHERE NOT EXISTS (SELECT 1 FROM version_files f JOIN versions v ON v.id = f.version_id
                                 WHERE f.blob_digest = b.digest AND v.deleted_at IS NULL)
                AND b.digest NOT IN (SELECT value FROM json_each(?))
                AND b.digest NOT IN (SELECT blob_digest FROM oci_live_blobs)
                AND max(b.created_at, coalesce((SELECT max(v.deleted_at) FROM version_files f JOIN versions v ON v.id = f.version_id
                                                 WHERE f.blob_digest = b.digest), '')) < ?`,
            [JSON.stringify(cutoffs.reading ?? []), cutoffs.grace],
          )
          .map((r) => r.digest);
        for (const digest of blobs) {
          // only deleted versions still name it; their file lists live on in the lineage history
          this.db.run('DELETE FROM version_files WHERE blob_digest = ? AND version_id IN (SELECT id FROM versions WHERE deleted_at IS NOT NULL)', [digest]);
          this.db.run('DELETE FROM blobs WHERE digest = ?', [digest]); // blob_chunks cascade
        }
        const chunks = this.db.all<{ digest: string; stored_size: number }>(
          `SELECT c.digest, c.stored_size FROM chunks c
            WHERE c.created_at < ?
              AND NOT EXISTS (SELECT 1 FROM blob_chunks bc WHERE bc.chunk_digest = c.digest)
              AND c.digest NOT IN (SELECT chunk_digest FROM upload_chunks)`,
          [cutoffs.grace],
        );
        for (const c of chunks) this.db.run('DELETE FROM chunks WHERE digest = ?', [c.digest]);
        result = { uploads, blobs, chunks };
        if (dryRun) throw rollback;
      });
    } catch (err) {
      if (err !== rollback) throw err;
    }
    return result!;
  }

  /** Objects seen without a record by an earlier gc: key → first_seen. */
  uploadExists(id: string): boolean {
    return this.db.first('SELECT 1 FROM uploads WHERE id = ?', [id]) !== undefined;
  }

  orphans(): Map<string, string> {
    return new Map(this.db.all<{ key: string; first_seen: string }>('SELECT key, first_seen FROM gc_orphans').map((r) => [r.key, r.first_seen]));
  }

  /** Replaces the orphan list: keys still unrecorded keep their first_seen, new ones get `now`, the rest go. */
  saveOrphans(seen: Map<string, string>): void {
    this.db.transaction(() => {
      this.db.run('DELETE FROM gc_orphans');
      for (const [key, firstSeen] of seen) this.db.run('INSERT INTO gc_orphans (key, first_seen) VALUES (?, ?)', [key, firstSeen]);
    });
  }
}
