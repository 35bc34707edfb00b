// Maintenance on request (POST /v1/admin/gc, /v1/admin/verify): the garbage
// collector and the integrity check of ../maintenance/, with their requests
// checked. Both answer when the work is done.
import type { GcReport, VerifyReport } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import type { GarbageCollector } from '../maintenance/gc.ts';
import type { Verifier } from '../maintenance/verify.ts';

export class Maintenance {
  constructor(
    readonly collector: GarbageCollector,
    readonly verifier: Verifier,
  ) {}

  /** body {dry_run?, grace_seconds?, upload_ttl_seconds?}: what went (or would go) */
  gc(request: unknown): Promise<GcReport> {
    const body = objectBody(request);
    return this.collector.run({
      dryRun: optionalBool(body, 'dry_run'),
      graceSeconds: optionalSeconds(body, 'grace_seconds'),
      uploadTtlSeconds: optionalSeconds(body, 'upload_ttl_seconds'),
    });
  }

  /** body {quick?}: the report, whether or not problems were found (`ok`) */
  verify(request: unknown): Promise<VerifyReport> {
    return this.verifier.run({ quick: optionalBool(objectBody(request), 'quick') });
  }
}

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body))) return (body ?? {}) as Record<string, unknown>;
  throw new CairnError('INVALID_ARGUMENT', 'the body must be a JSON object');
}

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
