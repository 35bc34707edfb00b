// Operations: liveness and readiness (probes), Prometheus metrics.
import { Health, Readiness } from '../../api/index.ts';
import { route } from '../route.ts';

/** Answered before anyone is asked who they are (see app.ts). */
export const probeRoutes = [
  route({
    method: 'get',
    path: '/healthz',
    access: 'open',
    doc: { id: 'health', tag: 'operations', summary: 'Liveness', responses: { 200: { description: 'alive', schema: Health } }, errors: [] },
    handle: () => (_req, res) => {
      res.json({ status: 'ok' });
    },
  }),
  route({
    method: 'get',
    path: '/readyz',
    access: 'open',
    doc: {
      id: 'ready',
      tag: 'operations',
      summary: 'Readiness: database and storage reachable; git mirror lag reported, never a reason to refuse',
      responses: { 200: { description: 'ready', schema: Readiness }, 503: { description: 'database or storage unavailable (same body, status `not ready`)', schema: Readiness } },
      errors: [],
    },
    handle: ({ services }) => async (_req, res) => {
      const readiness = await services.health.readiness();
      res.status(readiness.status === 'ready' ? 200 : 503).json(readiness);
    },
  }),
];

export const metricsRoutes = [
  route({
    method: 'get',
    path: '/metrics',
    // labels name models and versions
    access: { scope: 'read', model: '*' },
    doc: {
      id: 'metrics',
      tag: 'operations',
      summary: 'Prometheus metrics (text format 0.0.4)',
      description: 'Needs read on every model (labels name models and versions); open with CAIRN_AUTH=off or CAIRN_ANONYMOUS_READ=true.',
      responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      errors: [],
    },
    handle: ({ metrics }) => (_req, res) => {
      res.set('Content-Type', 'text/plain; version=0.0.4; charset=utf-8').set('Cache-Control', 'no-store').send(metrics.render());
    },
  }),
];
