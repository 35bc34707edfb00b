// How the server is: readiness (database and storage reachable; the git
// mirror's lag reported, never a reason to refuse traffic) and the figures
// /metrics reads at scrape time.
import type { MirrorStatus, Readiness } from '../api/index.ts';
import type { StorageDriver } from '../blobs/driver.ts';
import type { GitMirror } from '../lineage/git-mirror.ts';
import type { Database } from '../metadata/db.ts';
import { type StorageTotals, storageTotals } from '../metadata/stats.ts';

export type { StorageTotals };

export class Health {
  constructor(
    private readonly db: Database,
    private readonly driver: StorageDriver,
    private readonly mirror: GitMirror,
  ) {}

  async readiness(): Promise<Readiness> {
    const checks: Record<string, string> = {};
    try {
      this.db.first('SELECT 1');
      checks.db = 'ok';
    } catch (err) {
      checks.db = `error: ${(err as Error).message}`;
    }
    try {
      await this.driver.ping();
      checks.storage = 'ok';
    } catch (err) {
      checks.storage = `error: ${(err as Error).message}`;
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    return { status: ready ? 'ready' : 'not ready', storage: this.driver.name, checks, mirror: this.mirrorStatus() };
  }

  mirrorStatus(): MirrorStatus {
    return this.mirror.status();
  }

  storageTotals(): StorageTotals {
    return storageTotals(this.db);
  }
}
