// What every service of the registry reads and records the same way: models
// and versions resolved from names and refs, version documents in their wire
// shape, and the events (outbox) a change leaves for the git mirror and the
// webhooks. Built once per registry; the services share it.
import { type Caller, mayRead } from '../access.ts';
import type { FileDoc, FormatSummary, ParentDoc, VersionDoc, VersionSummary } from '../api/index.ts';
import { canonicalJsonFile } from '../canonical-json.ts';
import { CairnError } from '../errors.ts';
import type { FileFormat } from '../formats/types.ts';
import { checkName, checkRef, isDigest, LATEST } from '../identifiers.ts';
import type { BlobIndex } from '../metadata/blobs.ts';
import type { Database } from '../metadata/db.ts';
import type { EventRecorder } from '../lineage/event-recorder.ts';
import type { EventKind, EventQueries } from '../metadata/events.ts';
import type { LineageQueries } from '../metadata/lineage.ts';
import type { FileRow, ModelQueries, ModelRow, VersionRow } from '../metadata/models.ts';
import { serverKey } from '../metadata/server-keys.ts';
import { PageCursors } from '../page-cursors.ts';

export interface CatalogDeps {
  db: Database;
  models: ModelQueries;
  blobs: BlobIndex;
  events: EventQueries;
  /** inserts events with their lineage commit ids */
  recorder: EventRecorder;
  lineage: LineageQueries;
  /** called after each committed change (wakes the git mirror and the webhooks) */
  onEvent?: () => void;
  now?: () => Date;
}

/** An event as the services describe it; recorded in the transaction of its change. */
export interface ChangeEvent {
  kind: EventKind;
  version?: string;
  alias?: string;
  actor: string;
  time: string;
  message?: string;
  subject: string;
  /** lineage files the event writes (null: deletes) */
  changes: Record<string, string | null>;
  tag?: string | null;
}

/** Blobs looked at per chunk by chunkUsability: a chunk in more blobs than this the caller cannot name is re-uploaded, no more. */
const CHUNK_HOLDERS_CHECKED = 32;

export class Catalog {
  readonly db: Database;
  readonly models: ModelQueries;
  readonly blobs: BlobIndex;
  readonly events: EventQueries;
  readonly lineage: LineageQueries;
  readonly cursors: PageCursors;
  readonly now: () => Date;
  private readonly recorder: EventRecorder;
  private readonly onEvent: () => void;

  constructor(deps: CatalogDeps) {
    this.db = deps.db;
    this.models = deps.models;
    this.blobs = deps.blobs;
    this.events = deps.events;
    this.recorder = deps.recorder;
    this.lineage = deps.lineage;
    this.onEvent = deps.onEvent ?? (() => {});
    this.now = deps.now ?? (() => new Date());
    this.cursors = new PageCursors(serverKey(deps.db, 'cursor'));
  }

  requireModel(name: string): ModelRow {
    const model = this.models.model(checkName(name));
    if (!model) throw new CairnError('MODEL_NOT_FOUND', `model ${name} does not exist`);
    return model;
  }

  /** Resolution order: digest, version, alias (`latest` is automatic). */
  resolve(model: ModelRow, ref: string): VersionRow {
    checkRef(ref);
    let row: VersionRow | undefined;
    if (isDigest(ref)) {
      row = this.models.liveVersionByDigest(model.id, ref);
    } else {
      const byVersion = this.models.versionByString(model.id, ref);
      if (byVersion?.deleted_at) {
        // a distinct code: the version string stays taken, so a client can tell before uploading
        throw new CairnError('VERSION_DELETED', `${model.name}@${ref} was deleted at ${byVersion.deleted_at}; version strings are never reused`);
      }
      row = byVersion ?? (ref === LATEST ? this.models.latestVersion(model.id) : this.models.aliasTarget(model.id, ref));
    }
    if (!row) throw new CairnError('VERSION_NOT_FOUND', `${model.name}@${ref} does not exist`);
    return row;
  }

  summary(row: VersionRow): VersionSummary {
    return {
      version: row.version,
      number: row.number,
      digest: row.digest,
      size: row.size,
      created_at: row.created_at,
      created_by: row.created_by,
      message: row.message,
      aliases: this.models.aliasesOfVersion(row.id),
    };
  }

  versionDoc(model: ModelRow, row: VersionRow, caller: Caller): VersionDoc {
    return {
      name: model.name,
      ...this.summary(row),
      files: this.models.files(row.id).map(fileDoc),
      parents: this.parentDocs(row.id, caller),
      metadata: JSON.parse(row.metadata) as Record<string, unknown>,
      summary: JSON.parse(row.summary) as FormatSummary,
    };
  }

  /** The version document of `name@ref`. */
  version(name: string, ref: string, caller: Caller): VersionDoc {
    const model = this.requireModel(name);
    return this.versionDoc(model, this.resolve(model, ref), caller);
  }

  private parentDocs(versionId: number, caller: Caller): ParentDoc[] {
    return this.lineage.parentsOf(versionId).map((edge) => {
      const node = this.lineage.node(edge.parent_id)!;
      if (!mayRead(caller, node.name)) return { name: 'hidden', version: 'hidden', digest: 'hidden', relation: edge.relation, recipe: null, hidden: true };
      return { name: node.name, version: node.version, digest: node.digest, relation: edge.relation, recipe: JSON.parse(edge.recipe) as unknown };
    });
  }

  /**
   * A stored blob the caller may name by digest (HEAD /v1/blobs, JSON
   * publish): a caller who reads every model (as ever), who uploaded its
   * bytes, or who may read a live version holding it. To anyone else it does
   * not exist: neither an oracle of what other tenants store nor a way to
   * their bytes.
   */
  usableBlob(digest: string, caller: Caller) {
    const blob = this.blobs.getBlob(digest);
    if (!blob || mayRead(caller, '*')) return blob;
    if (caller.principal !== undefined && this.blobs.hasGrant(digest, caller.principal)) return blob;
    return this.models.liveVersionHolds(digest, caller.models) ? blob : undefined;
  }

  /**
   * Whether the caller may build on a stored chunk (a direct push skips
   * uploading it): it is recorded, and one of the first blobs holding it is
   * one the caller may name (usableBlob). To anyone else it is absent, as
   * blobs are: which chunks other tenants store is no one else's to probe.
   * The returned function serves one request: each blob is judged once, so
   * a list of chunks held by the same blobs (a model's shared tensors) costs
   * a query per chunk, not one per chunk and blob.
   */
  chunkUsability(caller: Caller): (digest: string) => boolean {
    const everything = mayRead(caller, '*');
    const judged = new Map<string, boolean>();
    const usable = (blob: string) => {
      let ok = judged.get(blob);
      if (ok === undefined) judged.set(blob, (ok = this.usableBlob(blob, caller) !== undefined));
      return ok;
    };
    return (digest) => this.blobs.hasChunk(digest) && (everything || this.blobs.blobsHolding(digest, CHUNK_HOLDERS_CHECKED).some(usable));
  }

  /** The lineage file `models/<name>/model.json` as it stands now. */
  modelFile(model: ModelRow): string {
    const aliases = Object.fromEntries(this.models.aliasesOfModel(model.id).map((a) => [a.alias, a.version]));
    return canonicalJsonFile({ name: model.name, description: model.description, aliases });
  }

  /**
   * Appends to the outbox/history, with the event's lineage commit id
   * (returned); call inside `commit`, in the transaction of the change. Every
   * change that records an event goes through here.
   */
  record(model: ModelRow, event: ChangeEvent): string {
    return this.recorder.record({
      model_id: model.id,
      kind: event.kind,
      version: event.version ?? null,
      alias: event.alias ?? null,
      actor: event.actor,
      time: event.time,
      message: event.message ?? '',
      subject: event.subject,
      changes: JSON.stringify(event.changes),
      tag: event.tag ?? null,
    }).commit;
  }

  /** `change` in one transaction (its events' commit ids taken back if it fails), then the mirror and the webhooks are woken. */
  commit<T>(change: () => T): T {
    const result = this.recorder.atomically(() => this.db.transaction(change));
    this.onEvent();
    return result;
  }
}

export function fileDoc(f: FileRow): FileDoc {
  const { format: _format, safety, details, ...rest } = JSON.parse(f.analysis) as Partial<FileFormat>;
  return {
    path: f.path,
    size: f.size,
    digest: f.blob_digest,
    format: f.format,
    ...rest,
    safety: safety ?? { verdict: 'unknown', findings: [] },
    details: details ?? {},
  };
}
