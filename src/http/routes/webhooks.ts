// Webhooks (admin only; the policy in ../auth.ts checks the scope). The
// signing secret is in the answer to POST and nowhere else.
import type { Express } from 'express';
import type { Webhooks } from '../../registry/webhooks.ts';
import { actorOf } from '../actor.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('64kb');

export function registerWebhookRoutes(app: Express, { webhooks }: { webhooks: Webhooks }): void {
  app.post('/v1/webhooks', jsonBody, async (req, res) => {
    const created = await webhooks.create((req.body ?? {}) as Record<string, unknown>, actorOf(req));
    res.status(201).location(`/v1/webhooks/${created.id}`).set('Cache-Control', 'no-store').json(created);
  });

  app.get('/v1/webhooks', (_req, res) => {
    res.json(webhooks.list());
  });

  app.get('/v1/webhooks/:id', (req, res) => {
    res.json(webhooks.get(req.params.id));
  });

  app.delete('/v1/webhooks/:id', (req, res) => {
    webhooks.delete(req.params.id);
    res.status(204).end();
  });

  app.get('/v1/webhooks/:id/deliveries', (req, res) => {
    res.json(webhooks.deliveries(req.params.id, req.query.limit));
  });

  app.post('/v1/webhooks/:id/ping', async (req, res) => {
    res.json(await webhooks.ping(req.params.id));
  });

  /** Sends what is due now (a retry need not wait for its backoff). */
  app.post('/v1/webhooks/:id/redeliver', async (req, res) => {
    res.json(await webhooks.redeliver(req.params.id));
  });
}
