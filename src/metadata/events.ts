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

export type NewEvent = Omit<EventRow, 'id' | 'commit_id' | 'mirrored_at'>;

export class EventQueries {
  constructor(private readonly db: Database) {}

  /** Call inside the transaction that makes the change itself. */
  insert(event: NewEvent): number {
    const result = this.db.run(
      `INSERT INTO events (model_id, kind, version, alias, actor, time, message, subject, changes, tag)
       VALUES (@model_id, @kind, @version, @alias, @actor, @time, @message, @subject, @changes, @tag)`,
      event,
    );
    return Number(result.lastInsertRowid);
  }

  pending(limit: number): EventRow[] {
    return this.db.all<EventRow>('SELECT * FROM events WHERE commit_id IS NULL ORDER BY id LIMIT ?', [limit]);
  }

  lag(): { pending: number; oldest: string | null } {
    const row = this.db.first<{ n: number; oldest: string | null }>(
      'SELECT count(*) AS n, min(time) AS oldest FROM events WHERE commit_id IS NULL',
    )!;
    return { pending: row.n, oldest: row.oldest };
  }

  markMirrored(id: number, commit: string): void {
    this.db.run('UPDATE events SET commit_id = ?, mirrored_at = ? WHERE id = ?', [commit, new Date().toISOString(), id]);
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

  /** The lineage commit that published `version` of a model; null until mirrored. */
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
    const row = this.db.first<{ id: number; commit_id: string }>(
      'SELECT id, commit_id FROM events WHERE commit_id IS NOT NULL ORDER BY id DESC LIMIT 1',
    );
    return row && { id: row.id, commit: row.commit_id };
  }
}
