// Wiring: the one place that constructs things, in dependency order.
import http from 'node:http';
import path from 'node:path';
import { ChunkStore } from './blobs/chunk-store.ts';
import { CodecPool } from './blobs/codec-pool.ts';
import type { StorageDriver } from './blobs/driver.ts';
import { FsDriver } from './blobs/fs-driver.ts';
import { createS3Client, ensureBucket, S3Driver } from './blobs/s3-driver.ts';
import type { Config } from './config.ts';
import { createApp } from './http/app.ts';
import type { Logger } from './log.ts';
import { BlobIndex } from './metadata/blobs.ts';
import { Database } from './metadata/db.ts';
import { ModelQueries } from './metadata/models.ts';
import { UploadQueries } from './metadata/uploads.ts';
import { EventQueries } from './metadata/events.ts';
import { LineageQueries } from './metadata/lineage.ts';
import { GitMirror, lineageDir } from './lineage/git-mirror.ts';
import { DETECTORS } from './formats/index.ts';
import { Registry } from './registry.ts';

export interface Cairn {
  config: Config;
  db: Database;
  driver: StorageDriver;
  registry: Registry;
  mirror: GitMirror;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** file system for the git writer (tests inject faults) */
  gitFs?: ConstructorParameters<typeof GitMirror>[0]['fs'];
}

export async function openCairn(config: Config, log: Logger, options: OpenOptions = {}): Promise<Cairn> {
  let driver: StorageDriver;
  if (config.s3) {
    const client = createS3Client(config.s3);
    await ensureBucket(client, config.s3.bucket);
    driver = new S3Driver({ bucket: config.s3.bucket, prefix: config.s3.prefix, client });
  } else {
    driver = new FsDriver(path.join(config.dataDir, 'blobs'));
  }
  const db = new Database(path.join(config.dataDir, 'registry.db'));
  const applied = db.migrate();
  if (applied.length > 0) log.info('migrations applied', { migrations: applied });
  const pool = new CodecPool();
  const blobs = new BlobIndex(db);
  const chunks = new ChunkStore(driver, blobs, pool, {
    onCorrupt: (info) => log.error('corrupt content refused', info),
  });
  const events = new EventQueries(db);
  const mirror = new GitMirror({ gitdir: lineageDir(config.dataDir), events, log, fs: options.gitFs });
  await mirror.init();
  const registry = new Registry({
    db,
    models: new ModelQueries(db),
    blobs,
    uploads: new UploadQueries(db),
    events,
    lineage: new LineageQueries(db),
    chunks,
    detectors: DETECTORS,
    unsafePolicy: config.unsafePolicy,
    log,
    onEvent: () => void mirror.kick(),
  });
  void mirror.kick(); // catch up on whatever is still queued from before
  return {
    config,
    db,
    driver,
    registry,
    mirror,
    async close() {
      await mirror.stop();
      await pool.close();
      db.close();
    },
  };
}

export interface RunningServer {
  cairn: Cairn;
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger, options: OpenOptions = {}): Promise<RunningServer> {
  const cairn = await openCairn(config, log, options);
  const app = createApp({ registry: cairn.registry, db: cairn.db, driver: cairn.driver, mirror: cairn.mirror, log });
  const server = http.createServer(app);
  // Large uploads and downloads take as long as they take.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!config.auth) log.warn('CAIRN_AUTH=off: every client can read, publish and delete. For local experiments and tests only.');
  else log.warn('access control is not implemented yet: every client that can reach this address has full access; keep CAIRN_HOST on loopback.');
  log.info('cairn listening', { url, data_dir: config.dataDir, storage: cairn.driver.name });
  return {
    cairn,
    server,
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await cairn.close();
    },
  };
}
