// API tokens (admin only; the policy in ../auth.ts checks the scope). The
// secret is in the answer to POST and nowhere else.
import type { Express } from 'express';
import type { Tokens } from '../../registry/tokens.ts';
import { actorOf } from '../actor.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('64kb');

export function registerTokenRoutes(app: Express, { tokens }: { tokens: Tokens }): void {
  app.post('/v1/tokens', jsonBody, (req, res) => {
    const created = tokens.create((req.body ?? {}) as Record<string, unknown>, actorOf(req));
    res.status(201).location(`/v1/tokens/${created.name}`).set('Cache-Control', 'no-store').json(created);
  });

  app.get('/v1/tokens', (_req, res) => {
    res.json(tokens.list());
  });

  app.delete('/v1/tokens/:name', (req, res) => {
    tokens.revoke(req.params.name, actorOf(req));
    res.status(204).end();
  });
}
