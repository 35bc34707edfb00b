// Queries for webhooks and their deliveries (see migrations/007_webhooks.sql).
import { randomBytes } from 'node:crypto';
import { CairnError } from '../errors.ts';
import type { Database } from './db.ts';
import { EVENT_KINDS, type EventKind, type WebhookDelivery, type WebhookDoc, type WebhookCreated } from '../api/index.ts';
import type { EventRow } from './events.ts';
import { SecretBox } from './secret-box.ts';
import { checkModelPatterns, modelAllowed } from '../access.ts';

const KINDS: readonly EventKind[] = EVENT_KINDS;

interface WebhookRow {
  id: number;
  url: string;
  /** the signing secret, sealed (SecretBox) */
  secret_sealed: string;
  events: string;
  models: string;
  created_by: string;
  created_at: string;
  cursor: number;
}

/** A delivery as the API shows it. */
export type DeliveryRow = WebhookDelivery;

/** The event a delivery carries, with its model's name. */
export type DeliveryEvent = Pick<EventRow, 'id' | 'kind' | 'version' | 'alias' | 'actor' | 'time' | 'subject' | 'message'> & { model: string };

/** A due delivery with what sending it needs. */
export interface DueDelivery extends DeliveryRow {
  url: string;
  /** undefined: the sealed secret does not open with this server's key */
  secret: string | undefined;
  event: DeliveryEvent;
}

export function checkUrl(url: unknown): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' && url.length <= 2048 ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new CairnError('INVALID_ARGUMENT', `url must be an http:// or https:// URL of at most 2048 characters, got ${JSON.stringify(url)}`);
  }
  if (parsed.username || parsed.password) throw new CairnError('INVALID_ARGUMENT', 'url must not carry credentials; the payload is signed with the secret');
  return parsed.href;
}

function checkKinds(events: unknown): EventKind[] {
  if (events === undefined || events === null) return [];
  const list = Array.isArray(events) ? events : [events];
  for (const e of list) {
    if (!KINDS.includes(e as EventKind)) throw new CairnError('INVALID_ARGUMENT', `events must be some of ${KINDS.join(', ')}, got ${JSON.stringify(e)}`);
  }
  return [...new Set(list as EventKind[])].sort();
}

function webhookDoc(row: WebhookRow): WebhookDoc {
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as EventKind[],
    models: JSON.parse(row.models) as string[],
    created_by: row.created_by,
    created_at: row.created_at,
  };
}

export class WebhookQueries {
  /** `box` seals the signing secrets in the table (see secret-box.ts). */
  constructor(private readonly db: Database, private readonly box: SecretBox) {}

  /**
   * Seals the secrets still in clear (rows from before migration 009) and
   * lists the hooks whose secret does not open with this key (a replaced
   * webhook-key). The clear bytes are overwritten in the file (secure_delete)
   * and the write-ahead log is emptied.
   */
  sealClearSecrets(): { sealed: number; unreadable: number[] } {
    const rows = this.db.all<{ id: number; secret_sealed: string }>('SELECT id, secret_sealed FROM webhooks');
    const clear = rows.filter((r) => !SecretBox.isSealed(r.secret_sealed));
    const unreadable = rows.filter((r) => SecretBox.isSealed(r.secret_sealed) && this.box.open(r.secret_sealed) === undefined).map((r) => r.id);
    if (clear.length > 0) {
      const before = this.db.raw.pragma('secure_delete', { simple: true });
      this.db.raw.pragma('secure_delete = ON');
      try {
        this.db.transaction(() => {
          for (const r of clear) this.db.run('UPDATE webhooks SET secret_sealed = ? WHERE id = ?', [this.box.seal(r.secret_sealed), r.id]);
        });
        this.db.raw.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        this.db.raw.pragma(`secure_delete = ${Number(before)}`);
      }
    }
    return { sealed: clear.length, unreadable };
  }

  /** A new hook; it gets the events from now on. The secret is in this answer only. */
  create(input: { url: unknown; events?: unknown; models?: unknown; createdBy: string }, now = new Date()): WebhookCreated {
    const url = checkUrl(input.url);
    const events = checkKinds(input.events);
    const models = checkModelPatterns(input.models);
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const id = this.db.transaction(() => {
      const last = this.db.first<{ id: number | null }>('SELECT max(id) AS id FROM events')!.id ?? 0;
      return Number(
        this.db.run('INSERT INTO webhooks (url, secret_sealed, events, models, created_by, created_at, cursor) VALUES (?, ?, ?, ?, ?, ?, ?)', [
          url,
          this.box.seal(secret),
          JSON.stringify(events),
          JSON.stringify(models),
          input.createdBy,
          now.toISOString(),
          last,
        ]).lastInsertRowid,
      );
    });
    return { ...this.get(id), secret };
  }

  list(): WebhookDoc[] {
    return this.db.all<WebhookRow>('SELECT * FROM webhooks ORDER BY id').map(webhookDoc);
  }

  get(id: unknown): WebhookDoc {
    return webhookDoc(this.row(id));
  }

  /** Where a hook posts, with its secret (for a ping; undefined when it does not open). */
  target(id: unknown): { id: number; url: string; secret: string | undefined } {
    const { url, secret_sealed } = this.row(id);
    return { id: Number(id), url, secret: this.box.open(secret_sealed) };
  }

  private row(id: unknown): WebhookRow {
    const row = typeof id === 'number' || (typeof id === 'string' && /^\d{1,15}$/.test(id)) ? this.db.first<WebhookRow>('SELECT * FROM webhooks WHERE id = ?', [Number(id)]) : undefined;
    if (!row) throw new CairnError('WEBHOOK_NOT_FOUND', `no webhook ${String(id)}`);
    return row;
  }

  /** Removes a hook and its deliveries (pending ones are not sent). */
  delete(id: unknown): void {
    const hook = this.get(id);
    this.db.run('DELETE FROM webhooks WHERE id = ?', [hook.id]);
  }

  /** A hook's deliveries, newest first. */
  deliveries(id: unknown, limit: number): DeliveryRow[] {
    const hook = this.get(id);
    return this.db.all<DeliveryRow>('SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?', [hook.id, limit]);
  }

  /**
   * Turns the events after each hook's cursor into deliveries (those of its
   * kinds and models), moving the cursor in the same transaction; `batch`
   * events at most per call. Returns whether any cursor moved (call again).
   */
  fanOut(now: Date, batch = 500): boolean {
    return this.db.transaction(() => {
      let moved = false;
      const rows = this.db.all<WebhookRow>('SELECT * FROM webhooks');
      if (rows.length === 0) return false;
      // one read for every hook: the events after the lowest cursor
      const all = this.db.all<{ id: number; kind: EventKind; model: string }>(
        'SELECT e.id, e.kind, m.name AS model FROM events e JOIN models m ON m.id = e.model_id WHERE e.id > ? ORDER BY e.id LIMIT ?',
        [Math.min(...rows.map((r) => r.cursor)), batch],
      );
      for (const row of rows) {
        const hook = webhookDoc(row);
        const events = all.filter((e) => e.id > row.cursor);
        for (const e of events) {
          if (hook.events.length > 0 && !hook.events.includes(e.kind)) continue;
          if (!modelAllowed(hook.models, e.model)) continue;
          this.db.run("INSERT OR IGNORE INTO webhook_deliveries (webhook_id, event_id, state, next_at) VALUES (?, ?, 'pending', ?)", [row.id, e.id, now.toISOString()]);
        }
        const last = events[events.length - 1];
        if (last) {
          this.db.run('UPDATE webhooks SET cursor = ? WHERE id = ?', [last.id, row.id]);
          moved = true;
        }
      }
      return moved;
    });
  }

  /** Pending deliveries due by `now`, oldest first. */
  due(now: Date, limit: number): DueDelivery[] {
    const rows = this.db.all<DeliveryRow & { url: string; secret_sealed: string; event: string }>(
      `SELECT d.*, w.url, w.secret_sealed,
              json_object('id', e.id, 'kind', e.kind, 'model', m.name, 'version', e.version, 'alias', e.alias,
                          'actor', e.actor, 'time', e.time, 'subject', e.subject, 'message', e.message) AS event
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id JOIN models m ON m.id = e.model_id
        WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.id LIMIT ?`,
      [now.toISOString(), limit],
    );
    return rows.map(({ secret_sealed, ...r }) => ({ ...r, secret: this.box.open(secret_sealed), event: JSON.parse(r.event) as DeliveryEvent }));
  }

  /** When the next pending delivery is due; undefined when none is pending. */
  nextDue(): Date | undefined {
    const row = this.db.first<{ at: string | null }>("SELECT min(next_at) AS at FROM webhook_deliveries WHERE state = 'pending'");
    return row?.at ? new Date(row.at) : undefined;
  }

  delivered(id: number, status: number, now: Date): void {
    this.db.run("UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL, delivered_at = ? WHERE id = ?", [status, now.toISOString(), id]);
  }

  /** A failed attempt: due again at `retryAt`, or `failed` for good when undefined. */
  attemptFailed(id: number, failure: { status?: number; error: string }, retryAt: Date | undefined): void {
    this.db.run('UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, next_at = coalesce(?, next_at) WHERE id = ?', [
      retryAt ? 'pending' : 'failed',
      failure.status ?? null,
      failure.error.slice(0, 500),
      retryAt?.toISOString() ?? null,
      id,
    ]);
  }

  /** Makes a hook's pending and failed deliveries due now (failed ones get their attempts back); returns how many. */
  retryNow(id: unknown, now = new Date()): number {
    const hook = this.get(id);
    return this.db.run("UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = ? WHERE webhook_id = ? AND state IN ('pending', 'failed')", [
      now.toISOString(),
      hook.id,
    ]).changes;
  }

  /** Pending deliveries, for /readyz. */
  lag(): { pending: number } {
    return { pending: this.db.first<{ n: number }>("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'")!.n };
  }
}
