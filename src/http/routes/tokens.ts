// API tokens (admin only; the policy in ../auth.ts checks the scope). The
// secret is in the answer to POST and nowhere else.
import type { Express } from 'express';
import { CairnError } from '../../errors.ts';
import type { TokenQueries } from '../../metadata/tokens.ts';
import { actorOf } from '../actor.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('64kb');

export function registerTokenRoutes(app: Express, { tokens }: { tokens?: TokenQueries }): void {
  const store = (): TokenQueries => {
    if (!tokens) throw new CairnError('INVALID_ARGUMENT', 'tokens are not used: the server runs with CAIRN_AUTH=off');
    return tokens;
  };

  app.post('/v1/tokens', jsonBody, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const created = store().create({ name: body.name, scope: body.scope, scopes: body.scopes, models: body.models, expires_in_days: body.expires_in_days, createdBy: actorOf(req) });
    res.status(201).location(`/v1/tokens/${created.name}`).set('Cache-Control', 'no-store').json(created);
  });

  app.get('/v1/tokens', (_req, res) => {
    res.json({ tokens: store().list() });
  });

  app.delete('/v1/tokens/:name', (req, res) => {
    store().revoke(req.params.name, actorOf(req));
    res.status(204).end();
  });
}
