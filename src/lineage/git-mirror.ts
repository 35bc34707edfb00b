// The git mirror: one serial writer that drains the events outbox into a bare
// repository with isomorphic-git's object-level API (blobs, trees, commits,
// refs — no index, no working tree). Each event's `changes` say exactly which
// files it writes or removes, so replaying the events in order from an empty
// repository reproduces every commit id (rebuild).
//
// Git is a mirror: a failed write is logged, the event stays pending and the
// writer retries with backoff; publishing never waits for it.
import { execFile } from 'node:child_process';
import nodeFs from 'node:fs';
import { promisify } from 'node:util';
import fsp from 'node:fs/promises';
import path from 'node:path';
import git from 'isomorphic-git';
import type { Logger } from '../log.ts';
import type { EventQueries, EventRow } from '../metadata/events.ts';

export const MAIN_BRANCH = 'main';
/** events written between two repacks of the repository */
const REPACK_EVERY = 500;
const execFileAsync = promisify(execFile);
const MAIN_REF = `refs/heads/${MAIN_BRANCH}`;
const TRAILER = 'Cairn-Event';

type FsClient = typeof nodeFs;

interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

export interface MirrorStatus {
  pending: number;
  oldest_pending: string | null;
  last_error: string | null;
}

export interface GitMirrorOptions {
  gitdir: string;
  events: EventQueries;
  log: Logger;
  /** the file system isomorphic-git writes through (tests inject faults here) */
  fs?: FsClient;
  /** first retry delay after a failure; doubles up to 30 s */
  retryMs?: number;
}

export function commitMessage(event: EventRow): string {
  const body = event.message.trim();
  return `${event.subject}\n\n${body ? `${body}\n\n` : ''}${TRAILER}: ${event.id}\n`;
}

function eventIdOf(message: string): number | undefined {
  const m = new RegExp(`^${TRAILER}: (\\d+)$`, 'm').exec(message);
  return m ? Number(m[1]) : undefined;
}

function signature(event: EventRow) {
  return {
    name: event.actor,
    email: `${event.actor}@cairn`,
    timestamp: Math.floor(Date.parse(event.time) / 1000),
    timezoneOffset: 0,
  };
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
  /** parsed trees by oid; trees are immutable so this never goes stale */
  private readonly trees = new Map<string, TreeEntry[]>();
  private sinceRepack = 0;

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
    return { pending: lag.pending, oldest_pending: lag.oldest, last_error: this.lastError };
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
      let head = await this.reconcile(await this.head());
      for (;;) {
        const batch = this.events.pending(200);
        if (batch.length === 0) break;
        for (const event of batch) {
          if (this.stopped) return;
          head = await this.apply(event, head);
          this.events.markMirrored(event.id, head);
          this.sinceRepack += 1;
        }
      }
      if (this.sinceRepack >= REPACK_EVERY) await this.repack();
      if (this.failures > 0) this.log.info('lineage mirror caught up', { after_failures: this.failures });
      this.failures = 0;
      this.lastError = null;
    } catch (err) {
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
   * isomorphic-git writes loose objects; thousands of them make clones slow
   * and waste disk. Packing them (and the tag refs) is the writer's own job,
   * done between drains so it never races a write. Pack contents do not
   * change object ids, so rebuild equality holds.
   */
  private async repack(): Promise<void> {
    try {
      await execFileAsync('git', ['--git-dir', this.gitdir, 'repack', '-d', '-q']);
      await execFileAsync('git', ['--git-dir', this.gitdir, 'pack-refs', '--all']);
      this.sinceRepack = 0;
    } catch (err) {
      // a mirror nicety: keep the loose objects and try again after the next drain
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
   * Checks the branch against the last commit SQLite recorded. A crash between
   * writing the ref and recording the commit id leaves events git already has:
   * they are found on the branch and recorded instead of written twice. Any
   * other difference means the repository was changed behind our back; the
   * writer stops (events stay queued) until `cairn lineage rebuild`.
   */
  private async reconcile(head: string | null): Promise<string | null> {
    const last = this.events.lastMirrored();
    if (head === (last?.commit ?? null)) return head;
    const found: Array<[number, string]> = [];
    let oid: string | undefined = head ?? undefined;
    while (oid && oid !== last?.commit) {
      const { commit } = await git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid });
      const id = eventIdOf(commit.message);
      if (id === undefined || id <= (last?.id ?? 0)) break;
      found.push([id, oid]);
      oid = commit.parent[0];
    }
    if ((oid ?? null) !== (last?.commit ?? null)) {
      throw new Error(
        `lineage branch ${MAIN_REF} is at ${head ?? 'nothing'} but the last recorded commit is ${last?.commit ?? 'none'}: ` +
          "the repository was changed outside Cairn; run 'cairn lineage rebuild'",
      );
    }
    for (const [id, commit] of found.reverse()) this.events.markMirrored(id, commit);
    return head;
  }

  /** Writes one event as one commit on main (and its tag); returns the commit id. */
  async apply(event: EventRow, parent: string | null): Promise<string> {
    const changes = JSON.parse(event.changes) as Record<string, string | null>;
    let tree: string | null = parent
      ? (await git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid: parent })).commit.tree
      : null;
    for (const [file, content] of Object.entries(changes).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const blob = content === null ? null : await git.writeBlob({ fs: this.fs, gitdir: this.gitdir, blob: Buffer.from(content, 'utf8') });
      tree = await this.updateTree(tree, file.split('/'), blob);
    }
    tree ??= await git.writeTree({ fs: this.fs, gitdir: this.gitdir, tree: [] });
    const commit = await git.writeCommit({
      fs: this.fs,
      gitdir: this.gitdir,
      commit: {
        message: commitMessage(event),
        tree,
        parent: parent ? [parent] : [],
        author: signature(event),
        committer: signature(event),
      },
    });
    if (event.tag) await git.writeRef({ fs: this.fs, gitdir: this.gitdir, ref: `refs/tags/${event.tag}`, value: commit, force: true });
    await git.writeRef({ fs: this.fs, gitdir: this.gitdir, ref: MAIN_REF, value: commit, force: true });
    return commit;
  }

  private async readTree(oid: string): Promise<TreeEntry[]> {
    let entries = this.trees.get(oid);
    if (!entries) {
      entries = (await git.readTree({ fs: this.fs, gitdir: this.gitdir, oid })).tree as TreeEntry[];
      if (this.trees.size > 50_000) this.trees.clear();
      this.trees.set(oid, entries);
    }
    return entries;
  }

  /** Returns the new tree oid with `segments` set to `blob` (or removed when null); null for an empty tree. */
  private async updateTree(tree: string | null, segments: string[], blob: string | null): Promise<string | null> {
    const [name, ...rest] = segments as [string, ...string[]];
    const entries = tree ? [...(await this.readTree(tree))] : [];
    const index = entries.findIndex((e) => e.path === name);
    const current = index >= 0 ? entries[index] : undefined;
    let replacement: TreeEntry | undefined;
    if (rest.length === 0) {
      replacement = blob ? { mode: '100644', path: name, oid: blob, type: 'blob' } : undefined;
    } else {
      const sub = await this.updateTree(current?.type === 'tree' ? current.oid : null, rest, blob);
      replacement = sub ? { mode: '040000', path: name, oid: sub, type: 'tree' } : undefined;
    }
    // unchanged (an event rewrote a file with the same bytes): nothing to write
    if (replacement && current && replacement.oid === current.oid && replacement.mode === current.mode) return tree;
    if (index >= 0) entries.splice(index, 1);
    if (replacement) entries.push(replacement);
    if (entries.length === 0) return null;
    const oid = await git.writeTree({ fs: this.fs, gitdir: this.gitdir, tree: entries });
    return oid;
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
  let head: string | null = null;
  let count = 0;
  let mismatched = 0;
  let last = 0;
  for (;;) {
    const batch = options.events.after(last, 500);
    if (batch.length === 0) break;
    for (const event of batch) {
      head = await mirror.apply(event, head);
      if (event.commit_id && event.commit_id !== head) mismatched += 1;
      options.events.markMirrored(event.id, head);
      count += 1;
      last = event.id;
    }
  }
  const old = `${options.gitdir}.old-${process.pid}`;
  const hadOld = nodeFs.existsSync(options.gitdir);
  if (hadOld) await fsp.rename(options.gitdir, old);
  await fsp.rename(fresh, options.gitdir);
  if (hadOld) await fsp.rm(old, { recursive: true, force: true });
  return { events: count, mismatched, head };
}

export function lineageDir(dataDir: string): string {
  return path.join(dataDir, 'lineage.git');
}
