// Maintenance (admin): integrity check and garbage collection. Both answer
// when the work is done (a large store takes a while: use a long timeout).
import { GcReport, GcRequest, VerifyReport, VerifyRequest } from '../../api/index.ts';
import { jsonBodyParser } from '../json-body.ts';
import { route } from '../route.ts';

const jsonBody = jsonBodyParser('16kb');
const ADMIN = { scope: 'admin' } as const;

export const adminRoutes = [
  route({
    method: 'post',
    path: '/v1/admin/verify',
    access: ADMIN,
    doc: {
      id: 'verify',
      tag: 'maintenance',
      summary: 'Check every live file (admin); answers when done',
      body: { required: false, content: { 'application/json': { schema: VerifyRequest } } },
      responses: { 200: { description: 'the report, whether or not problems were found (`ok`)', schema: VerifyReport } },
      errors: ['STORAGE_UNAVAILABLE'],
    },
    before: () => [jsonBody],
    handle: ({ services }) => async (req, res) => {
      res.json(await services.maintenance.verify(req.body));
    },
  }),
  route({
    method: 'post',
    path: '/v1/admin/gc',
    access: ADMIN,
    doc: {
      id: 'gc',
      tag: 'maintenance',
      summary: 'Garbage-collect unreferenced chunks, orphan objects and stale uploads (admin)',
      body: { required: false, content: { 'application/json': { schema: GcRequest } } },
      responses: { 200: { description: 'what went (or would go)', schema: GcReport } },
      errors: ['STORAGE_UNAVAILABLE'],
    },
    before: () => [jsonBody],
    handle: ({ services }) => async (req, res) => {
      res.json(await services.maintenance.gc(req.body));
    },
  }),
];
