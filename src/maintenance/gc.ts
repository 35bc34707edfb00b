// Garbage collection: removes chunks no live version uses, blobs nothing
// publishes, expired upload sessions, and objects in storage without a record.
//
// Mark (what stays): every chunk of a blob a live version uses; every chunk
// of an upload session not yet expired (CAIRN_UPLOAD_TTL, default 24 h);
// every chunk of a blob unused for less than the grace period — counted from
// the deletion of the last version that used it (a download of it may still
// be running), or from its creation when no version ever did (an upload
// session may have just finished, the manifest not yet published); every
// chunk of a blob being read right now (ChunkStore.hold: an open download
// stream), however old; every chunk record younger than the grace period (an
// upload in flight). Beyond these, deleted versions keep nothing alive.
//
// Sweep, in this order:
//  1. one transaction removes the records: expired sessions, unused blobs
//     past their grace period, then chunks older than the grace period
//     that nothing references any more;
//  2. then their objects are deleted. Records go first so that a crash in
//     between leaves only unrecorded objects, which step 3 finds again —
//     never a record that names a missing object (an upload would dedup
//     against it).
//  3. Objects under chunks/ without a record (crashed uploads, or step 2
//     interrupted). Drivers report no modification time, so the grace period
//     runs from the first gc that saw the object unrecorded (table gc_orphans):
//     an unrecorded object is deleted only by a later gc, once it has been
//     seen unrecorded for at least the grace period. An upload in flight
//     writes its objects before their records (batched), so this is what
//     keeps a running upload from being robbed.
//  4. Objects under staging/ (chunks a client put into the bucket for a
//     direct push, not yet verified) whose upload session is gone: finished,
//     cancelled, or expired in step 1. Those of a live session stay.
//
// Known limit: an upload that dedups against an old unreferenced chunk in the
// moment between step 1 and step 2 (it finds the object still there, `put`
// answers "exists", and the record lands in its next batch) can lose that
// chunk. Each object is re-checked for a record right before its delete and
// a resurrection seen afterwards is logged; `verify` reports the damage.
// Closing the window entirely needs the chunk store to re-check after it
// records (see the report of the gc work).
import { CairnError } from '../errors.ts';
import { eachLimited } from '../each-limited.ts';
import type { StorageDriver } from '../blobs/driver.ts';
import { chunkDigestOfKey, chunkKey, CHUNKS_PREFIX, stagedOfKey, STAGING_PREFIX } from '../blobs/layout.ts';
import type { Logger } from '../log.ts';
import type { BlobIndex } from '../metadata/blobs.ts';
import type { MaintenanceQueries } from '../metadata/maintenance.ts';

export const DEFAULT_GC_GRACE_SECONDS = 60 * 60;
export const DEFAULT_UPLOAD_TTL_SECONDS = 24 * 60 * 60;

export interface GcOptions {
  dryRun?: boolean;
  /** default: the collector's (CAIRN_GC_GRACE, else 1 h) */
  graceSeconds?: number;
  /** default: the collector's (CAIRN_UPLOAD_TTL, else 24 h) */
  uploadTtlSeconds?: number;
  /** the clock, for tests */
  now?: () => Date;
}

export interface GcReport {
  dry_run: boolean;
  grace_seconds: number;
  upload_ttl_seconds: number;
  /** chunk records removed, with their objects */
  chunks_deleted: number;
  /** stored bytes returned: chunk objects plus orphan objects */
  bytes_freed: number;
  /** objects deleted that had no record */
  orphan_objects_deleted: number;
  orphan_bytes_freed: number;
  /** unrecorded objects seen, waiting for the grace period to pass */
  orphan_objects_pending: number;
  /** staged objects of direct pushes whose session is gone */
  staged_objects_deleted: number;
  blobs_deleted: number;
  uploads_expired: number;
  seconds: number;
}

export interface GarbageCollectorDeps {
  /** storage, failing with domain errors (blobs/storage-errors.ts) */
  driver: StorageDriver;
  blobs: BlobIndex;
  queries: MaintenanceQueries;
  log?: Logger;
  graceSeconds?: number;
  uploadTtlSeconds?: number;
  now?: () => Date;
  /** told about each expired upload session it removed (to drop its running hash) */
  onUploadExpired?: (id: string) => void;
  /** blobs being read right now (ChunkStore.blobsBeingRead): never collected */
  blobsBeingRead?: () => string[];
}

export class GarbageCollector {
  private readonly graceSeconds: number;
  private readonly uploadTtlSeconds: number;
  private readonly now: () => Date;
  /** one collection at a time; a second caller waits for the first */
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: GarbageCollectorDeps) {
    this.graceSeconds = deps.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS;
    this.uploadTtlSeconds = deps.uploadTtlSeconds ?? DEFAULT_UPLOAD_TTL_SECONDS;
    this.now = deps.now ?? (() => new Date());
  }

  run(options: GcOptions = {}): Promise<GcReport> {
    const grace = options.graceSeconds ?? this.graceSeconds;
    const ttl = options.uploadTtlSeconds ?? this.uploadTtlSeconds;
    for (const [what, v] of [['grace_seconds', grace], ['upload_ttl_seconds', ttl]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new CairnError('INVALID_ARGUMENT', `${what} must be a number of seconds >= 0`);
    }
    const next = this.running.then(() => this.collect(options.dryRun === true, grace, ttl, options.now ?? this.now));
    this.running = next.catch(() => {});
    return next;
  }

  private async collect(dryRun: boolean, graceSeconds: number, uploadTtlSeconds: number, clock: () => Date): Promise<GcReport> {
    const started = Date.now();
    const { driver, blobs, queries, log } = this.deps;
    const now = clock();
    const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();
    const reading = this.deps.blobsBeingRead?.() ?? [];
    const sweep = queries.sweepRecords({ grace: ago(graceSeconds), uploadTtl: ago(uploadTtlSeconds), reading }, dryRun);
    if (!dryRun) for (const id of sweep.uploads) this.deps.onUploadExpired?.(id);

    // 2. the objects of the chunk records just removed
    let chunksDeleted = 0;
    let chunkBytes = 0;
    if (dryRun) {
      chunksDeleted = sweep.chunks.length;
      chunkBytes = sweep.chunks.reduce((n, c) => n + c.stored_size, 0);
    } else {
      await eachLimited(sweep.chunks, 8, async (c) => {
        if (blobs.hasChunk(c.digest)) return; // recorded again by a concurrent upload: keep it
        await driver.delete(chunkKey(c.digest));
        if (blobs.hasChunk(c.digest)) {
          log?.error('gc: a chunk was recorded again while it was being deleted; run verify', { chunk: c.digest });
        }
        chunksDeleted++;
        chunkBytes += c.stored_size;
      });
    }

    // 3. unrecorded objects, after the grace period since a gc first saw them
    const seenBefore = queries.orphans();
    const seenNow = new Map<string, string>();
    const removed = new Set(sweep.chunks.map((c) => chunkKey(c.digest)));
    const due: Array<{ key: string; digest: string }> = [];
    const graceCutoff = ago(graceSeconds);
    for await (const key of driver.list(CHUNKS_PREFIX)) {
      const digest = chunkDigestOfKey(key);
      if (!digest) continue; // not ours: leave it alone
      if (blobs.hasChunk(digest)) continue;
      if (dryRun && removed.has(key)) continue; // counted above already
      const first = seenBefore.get(key);
      if (first !== undefined && first <= graceCutoff) due.push({ key, digest });
      else seenNow.set(key, first ?? now.toISOString());
    }
    let orphansDeleted = 0;
    let orphanBytes = 0;
    await eachLimited(due, 8, async ({ key, digest }) => {
      const size = (await driver.stat(key))?.size;
      if (size === undefined) return; // already gone
      if (!dryRun) {
        if (blobs.hasChunk(digest)) return; // an upload recorded it meanwhile
        await driver.delete(key);
      }
      orphansDeleted++;
      orphanBytes += size;
    });
    if (!dryRun) queries.saveOrphans(seenNow);

    // 4. staged objects of sessions that are gone
    let stagedDeleted = 0;
    const stale: string[] = [];
    for await (const key of driver.list(STAGING_PREFIX)) {
      const staged = stagedOfKey(key);
      if (staged && !queries.uploadExists(staged.session)) stale.push(key);
    }
    await eachLimited(stale, 8, async (key) => {
      if (!dryRun) await driver.delete(key);
      stagedDeleted++;
    });

    const report: GcReport = {
      dry_run: dryRun,
      grace_seconds: graceSeconds,
      upload_ttl_seconds: uploadTtlSeconds,
      chunks_deleted: chunksDeleted,
      bytes_freed: chunkBytes + orphanBytes,
      orphan_objects_deleted: orphansDeleted,
      orphan_bytes_freed: orphanBytes,
      orphan_objects_pending: seenNow.size,
      staged_objects_deleted: stagedDeleted,
      blobs_deleted: sweep.blobs.length,
      uploads_expired: sweep.uploads.length,
      seconds: (Date.now() - started) / 1000,
    };
    log?.info(dryRun ? 'gc dry run' : 'gc', { ...report });
    return report;
  }
}
