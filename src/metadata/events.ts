// Queries for the event log: the git mirror's outbox and the history index.
import type { EventKind } from '../api/index.ts';
import type { Database } from './db.ts';

export type { EventKind };

export interface EventRow {
  id: number;
  model_id: number;
  kind: EventKind;
  version: string | null;
  alias: string | null;
  actor: string;
  time: string;
  message: string;
  subject: string;
  changes: string;
  tag: string | null;
  commit_id: string | null;
  mirrored_at: string | null;
}

export type NewEvent = Omit<EventRow, 'commit_id' | 'mirrored_at'> & { commit_id: string };

export class EventQueries {
  constructor(private readonly db: Database) {}

  /**
   * Call inside the transaction that makes the change itself. The id is the
   * next one (the newest's + 1, what SQLite would pick): its commit, which
   * names the id, is computed before the row exists.
   */
  insert(event: NewEvent): void {
    this.db.run(
      `INSERT INTO events (id, model_id, kind, version, alias, actor, time, message, subject, changes, tag, commit_id)
       VALUES (@id, @model_id, @kind, @version, @alias, @actor, @time, @message, @subject, @changes, @tag, @commit_id)`,
      event,
    );
  }

  /** The newest event. */
  newest(): { id: number; commit_id: string | null } | undefined {
    return this.db.first<{ id: number; commit_id: string | null }>('SELECT id, commit_id FROM events ORDER BY id DESC LIMIT 1');
  }

  /** Events git does not have yet, in order, after `afterId`. */
  unmirrored(afterId: number, limit: number): EventRow[] {
    return this.db.all<EventRow>('SELECT * FROM events WHERE mirrored_at IS NULL AND id > ? ORDER BY id LIMIT ?', [afterId, limit]);
  }

  lag(): { pending: number; oldest: string | null } {
    const row = this.db.first<{ n: number; oldest: string | null }>(
      'SELECT count(*) AS n, min(time) AS oldest FROM events WHERE mirrored_at IS NULL',
    )!;
    return { pending: row.n, oldest: row.oldest };
  }

  /** Events `fromId`..`toId` are in git now, with the commit ids they were recorded with (one statement: one SQLite commit). */
  markMirrored(fromId: number, toId: number): void {
    this.db.run('UPDATE events SET mirrored_at = ? WHERE id BETWEEN ? AND ? AND mirrored_at IS NULL', [new Date().toISOString(), fromId, toId]);
  }

  /** These events are in git as these commits (found there, or rebuilt), in one transaction. */
  markMirroredAs(commits: Array<[id: number, commit: string]>): void {
    const at = new Date().toISOString();
    this.db.transaction(() => {
      for (const [id, commit] of commits) this.db.run('UPDATE events SET commit_id = ?, mirrored_at = ? WHERE id = ?', [commit, at, id]);
    });
  }

  /** Commit ids for events recorded without one (by a version that computed them only when mirroring). */
  setCommits(commits: Array<[id: number, commit: string]>): void {
    this.db.transaction(() => {
      for (const [id, commit] of commits) this.db.run('UPDATE events SET commit_id = ? WHERE id = ? AND commit_id IS NULL', [commit, id]);
    });
  }

  /** Every event in order (for a rebuild), in pages. */
  after(id: number, limit: number): EventRow[] {
    return this.db.all<EventRow>('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?', [id, limit]);
  }

  /** A model's events, newest first, with ids below `beforeId`. */
  history(modelId: number, options: { beforeId?: number; limit: number }): EventRow[] {
    return this.db.all<EventRow>('SELECT * FROM events WHERE model_id = ? AND id < ? ORDER BY id DESC LIMIT ?', [
      modelId,
      options.beforeId ?? Number.MAX_SAFE_INTEGER,
      options.limit,
    ]);
  }

  /** The lineage commit that published `version` of a model (recorded with the event; git may not have it yet). */
  publishCommit(modelId: number, version: string): string | null {
    return (
      this.db.first<{ commit_id: string | null }>("SELECT commit_id FROM events WHERE model_id = ? AND kind = 'publish' AND version = ?", [modelId, version])
        ?.commit_id ?? null
    );
  }

  /** The id of the event that published `version` of a model. */
  publishEventId(modelId: number, version: string): number | undefined {
    return this.db.first<{ id: number }>("SELECT id FROM events WHERE model_id = ? AND kind = 'publish' AND version = ?", [modelId, version])?.id;
  }

  /** The version whose publish commit is `commit`, if any. */
  versionPublishedBy(modelId: number, commit: string): string | undefined {
    return this.db.first<{ version: string }>("SELECT version FROM events WHERE model_id = ? AND kind = 'publish' AND commit_id = ?", [modelId, commit])
      ?.version;
  }

  /** The newest event already in git: the commit the branch must point at. */
  lastMirrored(): { id: number; commit: string } | undefined {
    const pending = this.db.first<{ id: number | null }>('SELECT min(id) AS id FROM events WHERE mirrored_at IS NULL')!.id;
    const row = this.db.first<{ id: number; commit_id: string }>('SELECT id, commit_id FROM events WHERE id < ? ORDER BY id DESC LIMIT 1', [
      pending ?? Number.MAX_SAFE_INTEGER,
    ]);
    return row && { id: row.id, commit: row.commit_id };
  }
}
