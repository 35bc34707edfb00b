// Wiring: the one place that constructs things, in dependency order.
import http from 'node:http';
import path from 'node:path';
import { ChunkStore } from './blobs/chunk-store.ts';
import { CodecPool } from './codecs/codec-pool.ts';
import type { StorageDriver } from './blobs/driver.ts';
import { FsDriver } from './blobs/fs-driver.ts';
import { createS3Client, ensureBucket, S3Driver } from './blobs/s3-driver.ts';
import { withStorageErrors } from './blobs/storage-errors.ts';
import type { Config } from './config.ts';
import { findTensorLayout } from './formats/tensor-layout.ts';
import { createApp } from './http/app.ts';
import type { Logger } from './log.ts';
import { BlobIndex } from './metadata/blobs.ts';
import { Database } from './metadata/db.ts';
import { EventQueries } from './metadata/events.ts';
import { EventRecorder } from './lineage/event-recorder.ts';
import { GitMirror, lineageDir, rebuildRepository } from './lineage/git-mirror.ts';
import { AnalysisPool } from './formats/analysis-pool.ts';
import { createServices, type Services } from './registry/index.ts';
import fs from 'node:fs';
import type { GarbageCollector } from './maintenance/gc.ts';
import type { Verifier } from './maintenance/verify.ts';
import type { Tokens } from './registry/tokens.ts';
import { WebhookQueries } from './metadata/webhooks.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { SecretBox } from './metadata/secret-box.ts';
import type { Lookup } from './webhooks/target.ts';

export interface Cairn {
  config: Config;
  db: Database;
  driver: StorageDriver;
  services: Services;
  /** the chunk store (bytes) */
  chunks: ChunkStore;
  mirror: GitMirror;
  /** garbage collection (cairn gc, POST /v1/admin/gc) */
  gc: GarbageCollector;
  /** integrity check (cairn verify, POST /v1/admin/verify) */
  verifier: Verifier;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** file system for the git writer (tests inject faults) */
  gitFs?: ConstructorParameters<typeof GitMirror>[0]['fs'];
  /** webhook retry and timeout (tests shorten them) */
  webhookTiming?: { retryMs?: number; timeoutMs?: number; maxAttempts?: number };
  /** name resolution for webhook hosts (tests answer with the addresses they need) */
  webhookLookup?: Lookup;
  /** the storage driver, instead of the one config names (the fast tests pass a MemoryDriver) */
  driver?: StorageDriver;
  /** the SQLite file, instead of <data dir>/registry.db (':memory:' for the fast tests) */
  databaseFile?: string;
}

export async function openCairn(config: Config, log: Logger, options: OpenOptions = {}): Promise<Cairn> {
  let driver: StorageDriver;
  if (options.driver) {
    driver = options.driver;
  } else if (config.s3) {
    const client = createS3Client(config.s3);
    await ensureBucket(client, config.s3.bucket);
    driver = new S3Driver({ bucket: config.s3.bucket, prefix: config.s3.prefix, client });
  } else {
    driver = new FsDriver(path.join(config.dataDir, 'blobs'));
  }
  const db = openDatabase(options.databaseFile ?? path.join(config.dataDir, 'registry.db'), log);
  const pool = new CodecPool();
  const blobs = new BlobIndex(db);
  const storage = withStorageErrors(driver); // what reads and writes content sees
  const chunks = new ChunkStore(storage, blobs, pool, {
    findLayout: findTensorLayout,
    onCorrupt: (info) => log.error('corrupt content refused', info),
  });
  const analysis = new AnalysisPool(analysisLimits(config), log);
  const events = new EventQueries(db);
  const mirror = new GitMirror({ gitdir: lineageDir(config.dataDir), events, log, fs: options.gitFs });
  const webhooks = new WebhookQueries(db, SecretBox.fromKeyFile(path.join(config.dataDir, 'webhook-key')));
  const secrets = webhooks.sealClearSecrets();
  if (secrets.sealed > 0) log.info('webhook secrets sealed (they were in clear in registry.db)', { webhooks: secrets.sealed });
  if (secrets.unreadable.length > 0) log.error('webhook secrets do not open with <data dir>/webhook-key: those hooks cannot deliver; recreate them', { webhooks: secrets.unreadable });
  const allowPrivate = config.webhookAllowPrivate ?? false;
  if (allowPrivate) log.warn('CAIRN_WEBHOOK_ALLOW_PRIVATE=true: webhooks may post to loopback, private and link-local addresses');
  const dispatcher = new WebhookDispatcher({ queries: webhooks, log, allowPrivate, lookup: options.webhookLookup, ...options.webhookTiming });
  await mirror.init();
  // commit ids from git's head on, before anything is recorded or written
  const recorder = await EventRecorder.open({ events, mirror, log });
  const services = createServices({
    db,
    driver,
    blobs,
    events,
    chunks,
    analysis,
    mirror,
    recorder,
    webhooks,
    dispatcher,
    auth: config.auth,
    unsafePolicy: config.unsafePolicy,
    gc: config.gc,
    presignSeconds: config.presignSeconds,
    ociImageJob: config.ociImageJob ?? false,
    derive: { scratchDir: path.join(config.dataDir, 'tmp', 'derive'), concurrency: config.deriveJobs },
    log,
  });
  const legacy = services.models.legacyNames();
  if (legacy.reservedModelNames.length > 0) {
    log.warn('models named with a reserved word: they stay readable and writable, but no new model may take such a name (README "Namespaces")', { models: legacy.reservedModelNames });
  }
  if (legacy.modelsWithMainAlias.length > 0) {
    log.warn("aliases named 'main' (set before the name was reserved): Hugging Face clients get them instead of the latest version; remove them with cairn unalias <model> main", { models: legacy.modelsWithMainAlias });
  }
  services.derive.start(); // jobs cut short by a crash run again
  void mirror.kick(); // catch up on whatever is still queued from before
  void dispatcher.kick(); // and on webhook deliveries due or interrupted
  return {
    config,
    db,
    driver,
    services,
    chunks,
    mirror,
    gc: services.maintenance.collector,
    verifier: services.maintenance.verifier,
    async close() {
      await services.oci.stop();
      await services.derive.close();
      await dispatcher.stop();
      await mirror.stop();
      await analysis.close();
      await pool.close();
      db.close();
    },
  };
}

/** The database (<data dir>/registry.db), migrated to the latest schema. */
function openDatabase(file: string, log: Logger): Database {
  const db = new Database(file);
  const applied = db.migrate();
  if (applied.length > 0) log.info('migrations applied', { migrations: applied });
  return db;
}

/**
 * `cairn lineage rebuild`: <data dir>/lineage.git again from the database
 * alone, with the same commit ids (run it with the server stopped).
 */
export async function rebuildLineage(config: Config, log: Logger): Promise<Awaited<ReturnType<typeof rebuildRepository>> & { gitdir: string; seconds: number }> {
  const db = openDatabase(path.join(config.dataDir, 'registry.db'), log);
  try {
    const started = Date.now();
    const gitdir = lineageDir(config.dataDir);
    const result = await rebuildRepository({ gitdir, events: new EventQueries(db), log });
    return { ...result, gitdir, seconds: (Date.now() - started) / 1000 };
  } finally {
    db.close();
  }
}

function analysisLimits(config: Config): ConstructorParameters<typeof AnalysisPool>[0] {
  const a = config.analysis ?? {};
  return {
    ...(a.workers ? { workers: a.workers } : {}),
    ...(a.fileSeconds ? { fileCpuMs: a.fileSeconds * 1000 } : {}),
    ...(a.publishSeconds ? { publishCpuMs: a.publishSeconds * 1000 } : {}),
    ...(a.memoryMb ? { memoryBytes: a.memoryMb * 1024 * 1024 } : {}),
  };
}

/**
 * First start (no active admin token): creates one named `admin` and writes it
 * to <data dir>/admin-token (mode 0600). The token itself is never logged.
 */
function ensureAdminToken(tokens: Tokens, dataDir: string, log: Logger): void {
  const created = tokens.createFirstAdmin();
  if (!created) return;
  const file = path.join(dataDir, 'admin-token');
  fs.mkdirSync(dataDir, { recursive: true });
  fs.rmSync(file, { force: true }); // a new file gets mode 0600 from the start
  try {
    fs.writeFileSync(file, `${created.token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    tokens.revoke(created.name, 'cairn'); // nobody could ever read it: try again next start
    throw err;
  }
  log.warn('no admin token yet: created one; read it from the file, keep it somewhere safe, then delete the file', {
    token_name: created.name,
    file,
    prefix: created.prefix,
  });
}

export interface RunningServer {
  cairn: Cairn;
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger, options: OpenOptions = {}): Promise<RunningServer> {
  const cairn = await openCairn(config, log, options);
  ensureAdminToken(cairn.services.tokens, config.dataDir, log);
  const app = createApp({
    services: cairn.services,
    log,
    anonymousRead: config.anonymousRead ?? false,
    rateLimit: config.rateLimit,
    maxUploadBytes: config.maxUploadBytes,
  });
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
  if (!config.auth) {
    log.warn('!!! CAIRN_AUTH=off: ACCESS CONTROL IS DISABLED !!! every client that can reach this address can read, publish, delete and manage tokens, as "anonymous". For local experiments and tests only; never expose this server.', { url });
  } else if (config.anonymousRead) {
    log.warn('CAIRN_ANONYMOUS_READ=true: clients without a token can read every model and clone the lineage');
  }
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
