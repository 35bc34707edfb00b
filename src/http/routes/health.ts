// Liveness and readiness.
import type { Express } from 'express';
import type { StorageDriver } from '../../blobs/driver.ts';
import type { GitMirror } from '../../lineage/git-mirror.ts';
import type { Database } from '../../metadata/db.ts';

export function registerHealthRoutes(app: Express, { db, driver, mirror }: { db: Database; driver: StorageDriver; mirror: GitMirror }): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    try {
      db.first('SELECT 1');
      checks.db = 'ok';
    } catch (err) {
      checks.db = `error: ${(err as Error).message}`;
    }
    try {
      await driver.ping();
      checks.storage = 'ok';
    } catch (err) {
      checks.storage = `error: ${(err as Error).message}`;
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    // git is a mirror: its lag is reported, never a reason to refuse traffic
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', storage: driver.name, checks, mirror: mirror.status() });
  });
}
