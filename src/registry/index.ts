// The registry: the services the front doors (http/, and through the REST API
// the CLI) call, built from the layers below by createServices. Each service
// is a plain class over what it needs; nothing here is a singleton.
import type { ChunkStore } from '../blobs/chunk-store.ts';
import type { AnalysisPool } from '../formats/analysis-pool.ts';
import type { GitMirror } from '../lineage/git-mirror.ts';
import type { BlobIndex } from '../metadata/blobs.ts';
import type { Database } from '../metadata/db.ts';
import type { EventQueries } from '../metadata/events.ts';
import { LineageQueries } from '../metadata/lineage.ts';
import { ModelQueries } from '../metadata/models.ts';
import { UploadQueries } from '../metadata/uploads.ts';
import { Aliases } from './aliases.ts';
import { Catalog } from './catalog.ts';
import { History } from './history.ts';
import { Lineage } from './lineage.ts';
import { Models } from './models.ts';
import { Publishing } from './publish.ts';
import { Uploads } from './uploads.ts';
import { Versions } from './versions.ts';

export interface Services {
  models: Models;
  versions: Versions;
  publishing: Publishing;
  aliases: Aliases;
  uploads: Uploads;
  history: History;
  lineage: Lineage;
}

export interface RegistryDeps {
  db: Database;
  blobs: BlobIndex;
  events: EventQueries;
  chunks: ChunkStore;
  /** format analysis, in worker threads */
  analysis: AnalysisPool;
  /** what to do with a version whose files run code when loaded */
  unsafePolicy: 'warn' | 'reject';
  mirror: GitMirror;
  /** called after each committed change (wakes the git mirror and the webhooks) */
  onEvent?: () => void;
  now?: () => Date;
}

export function createServices(deps: RegistryDeps): Services {
  const catalog = new Catalog({
    db: deps.db,
    models: new ModelQueries(deps.db),
    blobs: deps.blobs,
    events: deps.events,
    lineage: new LineageQueries(deps.db),
    onEvent: deps.onEvent,
    now: deps.now,
  });
  return {
    models: new Models(catalog),
    versions: new Versions({ catalog, chunks: deps.chunks, catchUpMirror: () => deps.mirror.kick() }),
    publishing: new Publishing({ catalog, chunks: deps.chunks, analysis: deps.analysis, unsafePolicy: deps.unsafePolicy }),
    aliases: new Aliases(catalog),
    uploads: new Uploads(catalog, new UploadQueries(deps.db), deps.chunks),
    history: new History(catalog),
    lineage: new Lineage(catalog, deps.mirror.gitdir),
  };
}
