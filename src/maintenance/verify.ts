// Integrity check: every chunk of every file of every live version is fetched
// through the chunk store (decoded and checked against its sha256) — or, with
// `quick`, only looked up in storage (presence and stored size) — each chunk
// once however many files share it, a few at a time. Problems are reported
// per model, version and file:
//   missing        the chunk's object is not in storage
//   corrupt        the object does not decode to bytes with the chunk's digest
//                  (quick: its stored size differs from the record)
//   size_mismatch  the file's chunk list does not cover exactly its size
//                  (chunk: null)
import type { ChunkStore } from '../blobs/chunk-store.ts';
import type { StorageDriver } from '../blobs/driver.ts';
import { chunkKey } from '../blobs/layout.ts';
import { isCairnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LiveBlobChunkRow, MaintenanceQueries } from '../metadata/maintenance.ts';
import { eachLimited } from '../each-limited.ts';

export type VerifyProblemKind = 'missing' | 'corrupt' | 'size_mismatch';

export interface VerifyProblem {
  model: string;
  version: string;
  path: string;
  /** the chunk's digest; null for a file-level problem */
  chunk: string | null;
  problem: VerifyProblemKind;
}

export interface VerifyReport {
  ok: boolean;
  quick: boolean;
  versions_checked: number;
  files_checked: number;
  chunks_checked: number;
  /** stored bytes fetched from storage (0 with quick) */
  bytes_read: number;
  problems: VerifyProblem[];
  seconds: number;
}

export interface VerifierDeps {
  /** storage, failing with domain errors (blobs/storage-errors.ts) */
  driver: StorageDriver;
  chunks: ChunkStore;
  queries: MaintenanceQueries;
  log?: Logger;
  /** chunks fetched at once (default 4) */
  concurrency?: number;
}

export class Verifier {
  constructor(private readonly deps: VerifierDeps) {}

  async run(options: { quick?: boolean } = {}): Promise<VerifyReport> {
    const started = Date.now();
    const quick = options.quick === true;
    const { driver, chunks, queries, log } = this.deps;
    const files = queries.liveFiles();
    const chunksOf = new Map<string, LiveBlobChunkRow[]>();
    for (const row of queries.liveBlobChunks()) {
      let list = chunksOf.get(row.blob_digest);
      if (!list) chunksOf.set(row.blob_digest, (list = []));
      list.push(row);
    }
    const stored = new Map<string, number | null>(); // chunk digest → stored size on record
    const blobOf = new Map<string, string>(); // chunk digest → one blob using it (for the log)
    for (const list of chunksOf.values()) {
      for (const c of list) {
        stored.set(c.chunk_digest, c.stored_size);
        blobOf.set(c.chunk_digest, c.blob_digest);
      }
    }

    const bad = new Map<string, 'missing' | 'corrupt'>();
    let bytesRead = 0;
    await eachLimited([...stored.keys()], this.deps.concurrency ?? 4, async (digest) => {
      const key = chunkKey(digest);
      const recorded = stored.get(digest);
      if (quick) {
        const stat = await driver.stat(key);
        if (!stat) bad.set(digest, 'missing');
        else if (recorded !== null && recorded !== undefined && stat.size !== recorded) bad.set(digest, 'corrupt');
        return;
      }
      try {
        await chunks.readChunk(digest, blobOf.get(digest));
        bytesRead += recorded ?? 0;
      } catch (err) {
        if (!isCairnError(err, 'CONTENT_CORRUPT')) throw err;
        bad.set(digest, (await driver.stat(key)) ? 'corrupt' : 'missing');
      }
    });

    const problems: VerifyProblem[] = [];
    const versions = new Set<string>();
    for (const f of files) {
      versions.add(`${f.model}@${f.version}`);
      const list = chunksOf.get(f.blob_digest) ?? [];
      let end = 0;
      let contiguous = true;
      for (const c of list) {
        if (c.offset !== end) contiguous = false;
        end = c.offset + c.size;
        const problem = bad.get(c.chunk_digest);
        if (problem) problems.push({ model: f.model, version: f.version, path: f.path, chunk: c.chunk_digest, problem });
      }
      if (f.blob_size === null || !contiguous || end !== f.blob_size) {
        problems.push({ model: f.model, version: f.version, path: f.path, chunk: null, problem: 'size_mismatch' });
      }
    }
    const report: VerifyReport = {
      ok: problems.length === 0,
      quick,
      versions_checked: versions.size,
      files_checked: files.length,
      chunks_checked: stored.size,
      bytes_read: bytesRead,
      problems,
      seconds: (Date.now() - started) / 1000,
    };
    const { problems: _p, ...summary } = report;
    if (report.ok) log?.info('verify', summary);
    else log?.error('verify found damaged content', { ...summary, problems: problems.length });
    return report;
  }
}
