// Records events into the outbox with their lineage commit ids, computed in
// the transaction of the change (CommitChain.append: hashing in memory, no
// git I/O), so an id exists the moment a version does and nothing waits for
// the git writer. The recorder's chain runs ahead of the writer's: it starts
// from what git holds and appends every event recorded since.
import type { Logger } from '../log.ts';
import type { EventQueries, NewEvent } from '../metadata/events.ts';
import { CommitChain } from './commit-chain.ts';
import type { GitMirror } from './git-mirror.ts';

export type EventToRecord = Omit<NewEvent, 'id' | 'commit_id'>;

export class EventRecorder {
  private constructor(
    private readonly events: EventQueries,
    private chain: CommitChain,
    private readonly log: Logger,
  ) {}

  /**
   * The chain at git's head, then every event after it; when git does not
   * match SQLite (the repository deleted or changed: the mirror reports it
   * and waits for `cairn lineage rebuild`), every event from the first, which
   * gives the ids a rebuild writes.
   */
  static async open(options: { events: EventQueries; mirror: GitMirror; log: Logger }): Promise<EventRecorder> {
    const { events, mirror, log } = options;
    let chain: CommitChain;
    try {
      chain = await mirror.committedChain();
    } catch (err) {
      log.warn('lineage repository does not match the events; commit ids are computed from the events alone', { error: (err as Error).message });
      chain = CommitChain.empty();
    }
    const recorder = new EventRecorder(events, chain, log);
    recorder.catchUp();
    return recorder;
  }

  /** The newest event's commit (null: no event yet). */
  get head(): string | null {
    return this.chain.head;
  }

  /**
   * Appends the recorded events the chain has not seen. Events recorded
   * without an id (by versions that computed ids only when mirroring) get
   * theirs; a recorded id the events do not give back is logged and kept —
   * the chain carries on with the computed one, which is what git (after
   * `cairn lineage rebuild`) will hold.
   */
  private catchUp(): void {
    const started = Date.now();
    const missing: Array<[number, string]> = [];
    let replayed = 0;
    for (;;) {
      const rows = this.events.after(this.chain.lastEventId, 1000);
      if (rows.length === 0) break;
      for (const row of rows) {
        const commit = this.chain.append(row);
        replayed += 1;
        if (row.commit_id === null) missing.push([row.id, commit]);
        else if (row.commit_id !== commit) {
          this.log.error('lineage commit mismatch: an event gives another commit than the one recorded (kept); run cairn lineage rebuild', {
            event: row.id,
            subject: row.subject,
            recorded: row.commit_id,
            computed: commit,
          });
        }
      }
    }
    if (missing.length > 0) this.events.setCommits(missing);
    if (replayed > 0) this.log.info('lineage commit ids computed for events git does not have yet', { events: replayed, ids_recorded: missing.length, ms: Date.now() - started });
  }

  /**
   * Runs `transaction` (a SQLite transaction that may record events); if it
   * throws, the events it appended are taken back out of the chain.
   */
  atomically<T>(transaction: () => T): T {
    const chain = this.chain;
    const checkpoint = chain.begin();
    let result: T;
    try {
      result = transaction();
    } catch (err) {
      chain.rollback(checkpoint);
      throw err;
    }
    chain.end();
    return result;
  }

  /** Inserts the event with the next id and its commit; call inside the transaction of the change. */
  record(event: EventToRecord): { id: number; commit: string } {
    const newest = this.events.newest()?.id ?? 0;
    if (newest !== this.chain.lastEventId) {
      // a transaction rolled back outside `atomically`, or another writer: rare, and costs a replay
      this.log.warn('lineage commit chain out of step with the events table; computing it again from the events', { chain_at: this.chain.lastEventId, newest_event: newest });
      this.chain = CommitChain.empty();
      this.catchUp();
    }
    const id = newest + 1;
    const commit = this.chain.append({ ...event, id });
    this.events.insert({ ...event, id, commit_id: commit });
    return { id, commit };
  }
}
