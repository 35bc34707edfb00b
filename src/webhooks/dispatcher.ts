// Sends webhook deliveries. One serial loop, like the git mirror: woken after
// each change (and by a timer when a retry falls due), it turns new events
// into delivery rows (WebhookQueries.fanOut), then POSTs every due one. A
// 2xx answer delivers it; anything else — another status, a timeout, a
// refused connection — is retried with exponential backoff until
// MAX_ATTEMPTS, then the delivery is `failed` (kept, with its last error).
// Each hook gets one delivery at a time, oldest first, and hooks are served
// side by side, so a slow or dead receiver delays only its own; a retry
// does not hold back that hook's later events (no ordering). The rows
// survive restarts, so nothing is lost (at least once; receivers dedupe on
// X-Cairn-Delivery).
//
// Each attempt resolves the hook's host and refuses non-public addresses
// (target.ts) before connecting — to the address it checked.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { CairnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { checkUrl, type DueDelivery, type WebhookQueries } from '../metadata/webhooks.ts';
import { resolveTarget, WebhookTargetError, type Lookup, type WebhookTarget } from './target.ts';

export interface WebhookDispatcherOptions {
  queries: WebhookQueries;
  log: Logger;
  /** first retry delay; doubles per attempt, at most MAX_DELAY_MS */
  retryMs?: number;
  /** per attempt */
  timeoutMs?: number;
  maxAttempts?: number;
  /** hooks may post to loopback, private and link-local addresses (CAIRN_WEBHOOK_ALLOW_PRIVATE) */
  allowPrivate?: boolean;
  /** name resolution, for tests */
  lookup?: Lookup;
  now?: () => Date;
}

/** Why a hook's secret is missing: it was sealed under another key. */
const SECRET_UNREADABLE = 'the signing secret does not open with <data dir>/webhook-key (was the key file replaced?); delete the hook and create it again';

const MAX_DELAY_MS = 60 * 60 * 1000;

/** The body a receiver gets: the event, as the history shows it. */
export function deliveryBody(d: DueDelivery): string {
  const e = d.event;
  return JSON.stringify({
    delivery: d.id,
    event: e.kind,
    event_id: e.id,
    model: e.model,
    version: e.version,
    alias: e.alias,
    actor: e.actor,
    time: e.time,
    subject: e.subject,
    message: e.message,
  });
}

/** `sha256=<hex>`: HMAC-SHA256 of the exact body with the hook's secret. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookDispatcher {
  private readonly queries: WebhookQueries;
  private readonly log: Logger;
  private readonly retryMs: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly allowPrivate: boolean;
  private readonly lookup: Lookup | undefined;
  private readonly now: () => Date;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<AbortController>();

  constructor(options: WebhookDispatcherOptions) {
    this.queries = options.queries;
    this.log = options.log;
    this.retryMs = options.retryMs ?? 5_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.allowPrivate = options.allowPrivate ?? false;
    this.lookup = options.lookup;
    this.now = options.now ?? (() => new Date());
  }

  /** Runs a round (or asks the running one to go again); resolves when it is done. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.round().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.kick();
      } else {
        this.schedule();
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.inFlight) c.abort();
    await this.running;
  }

  private async round(): Promise<void> {
    try {
      while (this.queries.fanOut(this.now()));
      for (;;) {
        const due = this.queries.due(this.now(), 100);
        if (due.length === 0) break;
        // one delivery at a time per hook, oldest first; hooks side by side,
        // so a receiver that times out delays only its own deliveries
        const byHook = new Map<number, DueDelivery[]>();
        for (const d of due) byHook.set(d.webhook_id, [...(byHook.get(d.webhook_id) ?? []), d]);
        await Promise.all(
          [...byHook.values()].map(async (list) => {
            for (const d of list) {
              if (this.stopped) return;
              await this.attempt(d);
            }
          }),
        );
        if (this.stopped) return;
      }
    } catch (err) {
      // the database failing is not the receiver's fault: try again later
      this.log.error('webhook dispatch failed', { error: (err as Error).message });
    }
  }

  /**
   * Checks a new hook's URL: 400 when it is not http(s), or names or resolves
   * to a non-public address (unless allowed). A name that does not resolve
   * yet is accepted: every delivery checks again.
   */
  async checkTarget(url: unknown): Promise<void> {
    try {
      await untilAborted(resolveTarget(checkUrl(url), this.allowPrivate, this.lookup), AbortSignal.timeout(this.timeoutMs));
    } catch (err) {
      if (err instanceof WebhookTargetError && err.kind === 'blocked') throw new CairnError('INVALID_ARGUMENT', `url: ${err.message}`);
      if (err instanceof CairnError) throw err; // not an http(s) URL
      // else the name does not resolve (in time): accepted, every delivery checks again
    }
  }

  /**
   * Sends a `ping` to a hook now, outside its deliveries (to check a
   * receiver and its signature check); resolves with what it answered.
   */
  async ping(hook: { id: number; url: string; secret: string | undefined }): Promise<{ delivered: boolean; status: number | null; error: string | null }> {
    const body = JSON.stringify({ delivery: null, event: 'ping', webhook: hook.id, time: this.now().toISOString() });
    const answer = await this.post(hook.url, hook.secret, 'ping', 'ping', body);
    return { delivered: answer.ok, status: answer.status ?? null, error: answer.ok ? null : answer.error };
  }

  /** One signed POST; never throws. */
  private async post(url: string, secret: string | undefined, kind: string, delivery: string, body: string): Promise<{ ok: true; status: number } | { ok: false; status?: number; error: string }> {
    if (secret === undefined) return { ok: false, error: SECRET_UNREADABLE };
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timeout = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const target = await untilAborted(resolveTarget(url, this.allowPrivate, this.lookup), controller.signal);
      const status = await postTo(target, body, controller.signal, {
        'content-type': 'application/json',
        'user-agent': 'cairn-webhook',
        'x-cairn-event': kind,
        'x-cairn-delivery': delivery,
        'x-cairn-signature-256': signature(secret, body),
      });
      if (status >= 200 && status < 300) return { ok: true, status };
      return { ok: false, status, error: `HTTP ${status}` };
    } catch (err) {
      const error = controller.signal.aborted ? (this.stopped ? 'server stopping' : `no answer in ${this.timeoutMs} ms`) : (err as Error).message || String((err as NodeJS.ErrnoException).code ?? err);
      return { ok: false, error: err instanceof WebhookTargetError && err.kind === 'blocked' ? `refused: ${error}` : error };
    } finally {
      clearTimeout(timeout);
      this.inFlight.delete(controller);
    }
  }

  private async attempt(d: DueDelivery): Promise<void> {
    const answer = await this.post(d.url, d.secret, d.event.kind, String(d.id), deliveryBody(d));
    if (answer.ok) {
      this.queries.delivered(d.id, answer.status, this.now());
      return;
    }
    const failure = { status: answer.status, error: answer.error };
    const attempts = d.attempts + 1;
    if (this.stopped && !failure.status) {
      this.queries.attemptFailed(d.id, failure, this.now()); // interrupted, not failed: due at once after a restart
      return;
    }
    const retryAt = attempts < this.maxAttempts ? new Date(this.now().getTime() + Math.min(this.retryMs * 2 ** (attempts - 1), MAX_DELAY_MS)) : undefined;
    this.queries.attemptFailed(d.id, failure, retryAt);
    this.log.warn(retryAt ? 'webhook delivery failed; will retry' : 'webhook delivery failed for good', {
      webhook: d.webhook_id,
      delivery: d.id,
      attempts,
      url: d.url,
      ...failure,
      ...(retryAt ? { retry_at: retryAt.toISOString() } : {}),
    });
  }

  /** A timer for the next retry that falls due. */
  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.queries.nextDue();
    if (!next) return;
    this.timer = setTimeout(() => void this.kick(), Math.max(0, next.getTime() - this.now().getTime()) + 5);
    this.timer.unref();
  }
}

/**
 * POSTs `body` to the address resolved and checked before (the lookup below
 * hands exactly that one to the socket: no second resolution); resolves with
 * the status once the answer is read. A redirect is an answer, not an
 * invitation to post elsewhere (node:http follows none).
 */
function postTo(target: WebhookTarget, body: string, signal: AbortSignal, headers: Record<string, string>): Promise<number> {
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all) (callback as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
  return new Promise((resolve, reject) => {
    const request = (target.url.protocol === 'https:' ? https : http).request(target.url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      lookup: pinned,
      agent: false, // a fresh connection, to the address just checked
      signal,
    });
    request.on('response', (res) => {
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
      res.on('close', () => reject(new Error('the answer was cut off')));
      res.resume(); // read and drop it
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** `p`, or a rejection as soon as `signal` aborts (a DNS lookup cannot be cancelled). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
