// The git mirror: one serial writer that drains the events outbox into a bare
// repository. Every event's commit id was computed when it was recorded
// (./event-recorder.ts); the writer runs its own CommitChain over the same
// events from what git holds, gets the same objects, checks each commit id
// against the recorded one, and writes a batch of events as one pack
// (./pack-file.ts), their tags, the branch once, and one SQLite commit
// marking them mirrored. Replaying every event from an empty repository
// reproduces every commit id (rebuild).
//
// Git is a mirror: a failed write is logged, the events stay pending and the
// writer retries with backoff; publishing never waits for it.
import { execFile } from 'node:child_process';
import nodeFs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import git from 'isomorphic-git';
import type { MirrorStatus } from '../api/index.ts';
import type { Logger } from '../log.ts';
import type { EventQueries, EventRow } from '../metadata/events.ts';
import { CommitChain, type LoadedEntry } from './commit-chain.ts';
import { PackBuilder } from './pack-file.ts';

export { commitMessage } from './commit-chain.ts';
export type { MirrorStatus };

export const MAIN_BRANCH = 'main';
const MAIN_REF = `refs/heads/${MAIN_BRANCH}`;
const TRAILER = 'Cairn-Event';
/** events in one pack at most */
const BATCH_EVENTS = 1000;
/** a batch stops growing past this many pack bytes */
const BATCH_BYTES = 64 << 20;
/** while events keep coming, batches are at least this far apart (fewer, larger packs) */
const COALESCE_MS = 100;
/** the writer yields to the event loop after this much work in one go */
const SLICE_MS = 8;
/** packs written between two `git repack --geometric` (which merges them) */
const REPACK_EVERY_PACKS = 24;
const execFileAsync = promisify(execFile);

type FsClient = typeof nodeFs;

export interface GitMirrorOptions {
  gitdir: string;
  events: EventQueries;
  log: Logger;
  /** the file system the writer writes through (tests inject faults here) */
  fs?: FsClient;
  /** first retry delay after a failure; doubles up to 30 s */
  retryMs?: number;
}

function eventIdOf(message: string): number | undefined {
  const m = new RegExp(`^${TRAILER}: (\\d+)$`, 'm').exec(message);
  return m ? Number(m[1]) : undefined;
}

/** A batch of events as git objects, their tags and the branch's new head. */
interface Batch {
  pack: PackBuilder;
  tags: Array<[tag: string, commit: string]>;
  first: number;
  last: { id: number; commit: string } | undefined;
}

export class GitMirror {
  readonly gitdir: string;
  private readonly events: EventQueries;
  private readonly log: Logger;
  private readonly fs: FsClient;
  private readonly retryMs: number;
  private running: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastError: string | null = null;
  private stopped = false;
  /** the writer's chain: at what git holds (undefined: read it from git again) */
  private chain: CommitChain | undefined;
  /** events whose recorded commit id differs from the one the writer computes */
  private readonly mismatched = new Set<number>();
  private packsSinceRepack = 0;
  private lastBatchAt = 0;
  /** ref directories known to exist */
  private readonly refDirs = new Set<string>();

  constructor(options: GitMirrorOptions) {
    this.gitdir = options.gitdir;
    this.events = options.events;
    this.log = options.log;
    this.fs = options.fs ?? nodeFs;
    this.retryMs = options.retryMs ?? 500;
  }

  async init(): Promise<void> {
    await git.init({ fs: this.fs, gitdir: this.gitdir, bare: true, defaultBranch: MAIN_BRANCH });
  }

  status(): MirrorStatus {
    const lag = this.events.lag();
    return { pending: lag.pending, oldest_pending: lag.oldest, last_error: this.lastError, mismatched_commits: this.mismatched.size };
  }

  /**
   * The chain at the repository's head (checked against SQLite), for the
   * event recorder to carry on from. Call before the first kick.
   */
  async committedChain(): Promise<CommitChain> {
    this.chain ??= await this.load();
    return this.chain.clone();
  }

  /** Ask the writer to drain the outbox; resolves when this round is done (errors are kept, not thrown). */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.kick();
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.running;
  }

  private async drain(): Promise<void> {
    try {
      // a branch moved behind the writer's back is found out (load refuses it), not overwritten
      if (this.chain && (await this.head()) !== this.chain.head) this.chain = undefined;
      this.chain ??= await this.load();
      for (;;) {
        let batch = this.events.unmirrored(this.chain.lastEventId, BATCH_EVENTS);
        if (batch.length === 0) break;
        // events keep coming: let them gather a moment, into one pack
        const wait = this.lastBatchAt + COALESCE_MS - performance.now();
        if (batch.length < BATCH_EVENTS && wait > 0) {
          await sleep(wait);
          batch = this.events.unmirrored(this.chain.lastEventId, BATCH_EVENTS);
        }
        if (this.stopped) return;
        await this.write(batch);
        this.lastBatchAt = performance.now();
      }
      if (this.packsSinceRepack >= REPACK_EVERY_PACKS) await this.repack();
      if (this.failures > 0) this.log.info('lineage mirror caught up', { after_failures: this.failures });
      this.failures = 0;
      this.lastError = null;
    } catch (err) {
      this.chain = undefined; // whatever it got to, git may not have: start again from git's head
      this.failures += 1;
      this.lastError = (err as Error).message;
      const delay = Math.min(this.retryMs * 2 ** (this.failures - 1), 30_000);
      this.log.error('lineage mirror write failed; events stay queued', { error: this.lastError, retry_in_ms: delay, ...this.events.lag() });
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => void this.kick(), delay);
        this.retryTimer.unref();
      }
    }
  }

  /**
   * Writes events as one pack, tags and branch, then marks them mirrored.
   * An event whose commit differs from the recorded id stops the writer
   * there (the events before it are written): the id clients were given is
   * never silently replaced; `cairn lineage rebuild` settles it.
   */
  private async write(events: EventRow[]): Promise<void> {
    const chain = this.chain!;
    const batch: Batch = { pack: new PackBuilder(), tags: [], first: events[0]!.id, last: undefined };
    let mismatch: Error | undefined;
    let slice = performance.now();
    for (const event of events) {
      const commit = chain.append(event, batch.pack.add);
      if (commit !== event.commit_id) {
        this.mismatched.add(event.id);
        mismatch = new Error(
          `lineage commit mismatch at event ${event.id} (${event.subject}): recorded ${event.commit_id ?? 'none'}, the events give ${commit}; ` +
            "the writer stops here: run 'cairn lineage rebuild'",
        );
        break;
      }
      batch.last = { id: event.id, commit };
      if (event.tag) batch.tags.push([event.tag, commit]);
      if (batch.pack.bytes > BATCH_BYTES) break;
      if (performance.now() - slice > SLICE_MS) {
        await yieldToLoop();
        slice = performance.now();
      }
    }
    if (batch.last) {
      await this.persist(batch);
      this.events.markMirrored(batch.first, batch.last.id);
    }
    if (mismatch) throw mismatch;
  }

  /** The batch's pack, then its tags, then the branch: a reader never sees a ref to an object not there yet. */
  private async persist(batch: Batch): Promise<void> {
    await batch.pack.write(this.fs, this.gitdir);
    this.packsSinceRepack += 1;
    for (let i = 0; i < batch.tags.length; i += 32) {
      await Promise.all(batch.tags.slice(i, i + 32).map(([tag, commit]) => this.writeRef(`refs/tags/${tag}`, commit)));
    }
    await this.writeRef(MAIN_REF, batch.last!.commit);
  }

  /** A loose ref, replaced atomically (written as `<ref>.lock`, then renamed, as git does). */
  private async writeRef(ref: string, oid: string): Promise<void> {
    const file = path.join(this.gitdir, ref);
    const dir = path.dirname(file);
    if (!this.refDirs.has(dir)) {
      await this.fs.promises.mkdir(dir, { recursive: true });
      this.refDirs.add(dir);
    }
    await this.fs.promises.writeFile(`${file}.lock`, `${oid}\n`);
    await this.fs.promises.rename(`${file}.lock`, file);
  }

  /**
   * Merges the small packs (geometric: each repack touches mostly the small
   * ones) and packs the tag refs. Done between batches, so it never races a
   * write; pack contents do not change object ids.
   */
  async repack(): Promise<void> {
    try {
      await execFileAsync('git', ['--git-dir', this.gitdir, 'repack', '-d', '-q', '--geometric=2']);
      await execFileAsync('git', ['--git-dir', this.gitdir, 'pack-refs', '--all']);
      this.packsSinceRepack = 0;
    } catch (err) {
      // a mirror nicety: keep the packs as they are and try again after the next drain
      this.log.warn('lineage repack failed', { error: (err as Error).message });
    }
  }

  private async head(): Promise<string | null> {
    try {
      return await git.resolveRef({ fs: this.fs, gitdir: this.gitdir, ref: MAIN_REF });
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return null;
      throw err;
    }
  }

  /**
   * The chain at the branch's head, which must be the last commit SQLite
   * recorded as mirrored. A crash between writing the branch and recording
   * leaves events git already has: they are found on the branch (by their
   * trailer) and recorded instead of written twice. Any other difference
   * means the repository was changed behind our back; the writer stops
   * (events stay queued) until `cairn lineage rebuild`.
   */
  private async load(): Promise<CommitChain> {
    const head = await this.head();
    let last = this.events.lastMirrored();
    if (head !== (last?.commit ?? null)) {
      const found: Array<[number, string]> = [];
      let oid: string | undefined = head ?? undefined;
      while (oid && oid !== last?.commit) {
        const { commit } = await git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid });
        const id = eventIdOf(commit.message);
        if (id === undefined || id <= (last?.id ?? 0)) break;
        found.push([id, oid]);
        oid = commit.parent[0];
      }
      const pending = new Map(this.events.unmirrored(last?.id ?? 0, found.length).map((e) => [e.id, e.commit_id]));
      const consistent = found.every(([id, commit]) => pending.has(id) && (pending.get(id) ?? commit) === commit);
      if ((oid ?? null) !== (last?.commit ?? null) || !consistent) {
        throw new Error(
          `lineage branch ${MAIN_REF} is at ${head ?? 'nothing'} but the last recorded commit is ${last?.commit ?? 'none'}: ` +
            "the repository was changed outside Cairn; run 'cairn lineage rebuild'",
        );
      }
      this.events.markMirroredAs(found.reverse());
      last = this.events.lastMirrored();
    }
    if (!head || !last) return CommitChain.empty();
    const { commit } = await git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid: head });
    return CommitChain.load(head, last.id, commit.tree, (oid) => this.readTree(oid));
  }

  private async readTree(oid: string): Promise<LoadedEntry[]> {
    const { tree } = await git.readTree({ fs: this.fs, gitdir: this.gitdir, oid });
    return tree.map((e) => {
      if (e.type === 'commit') throw new Error(`lineage tree ${oid} holds a submodule (${e.path})`);
      if ((e.type === 'tree') !== (e.mode === '040000') || (e.type === 'blob' && e.mode !== '100644')) throw new Error(`lineage tree ${oid}: ${e.path} has mode ${e.mode}`);
      return { name: e.path, type: e.type, oid: e.oid };
    });
  }

  /**
   * Every event again from an empty repository (rebuild). A recorded commit id
   * the events do not give back is reported (logged, counted) and replaced by
   * the one now in git.
   */
  async replayAll(): Promise<{ events: number; mismatched: number; head: string | null }> {
    const chain = CommitChain.empty();
    let count = 0;
    let mismatched = 0;
    for (;;) {
      const events = this.events.after(chain.lastEventId, BATCH_EVENTS);
      if (events.length === 0) break;
      const batch: Batch = { pack: new PackBuilder(), tags: [], first: events[0]!.id, last: undefined };
      const commits: Array<[number, string]> = [];
      for (const event of events) {
        const commit = chain.append(event, batch.pack.add);
        if (event.commit_id !== null && event.commit_id !== commit) {
          mismatched += 1;
          this.log.error('rebuild: an event gives another commit than the one recorded; the rebuilt one replaces it', {
            event: event.id,
            subject: event.subject,
            recorded: event.commit_id,
            rebuilt: commit,
          });
        }
        commits.push([event.id, commit]);
        batch.last = { id: event.id, commit };
        if (event.tag) batch.tags.push([event.tag, commit]);
        count += 1;
      }
      await this.persist(batch);
      this.events.markMirroredAs(commits);
    }
    if (count > 0) await this.repack();
    return { events: count, mismatched, head: chain.head };
  }
}

/**
 * Rebuilds the repository from the events table alone into a fresh directory,
 * then swaps it in. Returns how many events were replayed and how many
 * recorded commit ids differed (0 when the rebuild is faithful).
 */
export async function rebuildRepository(options: { gitdir: string; events: EventQueries; log: Logger }): Promise<{
  events: number;
  mismatched: number;
  head: string | null;
}> {
  const fresh = `${options.gitdir}.rebuild-${process.pid}`;
  await fsp.rm(fresh, { recursive: true, force: true });
  const mirror = new GitMirror({ gitdir: fresh, events: options.events, log: options.log });
  await mirror.init();
  const result = await mirror.replayAll();
  const old = `${options.gitdir}.old-${process.pid}`;
  const hadOld = nodeFs.existsSync(options.gitdir);
  if (hadOld) await fsp.rename(options.gitdir, old);
  await fsp.rename(fresh, options.gitdir);
  if (hadOld) await fsp.rm(old, { recursive: true, force: true });
  return result;
}

export function lineageDir(dataDir: string): string {
  return path.join(dataDir, 'lineage.git');
}
