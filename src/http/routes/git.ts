// The lineage repository over git's smart HTTP, read-only.
import type { Express } from 'express';
import type { Lineage } from '../../registry/lineage.ts';

export function registerGitRoutes(app: Express, { lineage }: { lineage: Lineage }): void {
  app.all('/git/lineage.git/*rest', async (req, res) => {
    const rest = (req.params as { rest: string[] }).rest.join('/');
    const q = req.originalUrl.indexOf('?');
    await lineage.serveGit({
      method: req.method,
      path: rest,
      query: q >= 0 ? req.originalUrl.slice(q + 1) : '',
      req,
      res,
    });
  });
}
