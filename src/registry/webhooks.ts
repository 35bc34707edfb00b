// Webhooks: a signed POST per event to each hook that wants it. The rows are
// in metadata/webhooks.ts; the dispatcher (../webhooks/) sends them.
import type { DeliveryList, PingResult, RedeliverResult, WebhookCreated, WebhookDoc, WebhookList } from '../api/index.ts';
import { parseLimit } from '../identifiers.ts';
import type { WebhookQueries } from '../metadata/webhooks.ts';
import type { WebhookDispatcher } from '../webhooks/dispatcher.ts';

export class Webhooks {
  constructor(
    private readonly queries: WebhookQueries,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  /** A new hook; it gets the events from now on. The signing secret is in this answer only. */
  async create(request: { url?: unknown; events?: unknown; models?: unknown }, actor: string): Promise<WebhookCreated> {
    await this.dispatcher.checkTarget(request.url); // 400 for a non-public address (CAIRN_WEBHOOK_ALLOW_PRIVATE)
    return this.queries.create({ url: request.url, events: request.events, models: request.models, createdBy: actor });
  }

  list(): WebhookList {
    return { webhooks: this.queries.list() };
  }

  get(id: string): WebhookDoc {
    return this.queries.get(id);
  }

  /** Removes a hook and its deliveries (pending ones are not sent). */
  delete(id: string): void {
    this.queries.delete(id);
  }

  /** A hook's deliveries, newest first. */
  deliveries(id: string, limit: unknown): DeliveryList {
    return { deliveries: this.queries.deliveries(id, parseLimit(limit)) };
  }

  /** A signed `ping` now, outside the delivery log; what the receiver answered. */
  ping(id: string): Promise<PingResult> {
    return this.dispatcher.ping(this.queries.target(id));
  }

  /** Sends what is due now (a retry need not wait for its backoff). */
  async redeliver(id: string): Promise<RedeliverResult> {
    const count = this.queries.retryNow(id);
    await this.dispatcher.kick();
    return { requeued: count, deliveries: this.queries.deliveries(id, Math.max(count, 1)) };
  }
}
