// Who is making a request: the name of its token (set by authenticate() in
// ./auth.ts), or "anonymous" without one or with CAIRN_AUTH=off.
import type { Request } from 'express';

export function actorOf(req: Request): string {
  const actor = (req as Request & { actor?: string }).actor;
  return actor ?? 'anonymous';
}
