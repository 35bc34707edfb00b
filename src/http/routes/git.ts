// The lineage repository over git's smart HTTP, read-only.
import type { Express } from 'express';
import path from 'node:path';
import { serveGitHttp } from '../../lineage/git-http-backend.ts';

export function registerGitRoutes(app: Express, { gitdir }: { gitdir: string }): void {
  const root = path.dirname(gitdir);
  const repo = path.basename(gitdir);
  app.all('/git/lineage.git/*rest', async (req, res) => {
    const rest = (req.params as { rest: string[] }).rest.join('/');
    const q = req.originalUrl.indexOf('?');
    await serveGitHttp(root, repo, {
      method: req.method,
      path: rest,
      query: q >= 0 ? req.originalUrl.slice(q + 1) : '',
      req,
      res,
    });
  });
}
