// Scrape-time figures for /metrics, read from SQLite (right after a restart too).
import type { Database } from './db.ts';

export interface StorageTotals {
  /** bytes in the storage backend: sum of chunks.stored_size */
  stored: number;
  /** sum of the file sizes of live (not deleted) versions */
  logical: number;
  chunks: number;
  /** upload sessions not finished yet */
  uploadsOpen: number;
  /** webhook deliveries still to send, and those that ran out of attempts */
  webhooksPending: number;
  webhooksFailed: number;
}

export function storageTotals(db: Database): StorageTotals {
  const chunks = db.first<{ n: number; stored: number | null }>('SELECT count(*) AS n, sum(stored_size) AS stored FROM chunks')!;
  const logical = db.first<{ logical: number | null }>('SELECT sum(size) AS logical FROM versions WHERE deleted_at IS NULL')!;
  const uploads = db.first<{ n: number }>('SELECT count(*) AS n FROM uploads WHERE digest IS NULL')!;
  const hooks = db.first<{ pending: number | null; failed: number | null }>(
    "SELECT sum(state = 'pending') AS pending, sum(state = 'failed') AS failed FROM webhook_deliveries",
  )!;
  return {
    stored: chunks.stored ?? 0,
    logical: logical.logical ?? 0,
    chunks: chunks.n,
    uploadsOpen: uploads.n,
    webhooksPending: hooks.pending ?? 0,
    webhooksFailed: hooks.failed ?? 0,
  };
}
