// Queries for jobs (migrations/011_derive_jobs.sql): work done after the
// request that asked for it, whose state survives a restart.
import type { Database } from './db.ts';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface JobRow {
  id: string;
  kind: string;
  state: JobState;
  /** JSON: the request, normalised */
  params: string;
  derive_key: string;
  parent_version_id: number;
  target_name: string;
  target_version: string;
  progress_bytes: number;
  progress_total: number;
  phase: string;
  result_version_id: number | null;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  created_by: string;
  principal: string | null;
  /** JSON array of name patterns */
  caller_models: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** A job row with its parent and result as name, version and digest. */
export interface JobView extends JobRow {
  parent_name: string;
  parent_version: string;
  parent_digest: string;
  result_name: string | null;
  result_version: string | null;
  result_digest: string | null;
}

const VIEW = `SELECT j.*, pm.name AS parent_name, pv.version AS parent_version, pv.digest AS parent_digest,
                     rm.name AS result_name, rv.version AS result_version, rv.digest AS result_digest
                FROM jobs j
                JOIN versions pv ON pv.id = j.parent_version_id JOIN models pm ON pm.id = pv.model_id
                LEFT JOIN versions rv ON rv.id = j.result_version_id LEFT JOIN models rm ON rm.id = rv.model_id`;

export class JobQueries {
  constructor(private readonly db: Database) {}

  insert(row: Pick<JobRow, 'id' | 'kind' | 'state' | 'params' | 'derive_key' | 'parent_version_id' | 'target_name' | 'target_version' | 'progress_total' | 'created_by' | 'principal' | 'caller_models' | 'created_at'>): void {
    this.db.run(
      `INSERT INTO jobs (id, kind, state, params, derive_key, parent_version_id, target_name, target_version, progress_total,
                         created_by, principal, caller_models, created_at, updated_at)
       VALUES (@id, @kind, @state, @params, @derive_key, @parent_version_id, @target_name, @target_version, @progress_total,
               @created_by, @principal, @caller_models, @created_at, @created_at)`,
      row,
    );
  }

  get(id: string): JobView | undefined {
    return this.db.first<JobView>(`${VIEW} WHERE j.id = ?`, [id]);
  }

  /** Jobs of this derivation not failed, newest first. */
  byKey(key: string): JobView[] {
    return this.db.all<JobView>(`${VIEW} WHERE j.derive_key = ? AND j.state != 'failed' ORDER BY j.created_at DESC, j.rowid DESC`, [key]);
  }

  /** Queued or running jobs that will publish `name@version`. */
  activeFor(name: string, version: string): JobRow | undefined {
    return this.db.first<JobRow>("SELECT * FROM jobs WHERE target_name = ? AND target_version = ? AND state IN ('queued', 'running')", [name, version]);
  }

  inState(state: JobState): JobRow[] {
    return this.db.all<JobRow>('SELECT * FROM jobs WHERE state = ? ORDER BY created_at, rowid', [state]);
  }

  /** Takes the oldest queued job: it becomes running, with one more attempt. */
  claimNext(now: string): JobRow | undefined {
    return this.db.transaction(() => {
      const next = this.db.first<JobRow>("SELECT * FROM jobs WHERE state = 'queued' ORDER BY created_at, rowid LIMIT 1");
      if (!next) return undefined;
      this.db.run(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, progress_bytes = 0, phase = '', started_at = ?, updated_at = ? WHERE id = ?",
        [now, now, next.id],
      );
      return this.db.first<JobRow>('SELECT * FROM jobs WHERE id = ?', [next.id]);
    });
  }

  progress(id: string, bytes: number, phase: string, now: string): void {
    this.db.run("UPDATE jobs SET progress_bytes = ?, phase = ?, updated_at = ? WHERE id = ? AND state = 'running'", [bytes, phase, now, id]);
  }

  succeed(id: string, resultVersionId: number, now: string): void {
    this.db.run(
      "UPDATE jobs SET state = 'succeeded', result_version_id = ?, progress_bytes = progress_total, phase = '', error_code = NULL, error_message = NULL, finished_at = ?, updated_at = ? WHERE id = ?",
      [resultVersionId, now, now, id],
    );
  }

  fail(id: string, code: string, message: string, now: string): void {
    this.db.run("UPDATE jobs SET state = 'failed', error_code = ?, error_message = ?, phase = '', finished_at = ?, updated_at = ? WHERE id = ?", [code, message, now, now, id]);
  }

  /** Back in the queue: a run cut short by a shutdown (`refund`: it does not count as an attempt) or a crash. */
  requeue(id: string, now: string, refund: boolean): void {
    this.db.run(
      `UPDATE jobs SET state = 'queued', progress_bytes = 0, phase = '', attempts = attempts - ?, updated_at = ? WHERE id = ? AND state = 'running'`,
      [refund ? 1 : 0, now, id],
    );
  }
}
