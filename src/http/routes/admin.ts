// Maintenance: integrity check and garbage collection. Both answer when the
// work is done (synchronous: a large store takes a while — clients should
// use a long timeout). Admin only: the policy table in ../auth.ts sends every
// unlisted route through the admin scope, and each route checks it again.
import type { Express, Request } from 'express';
import { CairnError } from '../../errors.ts';
import type { GarbageCollector } from '../../maintenance/gc.ts';
import type { Verifier } from '../../maintenance/verify.ts';
import { requireScope } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('16kb');

function optionalBool(body: Record<string, unknown>, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new CairnError('INVALID_ARGUMENT', `${field} must be true or false`);
  return v;
}

function optionalSeconds(body: Record<string, unknown>, field: string): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new CairnError('INVALID_ARGUMENT', `${field} must be a number of seconds >= 0`);
  return v;
}

function bodyOf(req: Request): Record<string, unknown> {
  const body = req.body as unknown;
  if (body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body))) return (body ?? {}) as Record<string, unknown>;
  throw new CairnError('INVALID_ARGUMENT', 'the body must be a JSON object');
}

export function registerAdminRoutes(app: Express, { gc, verifier }: { gc?: GarbageCollector; verifier?: Verifier }): void {
  /** body {quick?}: 200 with the report whether or not problems were found (`ok`) */
  app.post('/v1/admin/verify', jsonBody, async (req, res) => {
    requireScope(req, 'admin');
    if (!verifier) throw new CairnError('ROUTE_NOT_FOUND', 'verify is not available on this server');
    const body = bodyOf(req);
    res.json(await verifier.run({ quick: optionalBool(body, 'quick') }));
  });

  /** body {dry_run?, grace_seconds?, upload_ttl_seconds?}: 200 with what went (or would go) */
  app.post('/v1/admin/gc', jsonBody, async (req, res) => {
    requireScope(req, 'admin');
    if (!gc) throw new CairnError('ROUTE_NOT_FOUND', 'gc is not available on this server');
    const body = bodyOf(req);
    res.json(
      await gc.run({
        dryRun: optionalBool(body, 'dry_run'),
        graceSeconds: optionalSeconds(body, 'grace_seconds'),
        uploadTtlSeconds: optionalSeconds(body, 'upload_ttl_seconds'),
      }),
    );
  });
}
