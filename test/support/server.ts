// Real servers for tests: the same wiring as `cairn serve`, on an ephemeral
// port and a temporary data dir, with fs blobs or the real S3 server — or,
// for the fast tier (test/unit/), the in-memory driver and an in-memory
// SQLite database (the data dir then holds only lineage.git and the keys).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config, S3Config } from '../../src/config.ts';
import { MemoryDriver } from '../../src/blobs/memory-driver.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type OpenOptions, type RunningServer } from '../../src/main.ts';

export type StorageKind = 'fs' | 's3' | 'memory';

export const TEST_BUCKET = process.env.CAIRN_TEST_S3_BUCKET ?? 'cairn-test';

/**
 * The real S3 server the tests use, from the variables that
 * `scripts/s3-server.sh start` writes (CAIRN_S3_ENDPOINT, AWS keys).
 * In CI it must be there: an S3 suite is never silently skipped.
 */
export function s3TestConfig(prefix = `run-${randomBytes(6).toString('hex')}/`): S3Config | undefined {
  const endpoint = process.env.CAIRN_S3_ENDPOINT;
  if (!endpoint) {
    if (process.env.CI) throw new Error('CI: CAIRN_S3_ENDPOINT is not set; .ci/run must start the S3 server (scripts/s3-server.sh)');
    return undefined;
  }
  return {
    bucket: TEST_BUCKET,
    endpoint,
    region: process.env.CAIRN_S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    prefix,
  };
}

/** fs always; s3 when a server is configured (always in CI). */
export const storageKinds: StorageKind[] = s3TestConfig() ? ['fs', 's3'] : ['fs'];
if (!storageKinds.includes('s3')) {
  process.stderr.write('# S3 server not configured (CAIRN_S3_ENDPOINT unset): S3 variants are not run; see scripts/s3-server.sh\n');
}

export interface TestServer extends RunningServer {
  dataDir: string;
  storage: StorageKind;
  /** stops the server and removes its data dir */
  stop(): Promise<void>;
}

export async function startTestServer(storage: StorageKind, overrides: Partial<Config> = {}, options: OpenOptions = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-test-')));
  const config: Config = {
    dataDir,
    host: '127.0.0.1',
    port: 0,
    s3: storage === 's3' ? s3TestConfig() : undefined,
    auth: false,
    unsafePolicy: 'warn',
    ...overrides,
  };
  const memory: OpenOptions = storage === 'memory' ? { driver: new MemoryDriver(), databaseFile: ':memory:' } : {};
  const running = await startServer(config, createLogger({ silent: true }), { ...memory, ...options });
  return {
    ...running,
    dataDir,
    storage,
    async stop() {
      await running.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
