// Maintenance: integrity check and garbage collection. Both answer when the
// work is done (synchronous: a large store takes a while — clients should
// use a long timeout). Admin only: the policy table in ../auth.ts sends every
// unlisted route through the admin scope, and each route checks it again.
import type { Express } from 'express';
import type { Maintenance } from '../../registry/maintenance.ts';
import { requireScope } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('16kb');

export function registerAdminRoutes(app: Express, { maintenance }: { maintenance: Maintenance }): void {
  app.post('/v1/admin/verify', jsonBody, async (req, res) => {
    requireScope(req, 'admin');
    res.json(await maintenance.verify(req.body));
  });

  app.post('/v1/admin/gc', jsonBody, async (req, res) => {
    requireScope(req, 'admin');
    res.json(await maintenance.gc(req.body));
  });
}
