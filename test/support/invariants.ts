// Invariants of a Cairn data dir, checked from outside the server: SQLite
// integrity (read-only connection) and "no metadata points at a missing
// chunk" (every chunk row has its object in storage, every blob's chunk list
// is complete). Returns violations as strings, and how many checks ran.
import BetterSqlite3 from 'better-sqlite3';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createS3Client, S3Driver } from '../../src/blobs/s3-driver.ts';
import { chunkKey } from '../../src/blobs/layout.ts';

export interface ChunkExists {
  /** stored size of the object, or undefined when it is missing */
  size(digest: string): Promise<number | undefined>;
}

export function fsChunks(dataDir: string): ChunkExists {
  return {
    async size(digest) {
      try {
        return (await fs.stat(path.join(dataDir, 'blobs', ...chunkKey(digest).split('/')))).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
  };
}

export function s3Driver(bucket: string, prefix: string, endpoint = process.env.CAIRN_S3_ENDPOINT): S3Driver {
  const client = createS3Client({ endpoint, region: process.env.CAIRN_S3_REGION ?? 'us-east-1', forcePathStyle: true });
  return new S3Driver({ bucket, prefix, client });
}

export function s3Chunks(driver: S3Driver): ChunkExists {
  return { size: async (digest) => (await driver.stat(chunkKey(digest)))?.size };
}

/** Deletes every object under the driver's prefix (test cleanup). */
export async function emptyPrefix(driver: S3Driver): Promise<number> {
  let n = 0;
  const keys: string[] = [];
  for await (const key of driver.list('')) keys.push(key);
  for (let i = 0; i < keys.length; i += 16) {
    await Promise.all(keys.slice(i, i + 16).map((k) => driver.delete(k)));
    n += Math.min(16, keys.length - i);
  }
  return n;
}

export interface InvariantReport {
  violations: string[];
  checks: number;
  chunks: number;
  liveVersions: number;
}

export async function checkDataDir(dataDir: string, storage: ChunkExists): Promise<InvariantReport> {
  const violations: string[] = [];
  let checks = 0;
  const db = new BetterSqlite3(path.join(dataDir, 'registry.db'), { readonly: true, fileMustExist: true });
  let chunkRows: Array<{ digest: string; stored_size: number }>;
  let liveVersions = 0;
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    checks++;
    if (integrity !== 'ok') violations.push(`PRAGMA integrity_check: ${String(integrity)}`);
    const fk = db.pragma('foreign_key_check') as unknown[];
    checks++;
    if (fk.length > 0) violations.push(`PRAGMA foreign_key_check: ${JSON.stringify(fk.slice(0, 5))}`);

    // every chunk a blob or an upload session names has a row
    const dangling = db
      .prepare(
        `SELECT 'blob ' || blob_digest AS owner, chunk_digest FROM blob_chunks WHERE chunk_digest NOT IN (SELECT digest FROM chunks)
         UNION ALL SELECT 'upload ' || upload_id, chunk_digest FROM upload_chunks WHERE chunk_digest NOT IN (SELECT digest FROM chunks)`,
      )
      .all() as Array<{ owner: string; chunk_digest: string }>;
    checks++;
    for (const d of dangling.slice(0, 5)) violations.push(`${d.owner} names chunk ${d.chunk_digest}, which has no chunks row`);

    // every blob's chunk list covers it exactly, in order
    const blobs = db.prepare('SELECT digest, size, chunk_count FROM blobs').all() as Array<{ digest: string; size: number; chunk_count: number }>;
    const chunksOf = db.prepare('SELECT seq, offset, size FROM blob_chunks WHERE blob_digest = ? ORDER BY seq');
    for (const b of blobs) {
      checks++;
      const list = chunksOf.all(b.digest) as Array<{ seq: number; offset: number; size: number }>;
      let at = 0;
      let ok = list.length === b.chunk_count;
      for (const [i, c] of list.entries()) {
        if (c.seq !== i || c.offset !== at || c.size <= 0) ok = false;
        at += c.size;
      }
      if (!ok || at !== b.size) violations.push(`blob ${b.digest}: ${list.length}/${b.chunk_count} chunks covering ${at} of ${b.size} bytes`);
    }

    // every file of a live version has its blob; sizes agree
    const files = db
      .prepare(
        `SELECT m.name, v.version, f.path, f.size, f.blob_digest, b.size AS blob_size FROM version_files f
         JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id
         LEFT JOIN blobs b ON b.digest = f.blob_digest WHERE v.deleted_at IS NULL`,
      )
      .all() as Array<{ name: string; version: string; path: string; size: number; blob_digest: string; blob_size: number | null }>;
    for (const f of files) {
      checks++;
      if (f.blob_size === null) violations.push(`${f.name}@${f.version}/${f.path} names blob ${f.blob_digest}, which does not exist`);
      else if (f.blob_size !== f.size) violations.push(`${f.name}@${f.version}/${f.path}: size ${f.size} but blob has ${f.blob_size}`);
    }
    const empty = db
      .prepare('SELECT m.name, v.version FROM versions v JOIN models m ON m.id = v.model_id WHERE v.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM version_files f WHERE f.version_id = v.id)')
      .all() as Array<{ name: string; version: string }>;
    checks++;
    for (const v of empty) violations.push(`${v.name}@${v.version} is live with no files`);
    liveVersions = (db.prepare('SELECT count(*) AS n FROM versions WHERE deleted_at IS NULL').get() as { n: number }).n;
    chunkRows = db.prepare('SELECT digest, stored_size FROM chunks').all() as Array<{ digest: string; stored_size: number }>;
  } finally {
    db.close();
  }

  // every recorded chunk is in storage with its recorded size
  for (let i = 0; i < chunkRows.length; i += 16) {
    await Promise.all(
      chunkRows.slice(i, i + 16).map(async (c) => {
        checks++;
        const size = await storage.size(c.digest);
        if (size === undefined) violations.push(`chunk ${c.digest} is recorded but missing from storage`);
        else if (size !== c.stored_size) violations.push(`chunk ${c.digest}: ${size} bytes in storage, ${c.stored_size} recorded`);
      }),
    );
  }
  return { violations, checks, chunks: chunkRows.length, liveVersions };
}
