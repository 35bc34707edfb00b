// The registry: the services the front doors (http/, and through the REST API
// the CLI) call, built from the layers below by createServices. Each service
// is a plain class over what it needs; nothing here is a singleton.
import type { ChunkStore } from '../blobs/chunk-store.ts';
import type { StorageDriver } from '../blobs/driver.ts';
import type { AnalysisPool } from '../formats/analysis-pool.ts';
import type { EventRecorder } from '../lineage/event-recorder.ts';
import type { GitMirror } from '../lineage/git-mirror.ts';
import type { Logger } from '../log.ts';
import { GarbageCollector } from '../maintenance/gc.ts';
import { Verifier } from '../maintenance/verify.ts';
import type { BlobIndex } from '../metadata/blobs.ts';
import type { Database } from '../metadata/db.ts';
import type { EventQueries } from '../metadata/events.ts';
import { LineageQueries } from '../metadata/lineage.ts';
import { MaintenanceQueries } from '../metadata/maintenance.ts';
import { ModelQueries } from '../metadata/models.ts';
import { OciQueries } from '../metadata/oci.ts';
import { serverKey } from '../metadata/server-keys.ts';
import { JobQueries } from '../metadata/jobs.ts';
import { TokenQueries } from '../metadata/tokens.ts';
import { UploadQueries } from '../metadata/uploads.ts';
import type { WebhookQueries } from '../metadata/webhooks.ts';
import type { WebhookDispatcher } from '../webhooks/dispatcher.ts';
import { Aliases } from './aliases.ts';
import { Catalog } from './catalog.ts';
import { Derivations } from './derive.ts';
import { Health } from './health.ts';
import { HubCommits } from './hf-commits.ts';
import { HubLfs } from './hf-lfs.ts';
import { HubRepos } from './hf-refs.ts';
import { History } from './history.ts';
import { Lineage } from './lineage.ts';
import { Maintenance } from './maintenance.ts';
import { Models } from './models.ts';
import { Oci } from './oci.ts';
import { RegistryTokens } from './oci-tokens.ts';
import { Publishing } from './publish.ts';
import { Tokens } from './tokens.ts';
import { Uploads } from './uploads.ts';
import { Versions } from './versions.ts';
import { Webhooks } from './webhooks.ts';

export interface Services {
  models: Models;
  versions: Versions;
  publishing: Publishing;
  aliases: Aliases;
  uploads: Uploads;
  history: History;
  lineage: Lineage;
  tokens: Tokens;
  webhooks: Webhooks;
  health: Health;
  maintenance: Maintenance;
  /** the Hugging Face Hub API: refs and commit logs, commits, LFS uploads */
  hubRepos: HubRepos;
  hubCommits: HubCommits;
  hubLfs: HubLfs;
  /** the OCI Distribution front door (/v2) */
  oci: Oci;
  /** short-lived tokens of the /v2 token flow */
  registryTokens: RegistryTokens;
  /** derived versions and their jobs (start() runs the queue) */
  derive: Derivations;
}

export interface RegistryDeps {
  db: Database;
  /** the raw driver: readiness pings it and reports its own words */
  driver: StorageDriver;
  blobs: BlobIndex;
  events: EventQueries;
  chunks: ChunkStore;
  /** format analysis, in worker threads */
  analysis: AnalysisPool;
  mirror: GitMirror;
  /** records events with their lineage commit ids (EventRecorder.open) */
  recorder: EventRecorder;
  webhooks: WebhookQueries;
  dispatcher: WebhookDispatcher;
  /** false: CAIRN_AUTH=off, no tokens */
  auth: boolean;
  /** what to do with a version whose files run code when loaded */
  unsafePolicy: 'warn' | 'reject';
  /** each new version's OCI image form is computed after publish (else on its first request) */
  ociImageJob?: boolean;
  /** gc's defaults (CAIRN_GC_GRACE, CAIRN_UPLOAD_TTL) */
  gc?: { graceSeconds?: number; uploadTtlSeconds?: number };
  /** lifetime of the S3 URLs in chunk maps (CAIRN_PRESIGN_SECONDS) */
  presignSeconds?: number;
  /** derive jobs: where ONNX Runtime's model files go while measuring, and how many jobs run at once */
  derive: { scratchDir: string; concurrency?: number };
  log: Logger;
  now?: () => Date;
}

export function createServices(deps: RegistryDeps): Services {
  const { db, chunks, mirror, dispatcher, log } = deps;
  let oci: Oci | undefined;
  const catalog = new Catalog({
    db,
    models: new ModelQueries(db),
    blobs: deps.blobs,
    events: deps.events,
    recorder: deps.recorder,
    lineage: new LineageQueries(db),
    // each committed change: the git mirror and the webhooks have work
    onEvent: () => {
      void mirror.kick();
      void dispatcher.kick();
      oci?.kick(); // image forms of new versions
    },
    now: deps.now,
  });
  const uploads = new Uploads(catalog, new UploadQueries(db), chunks, { presignSeconds: deps.presignSeconds });
  const queries = new MaintenanceQueries(db);
  // gc and verify see storage failures as STORAGE_UNAVAILABLE, like every content read (the chunk store's wrapped driver)
  const collector = new GarbageCollector({
    driver: chunks.driver,
    blobs: deps.blobs,
    queries,
    log,
    ...deps.gc,
    onUploadExpired: (id) => uploads.forget(id),
    blobsBeingRead: () => chunks.blobsBeingRead(),
  });
  const versions = new Versions({ catalog, chunks, presignSeconds: deps.presignSeconds });
  const publishing = new Publishing({ catalog, chunks, analysis: deps.analysis, unsafePolicy: deps.unsafePolicy });
  const aliases = new Aliases(catalog);
  const hubRepos = new HubRepos(catalog, versions, aliases);
  oci = new Oci({ catalog, chunks, queries: new OciQueries(db), publishing, log, imageJob: deps.ociImageJob ?? false });
  const tokens = new Tokens(deps.auth ? new TokenQueries(db) : undefined);
  return {
    models: new Models(catalog),
    versions,
    publishing,
    aliases,
    uploads,
    history: new History(catalog),
    lineage: new Lineage(catalog, mirror.gitdir),
    tokens,
    webhooks: new Webhooks(deps.webhooks, dispatcher),
    health: new Health(db, deps.driver, mirror),
    maintenance: new Maintenance(collector, new Verifier({ driver: chunks.driver, chunks, queries, log })),
    hubRepos,
    hubCommits: new HubCommits({ catalog, publishing, versions, repos: hubRepos, chunks }),
    // upload links are signed with a key kept in the database: they outlive a restart
    hubLfs: new HubLfs(catalog, uploads, serverKey(db, 'hf-lfs-links')),
    oci,
    registryTokens: new RegistryTokens(serverKey(db, 'oci-token'), tokens),
    derive: new Derivations({ catalog, publishing, versions, jobs: new JobQueries(db), scratchDir: deps.derive.scratchDir, concurrency: deps.derive.concurrency ?? 1, log }),
  };
}
