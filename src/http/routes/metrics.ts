// Prometheus scrape endpoint. Who may scrape is decided in ../auth.ts
// (read on every model: the labels name models and versions).
import type { Express } from 'express';
import type { Metrics } from '../metrics.ts';

export function registerMetricsRoutes(app: Express, { metrics }: { metrics: Metrics }): void {
  app.get('/metrics', (_req, res) => {
    res.set('Content-Type', 'text/plain; version=0.0.4; charset=utf-8').set('Cache-Control', 'no-store').send(metrics.render());
  });
}
