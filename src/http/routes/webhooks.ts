// Webhooks (admin only; the policy in ../auth.ts checks the scope). The
// signing secret is in the answer to POST and nowhere else.
import type { Express } from 'express';
import type { WebhookQueries } from '../../metadata/webhooks.ts';
import type { WebhookDispatcher } from '../../webhooks/dispatcher.ts';
import { parseLimit } from '../../identifiers.ts';
import { actorOf } from '../actor.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('64kb');

export function registerWebhookRoutes(app: Express, { webhooks, dispatcher }: { webhooks: WebhookQueries; dispatcher: WebhookDispatcher }): void {
  app.post('/v1/webhooks', jsonBody, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    await dispatcher.checkTarget(body.url); // 400 for a non-public address (CAIRN_WEBHOOK_ALLOW_PRIVATE)
    const created = webhooks.create({ url: body.url, events: body.events, models: body.models, createdBy: actorOf(req) });
    res.status(201).location(`/v1/webhooks/${created.id}`).set('Cache-Control', 'no-store').json(created);
  });

  app.get('/v1/webhooks', (_req, res) => {
    res.json({ webhooks: webhooks.list() });
  });

  app.get('/v1/webhooks/:id', (req, res) => {
    res.json(webhooks.get(req.params.id));
  });

  app.delete('/v1/webhooks/:id', (req, res) => {
    webhooks.delete(req.params.id);
    res.status(204).end();
  });

  app.get('/v1/webhooks/:id/deliveries', (req, res) => {
    res.json({ deliveries: webhooks.deliveries(req.params.id, parseLimit(req.query.limit)) });
  });

  app.post('/v1/webhooks/:id/ping', async (req, res) => {
    res.json(await dispatcher.ping(webhooks.target(req.params.id)));
  });

  /** Sends what is due now (a retry need not wait for its backoff). */
  app.post('/v1/webhooks/:id/redeliver', async (req, res) => {
    const count = webhooks.retryNow(req.params.id);
    await dispatcher.kick();
    res.json({ requeued: count, deliveries: webhooks.deliveries(req.params.id, Math.max(count, 1)) });
  });
}
