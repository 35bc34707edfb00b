// Liveness and readiness.
import type { Express } from 'express';
import type { Health } from '../../registry/health.ts';

export function registerHealthRoutes(app: Express, { health }: { health: Health }): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const readiness = await health.readiness();
    res.status(readiness.status === 'ready' ? 200 : 503).json(readiness);
  });
}
