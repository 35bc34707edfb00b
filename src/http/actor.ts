// Who is making a request. Until tokens exist every caller is "anonymous";
// routes ask here so that authentication can fill it in one place.
import type { Request } from 'express';

export function actorOf(req: Request): string {
  const actor = (req as Request & { actor?: string }).actor;
  return actor ?? 'anonymous';
}
