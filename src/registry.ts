// The registry service: publish, resolve, read, alias, delete, upload sessions.
// It coordinates the chunk store (bytes) and the metadata queries (SQLite);
// it knows nothing of HTTP.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { BlobStream, ChunkStore } from './blobs/chunk-store.ts';
import type { RunningHash } from './blobs/codec-pool.ts';
import { InvalidVersionFileError, type AnalysisPool } from './formats/analysis-pool.ts';
import { linkVersionFiles, summarize, type VersionSummary as FormatSummary } from './formats/analyze.ts';
import type { FileFormat } from './formats/types.ts';
import type { Logger } from './log.ts';
import { CairnError } from './errors.ts';
import { checkAlias, checkDigest, checkName, checkPathShape, checkRef, checkVersion, isDigest, LATEST, MAX_FILES_PER_VERSION, parseLimit, parseNameRef, tooManyFiles, VersionPaths } from './identifiers.ts';
import { checkJsonValue, MAX_JSON_BYTES } from './json-limits.ts';
import { isValidTagName, modelPath, stableJson, versionPath } from './lineage/documents.ts';
import type { BlobIndex } from './metadata/blobs.ts';
import type { Database } from './metadata/db.ts';
import type { EventKind, EventQueries, EventRow } from './metadata/events.ts';
import type { LineageQueries } from './metadata/lineage.ts';
import type { FileRow, ModelQueries, ModelRow, VersionRow } from './metadata/models.ts';
import { serverKey } from './metadata/server-keys.ts';
import { modelAllowed } from './metadata/tokens.ts';
import type { UploadQueries } from './metadata/uploads.ts';
import { PageCursors } from './page-cursors.ts';

/**
 * Who is asking, as far as the registry cares: the models they may read, and
 * whose upload sessions and uploaded content are theirs.
 */
export interface Caller {
  /** the token (`token:<id>`); undefined with CAIRN_AUTH=off, where sessions belong to no one */
  principal: string | undefined;
  /** name patterns of the models the caller may read; empty: every model */
  models: readonly string[];
}

/** The whole record, as the lineage repository keeps it (which only a reader of every model may clone). */
const FULL_VIEW: Caller = { principal: undefined, models: [] };

function mayRead(caller: Caller, model: string): boolean {
  return modelAllowed(caller.models, model);
}

export interface PublishFile {
  path: string;
  digest: string;
}

export const RELATIONS = ['fine-tuned-from', 'quantized-from', 'pruned-from', 'distilled-from', 'converted-from', 'derived-from'] as const;
export type Relation = (typeof RELATIONS)[number];

export interface ParentInput {
  /** `<name>@<ref>` */
  ref: unknown;
  relation?: unknown;
  recipe?: unknown;
}

export interface PublishInput {
  name: string;
  version: unknown;
  files: PublishFile[];
  message?: unknown;
  aliases?: unknown[];
  metadata?: unknown;
  parents?: ParentInput[];
  actor: string;
  /** parents must be readable by it, and files named by digest usable by it */
  caller: Caller;
}

export interface ParentDoc {
  name: string;
  version: string;
  digest: string;
  relation: string;
  recipe: unknown;
  /** the caller may not read the parent: name, version and digest are "hidden", the recipe null */
  hidden?: true;
}

export interface LineageGraph {
  root: { name: string; version: string };
  nodes: Array<{ name: string; version: string; number: number; digest: string; deleted: boolean }>;
  edges: Array<{ from: string; to: string; relation: string; recipe: unknown }>;
}

export interface HistoryEntry {
  id: number;
  commit: string | null;
  event: EventKind;
  version: string | null;
  alias: string | null;
  author: string;
  time: string;
  subject: string;
  message: string;
}

export interface FileDoc {
  path: string;
  size: number;
  digest: string;
  format: string;
  framework?: string;
  parameters?: number;
  dtypes?: Record<string, number>;
  inputs?: FileFormat['inputs'];
  outputs?: FileFormat['outputs'];
  safety: FileFormat['safety'];
  details: Record<string, unknown>;
}

export interface VersionDoc {
  name: string;
  version: string;
  number: number;
  digest: string;
  size: number;
  created_at: string;
  created_by: string;
  message: string;
  files: FileDoc[];
  aliases: string[];
  parents: ParentDoc[];
  metadata: Record<string, unknown>;
  /** framework, parameters, dtypes, inputs/outputs and safety across the files */
  summary: FormatSummary;
}

export interface VersionSummary {
  version: string;
  number: number;
  digest: string;
  size: number;
  created_at: string;
  created_by: string;
  message: string;
  aliases: string[];
}

/** What changed from one version to another (of the same model or not), down to shared chunks. */
export interface VersionDiff {
  from: { name: string; version: string; digest: string };
  to: { name: string; version: string; digest: string };
  /** by path; `shared_bytes`: bytes of the `to` file in chunks the `from` version also has */
  files: Array<{
    path: string;
    status: 'added' | 'removed' | 'changed' | 'unchanged';
    from: { size: number; digest: string } | null;
    to: { size: number; digest: string } | null;
    shared_bytes: number;
  }>;
  summary: {
    added: number;
    removed: number;
    changed: number;
    unchanged: number;
    /** size of the `to` version, and how much of it is in chunks the `from` version has */
    to_bytes: number;
    shared_bytes: number;
    /** stored (compressed) bytes of the chunks `to` has and `from` does not */
    new_stored_bytes: number;
  };
}

export interface ModelDoc {
  name: string;
  description: string;
  created_at: string;
  updated_at: string;
  aliases: Record<string, string>;
  latest: VersionSummary | null;
  counts: { versions: number };
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface UploadDoc {
  id: string;
  offset: number;
  created_at: string;
  updated_at: string;
}

const MAX_MESSAGE = 64 * 1024;
/** Most parents one version may name. */
export const MAX_PARENTS = 64;

/** JSON with object keys sorted at every level: the form manifest digests are computed over. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function optionalText(field: string, value: unknown, max: number): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new CairnError('INVALID_ARGUMENT', `${field} must be a string`);
  if (Buffer.byteLength(value) > max) throw new CairnError('INVALID_ARGUMENT', `${field} is longer than ${max} bytes`);
  return value;
}

/** A JSON value given as JSON text (multipart) or already parsed (JSON body), within the limits of json-limits.ts. */
function parseJsonField(field: string, value: unknown, what: string): unknown {
  let parsed = value;
  if (typeof value === 'string') {
    if (Buffer.byteLength(value) > MAX_JSON_BYTES) throw new CairnError('INVALID_ARGUMENT', `${field} is longer than ${MAX_JSON_BYTES} bytes`, { field, max_bytes: MAX_JSON_BYTES });
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new CairnError('INVALID_ARGUMENT', `${field} must be ${what}`);
    }
  }
  checkJsonValue(field, parsed);
  return parsed;
}

function parseMetadata(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null || value === '') return {};
  const parsed = parseJsonField('metadata', value, 'a JSON object');
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CairnError('INVALID_ARGUMENT', 'metadata must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export interface RegistryDeps {
  db: Database;
  models: ModelQueries;
  blobs: BlobIndex;
  uploads: UploadQueries;
  events: EventQueries;
  lineage: LineageQueries;
  chunks: ChunkStore;
  /** format analysis, in worker threads */
  analysis: AnalysisPool;
  /** what to do with a version whose files run code when loaded */
  unsafePolicy: 'warn' | 'reject';
  log?: Logger;
  /** called after each committed change (wakes the git mirror) */
  onEvent?: () => void;
  now?: () => Date;
}

export class Registry {
  private readonly db: Database;
  private readonly models: ModelQueries;
  private readonly blobs: BlobIndex;
  private readonly uploads: UploadQueries;
  private readonly events: EventQueries;
  private readonly lineage: LineageQueries;
  readonly chunks: ChunkStore;
  private readonly onEvent: () => void;
  private readonly now: () => Date;
  private readonly analysis: AnalysisPool;
  private readonly unsafePolicy: 'warn' | 'reject';
  private readonly log: Logger | undefined;
  /** Sessions with a request in progress: one writer at a time. */
  private readonly uploadsBusy = new Set<string>();
  /** The running sha256 of each session this process has seen from its first byte on (kept in a codec worker). */
  private readonly uploadHashes = new Map<string, RunningHash>();
  private readonly cursors: PageCursors;

  constructor(deps: RegistryDeps) {
    this.db = deps.db;
    this.models = deps.models;
    this.blobs = deps.blobs;
    this.uploads = deps.uploads;
    this.events = deps.events;
    this.lineage = deps.lineage;
    this.chunks = deps.chunks;
    this.onEvent = deps.onEvent ?? (() => {});
    this.analysis = deps.analysis;
    this.unsafePolicy = deps.unsafePolicy;
    this.log = deps.log;
    this.now = deps.now ?? (() => new Date());
    this.cursors = new PageCursors(serverKey(deps.db, 'cursor'));
  }

  // ---- reading ----------------------------------------------------------

  private requireModel(name: string): ModelRow {
    const model = this.models.model(checkName(name));
    if (!model) throw new CairnError('MODEL_NOT_FOUND', `model ${name} does not exist`);
    return model;
  }

  /** Resolution order: digest, version, alias (`latest` is automatic). */
  private resolve(model: ModelRow, ref: string): VersionRow {
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

  private summary(row: VersionRow): VersionSummary {
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

  private versionDoc(model: ModelRow, row: VersionRow, caller: Caller): VersionDoc {
    return {
      name: model.name,
      ...this.summary(row),
      files: this.models.files(row.id).map(fileDoc),
      parents: this.parentDocs(row.id, caller),
      metadata: JSON.parse(row.metadata) as Record<string, unknown>,
      summary: JSON.parse(row.summary) as FormatSummary,
    };
  }

  getVersion(name: string, ref: string, caller: Caller): VersionDoc {
    const model = this.requireModel(name);
    return this.versionDoc(model, this.resolve(model, ref), caller);
  }

  /**
   * A version as Hugging Face clients name it: `main` (the latest version),
   * the id of its publish commit in the lineage repository (what those
   * clients pin to and cache under), or any ref. With that commit id, null
   * until the mirror has written it.
   */
  versionAtRevision(name: string, revision: string, caller: Caller): { version: VersionDoc; commit: string | null } {
    const model = this.requireModel(name);
    const byCommit = /^[0-9a-f]{40}$/.test(revision) ? this.events.versionPublishedBy(model.id, revision) : undefined;
    // `main` is the branch HF clients ask for by default; a version or alias of that name wins
    const main = revision === 'main' && !this.models.versionByString(model.id, 'main') && !this.models.aliasTarget(model.id, 'main');
    const row = this.resolve(model, byCommit ?? (main ? LATEST : revision));
    return { version: this.versionDoc(model, row, caller), commit: this.events.publishCommit(model.id, row.version) };
  }

  /** The files of `to` against those of `from`, with the bytes their chunks share. */
  diffVersions(to: { name: string; ref: string }, from: { name: string; ref: string }, caller: Caller): VersionDiff {
    const toDoc = this.getVersion(to.name, to.ref, caller);
    const fromDoc = this.getVersion(from.name, from.ref, caller);
    const fromBlobs = [...new Set(fromDoc.files.map((f) => f.digest))];
    const toBlobs = [...new Set(toDoc.files.map((f) => f.digest))];
    const before = new Map(fromDoc.files.map((f) => [f.path, f]));
    const after = new Map(toDoc.files.map((f) => [f.path, f]));
    const files: VersionDiff['files'] = [...new Set([...before.keys(), ...after.keys()])].sort().map((path) => {
      const a = before.get(path);
      const b = after.get(path);
      const status = !a ? 'added' : !b ? 'removed' : a.digest === b.digest ? 'unchanged' : 'changed';
      const shared = !b ? 0 : status === 'unchanged' ? b.size : this.blobs.sharedBytes(b.digest, fromBlobs);
      return { path, status, from: a ? { size: a.size, digest: a.digest } : null, to: b ? { size: b.size, digest: b.digest } : null, shared_bytes: shared };
    });
    const count = (s: string) => files.filter((f) => f.status === s).length;
    return {
      from: { name: fromDoc.name, version: fromDoc.version, digest: fromDoc.digest },
      to: { name: toDoc.name, version: toDoc.version, digest: toDoc.digest },
      files,
      summary: {
        added: count('added'),
        removed: count('removed'),
        changed: count('changed'),
        unchanged: count('unchanged'),
        to_bytes: toDoc.size,
        shared_bytes: files.reduce((n, f) => n + f.shared_bytes, 0),
        new_stored_bytes: this.blobs.newStoredBytes(toBlobs, fromBlobs),
      },
    };
  }

  getModel(name: string): ModelDoc {
    const model = this.requireModel(name);
    const latest = this.models.latestVersion(model.id);
    return {
      name: model.name,
      description: model.description,
      created_at: model.created_at,
      updated_at: model.updated_at,
      aliases: Object.fromEntries(this.models.aliasesOfModel(model.id).map((a) => [a.alias, a.version])),
      latest: latest ? this.summary(latest) : null,
      counts: { versions: this.models.countVersions(model.id) },
    };
  }

  /** Only models the caller may read: they make the page and its cursor. */
  listModels(query: { q?: unknown; limit?: unknown; cursor?: unknown; format?: unknown; framework?: unknown; unsafe?: unknown }, caller: Caller): Page<{
    name: string;
    description: string;
    created_at: string;
    updated_at: string;
    latest_version: string | null;
    versions: number;
  }> {
    const limit = parseLimit(query.limit);
    const q = query.q === undefined ? undefined : String(query.q);
    const text = (field: string, value: unknown) => {
      if (value === undefined || value === '') return undefined;
      if (typeof value !== 'string' || !/^[a-z0-9_.-]{1,64}$/.test(value)) throw new CairnError('INVALID_ARGUMENT', `${field} must be a format or framework name`);
      return value;
    };
    let unsafe: boolean | undefined;
    if (query.unsafe !== undefined && query.unsafe !== '') {
      if (query.unsafe !== 'true' && query.unsafe !== 'false') throw new CairnError('INVALID_ARGUMENT', 'unsafe must be true or false');
      unsafe = query.unsafe === 'true';
    }
    const rows = this.models.listModels({
      q,
      afterName: this.cursors.decode<string>('models', query.cursor, 'string'),
      limit: limit + 1,
      format: text('format', query.format),
      framework: text('framework', query.framework),
      unsafe,
      patterns: caller.models,
    });
    const page = rows.slice(0, limit);
    return {
      items: page.map((m) => ({
        name: m.name,
        description: m.description,
        created_at: m.created_at,
        updated_at: m.updated_at,
        latest_version: m.latest_version,
        versions: m.version_count,
      })),
      next_cursor: rows.length > limit ? this.cursors.encode('models', page[page.length - 1]!.name) : null,
    };
  }

  listVersions(name: string, query: { limit?: unknown; cursor?: unknown }): Page<VersionSummary> {
    const model = this.requireModel(name);
    const limit = parseLimit(query.limit);
    const list = `versions:${model.id}`;
    const rows = this.models.listVersions(model.id, { beforeNumber: this.cursors.decode<number>(list, query.cursor, 'number'), limit: limit + 1 });
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => this.summary(r)),
      next_cursor: rows.length > limit ? this.cursors.encode(list, page[page.length - 1]!.number) : null,
    };
  }

  /** One file of a version; `range` is inclusive and already validated against `size`. */
  fileInfo(name: string, ref: string, path: string, caller: Caller): { version: VersionDoc; file: FileDoc } {
    const model = this.requireModel(name);
    const row = this.resolve(model, ref);
    // a lookup only: paths are stored in NFC, and whatever was stored before stays reachable as it was
    checkPathShape(path);
    const file = this.models.file(row.id, path) ?? this.models.file(row.id, path.normalize('NFC'));
    if (!file) throw new CairnError('FILE_NOT_FOUND', `${model.name}@${row.version} has no file ${path}`);
    return { version: this.versionDoc(model, row, caller), file: fileDoc(file) };
  }

  openFile(file: FileDoc, range?: { start: number; end: number }): Promise<BlobStream> {
    return this.chunks.open(file.digest, range);
  }

  /** All files of a version as one tar stream. Every chunk is verified; a failure destroys the stream. */
  async archive(name: string, ref: string, caller: Caller): Promise<{ version: VersionDoc; stream: Readable }> {
    const version = this.getVersion(name, ref, caller);
    // every file is held from now on: gc keeps them even if the version is deleted meanwhile
    const release = this.chunks.hold(version.files.map((f) => f.digest));
    // Open the first file before answering, so a broken start is still an error status.
    let first: BlobStream | undefined;
    try {
      first = version.files[0] ? await this.openFile(version.files[0]) : undefined;
    } catch (err) {
      release();
      throw err;
    }
    const pack = tar.pack();
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    out.once('close', release);
    const mtime = new Date(version.created_at);
    const write = async () => {
      for (const [i, file] of version.files.entries()) {
        const opened = i === 0 && first ? first : await this.openFile(file);
        const entry = pack.entry({ name: file.path, size: file.size, mtime, mode: 0o644, type: 'file' });
        await pipeline(opened.stream, entry);
      }
      pack.finalize();
    };
    pipeline(pack, out).catch((err) => out.destroy(err));
    write().catch((err) => {
      first?.stream.destroy();
      pack.destroy(err);
      out.destroy(err);
    });
    return { version, stream: out };
  }

  /** A stored blob the caller may name (see usableBlob); undefined otherwise, as if it were not stored. */
  hasBlob(digest: string, caller: Caller): { size: number } | undefined {
    const blob = this.usableBlob(checkDigest(digest), caller);
    return blob ? { size: blob.size } : undefined;
  }

  /**
   * A blob may be named by digest (HEAD /v1/blobs, JSON publish) by a caller
   * who reads every model (as ever), who uploaded its bytes, or who may read
   * a live version holding it. To anyone else it does not exist: neither an
   * oracle of what other tenants store nor a way to their bytes.
   */
  private usableBlob(digest: string, caller: Caller) {
    const blob = this.blobs.getBlob(digest);
    if (!blob || mayRead(caller, '*')) return blob;
    if (caller.principal !== undefined && this.blobs.hasGrant(digest, caller.principal)) return blob;
    return this.models.liveVersionHolds(digest, caller.models) ? blob : undefined;
  }

  // ---- writing ----------------------------------------------------------

  /** Cheap early check, so a client does not stream gigabytes into a publish that must fail. */
  assertCanPublish(name: string, version: unknown): void {
    checkName(name);
    const v = checkVersion(version);
    const model = this.models.model(name);
    const existing = model && this.models.versionByString(model.id, v);
    if (existing) throw versionExists(name, existing);
    if (model && this.models.aliasTarget(model.id, v)) throw aliasShadowed(name, v);
  }

  /** Stores one uploaded file's bytes (the caller holds them now: see usableBlob); returns its digest and size. */
  async storeFile(source: AsyncIterable<Uint8Array>, caller: Caller): Promise<{ digest: string; size: number }> {
    const content = await this.chunks.store(source);
    this.db.transaction(() => {
      this.blobs.addBlob(content.digest, content.size, content.chunks);
      if (caller.principal !== undefined) this.blobs.addGrant(content.digest, caller.principal);
    });
    return { digest: content.digest, size: content.size };
  }

  /** Makes a version visible: one transaction, after all of its bytes are stored. */
  async publish(input: PublishInput): Promise<VersionDoc> {
    const name = checkName(input.name);
    const version = checkVersion(input.version);
    const message = optionalText('message', input.message, MAX_MESSAGE);
    const metadata = parseMetadata(input.metadata);
    const aliases = [...new Set((input.aliases ?? []).map((a) => checkAlias(a)))];
    if (aliases.includes(version)) throw new CairnError('INVALID_ALIAS', `alias ${version} would be shadowed by the version of the same name`);
    if (input.files.length === 0) throw new CairnError('INVALID_ARGUMENT', 'a version needs at least one file');
    if (input.files.length > MAX_FILES_PER_VERSION) throw tooManyFiles();
    const paths = new VersionPaths();
    // paths in Unicode NFC from here on: the form stored
    const inputFiles = input.files.map((f) => ({ path: paths.add(f.path), digest: checkDigest(f.digest) }));
    const actor = input.actor;
    if ((input.parents?.length ?? 0) > MAX_PARENTS) {
      throw new CairnError('INVALID_PARENT', `a version names at most ${MAX_PARENTS} parents`, { max_parents: MAX_PARENTS });
    }
    const parentInputs = (input.parents ?? []).map((p, i) => {
      const relation = p.relation ?? 'derived-from';
      if (typeof relation !== 'string' || !(RELATIONS as readonly string[]).includes(relation)) {
        throw new CairnError('INVALID_ARGUMENT', `relation must be one of ${RELATIONS.join(', ')}; got ${JSON.stringify(relation)}`);
      }
      let ref;
      try {
        ref = parseNameRef(p.ref);
      } catch (err) {
        throw new CairnError('INVALID_PARENT', `invalid parent: ${(err as Error).message}`);
      }
      // by name alone, before looking anything up: no oracle of other tenants' versions and aliases
      if (!mayRead(input.caller, ref.name)) throw new CairnError('FORBIDDEN', `parent ${ref.name}@${ref.ref}: this token may not read model ${ref.name}`);
      return { ...ref, relation, recipe: parseRecipe(`parents[${i}].recipe`, p.recipe) };
    });

    // Refuse a taken version before reading any file back for analysis.
    this.assertCanPublish(name, version);
    // Before analysis too: what a file is detected as must not tell about content the caller may not use.
    for (const f of inputFiles) {
      if (!this.usableBlob(f.digest, input.caller)) throw unknownBlob(f);
    }
    const analyzed = await this.analyzeFiles(inputFiles);
    const summary = summarize(analyzed);
    if (this.unsafePolicy === 'reject' && summary.safety.verdict === 'unsafe') {
      const list = summary.safety.unsafe_files.map((f) => `${f.path} (${f.findings.map((x) => x.global).join(', ')})`).join('; ');
      throw new CairnError('UNSAFE_MODEL', `refused by policy CAIRN_UNSAFE=reject: loading these files runs code: ${list}`, {
        unsafe_files: summary.safety.unsafe_files,
      });
    }
    const analysisOf = new Map(analyzed.map((f) => [f.path, f.analysis]));

    const versionId = this.db.transaction(() => {
      const now = this.now().toISOString();
      const model = this.models.model(name) ?? this.models.createModel(name, now);
      const existing = this.models.versionByString(model.id, version);
      if (existing) throw versionExists(name, existing);
      if (this.models.aliasTarget(model.id, version)) throw aliasShadowed(name, version);
      const files: FileRow[] = inputFiles
        .map((f) => {
          const blob = this.blobs.getBlob(f.digest);
          if (!blob) throw unknownBlob(f);
          const analysis = analysisOf.get(f.path)!;
          return { path: f.path, blob_digest: f.digest, size: blob.size, format: analysis.format, analysis: JSON.stringify(analysis) };
        })
        // byte order of the UTF-8 paths: the order SQLite lists them in, and the manifest's
        .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
      for (const alias of aliases) {
        if (this.models.versionByString(model.id, alias)) {
          throw new CairnError('INVALID_ALIAS', `alias ${alias} would be shadowed by the version of the same name`);
        }
      }
      const parents = parentInputs.map((p) => {
        const parentModel = this.models.model(p.name);
        let row: VersionRow | undefined;
        try {
          row = parentModel && this.resolve(parentModel, p.ref);
        } catch {
          row = undefined;
        }
        if (!parentModel || !row) throw new CairnError('INVALID_PARENT', `parent ${p.name}@${p.ref} does not exist`);
        return { row, doc: { name: p.name, version: row.version, digest: row.digest, relation: p.relation, recipe: p.recipe } };
      });
      const manifest = {
        name,
        version,
        files: files.map((f) => ({ path: f.path, size: f.size, digest: f.blob_digest })),
        parents: parents.map((p) => p.doc),
        metadata,
      };
      const id = this.models.insertVersion({
        model_id: model.id,
        version,
        number: this.models.takeNumber(model.id, now),
        digest: `sha256:${createHash('sha256').update(canonicalJson(manifest)).digest('hex')}`,
        size: files.reduce((n, f) => n + f.size, 0),
        created_at: now,
        created_by: actor,
        message,
        metadata: JSON.stringify(metadata),
        framework: summary.framework,
        safety: summary.safety.verdict,
        summary: JSON.stringify(summary),
      });
      for (const f of files) this.models.insertFile(id, f);
      parents.forEach((p, seq) => this.lineage.addParent(id, seq, p.row.id, p.doc.relation, p.doc.recipe));
      for (const alias of aliases) this.models.setAlias(model.id, alias, id, now, actor);
      const doc = this.versionDoc(model, this.models.versionById(id)!, FULL_VIEW);
      const { aliases: _aliases, ...manifestDoc } = doc;
      this.recordEvent(model, {
        kind: 'publish',
        version,
        actor,
        time: now,
        message,
        subject: `publish ${name}@${version}`,
        changes: { [versionPath(name, version)]: stableJson(manifestDoc), [modelPath(name)]: this.modelJson(model) },
        tag: isValidTagName(`${name}@${version}`) ? `${name}@${version}` : null,
      });
      return id;
    });
    this.onEvent();
    const model = this.models.model(name)!;
    return this.versionDoc(model, this.models.versionById(versionId)!, input.caller);
  }

  /**
   * Detects each file's format in the analysis workers, which read it back
   * from storage (bounded reads) through this thread.
   */
  private async analyzeFiles(files: PublishFile[]): Promise<Array<{ path: string; analysis: FileFormat }>> {
    const toAnalyze = files.map((f) => {
      const blob = this.blobs.getBlob(f.digest);
      if (!blob) throw new CairnError('UNKNOWN_BLOB', `no uploaded content ${f.digest} for ${f.path}: upload it first`);
      return { path: f.path, digest: f.digest, size: blob.size, open: () => ({ path: f.path, ...this.chunks.blobReader(f.digest) }) };
    });
    let out;
    try {
      out = await this.analysis.analyzeVersion(toAnalyze);
    } catch (err) {
      if (!(err instanceof InvalidVersionFileError)) throw err;
      throw new CairnError('INVALID_MODEL_FILE', `${err.path} is not a valid ${err.format} file: ${err.message}`, { path: err.path, format: err.format });
    }
    linkVersionFiles(out);
    return out;
  }

  private parentDocs(versionId: number, caller: Caller): ParentDoc[] {
    return this.lineage.parentsOf(versionId).map((edge) => {
      const node = this.lineage.node(edge.parent_id)!;
      if (!mayRead(caller, node.name)) return { name: 'hidden', version: 'hidden', digest: 'hidden', relation: edge.relation, recipe: null, hidden: true };
      return { name: node.name, version: node.version, digest: node.digest, relation: edge.relation, recipe: JSON.parse(edge.recipe) as unknown };
    });
  }

  private modelJson(model: ModelRow): string {
    const aliases = Object.fromEntries(this.models.aliasesOfModel(model.id).map((a) => [a.alias, a.version]));
    return stableJson({ name: model.name, description: model.description, aliases });
  }

  /** Appends to the outbox/history; call inside the transaction of the change. */
  private recordEvent(
    model: ModelRow,
    event: { kind: EventKind; version?: string; alias?: string; actor: string; time: string; message?: string; subject: string; changes: Record<string, string | null>; tag?: string | null },
  ): void {
    this.events.insert({
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
    });
  }

  /**
   * Ancestors and descendants of a version, across models — those the caller
   * may read: a version of another model is left out with its edges (and
   * their recipes), and the walk does not go on through it.
   */
  lineageGraph(name: string, ref: string, caller: Caller): LineageGraph {
    const model = this.requireModel(name);
    const start = this.resolve(model, ref);
    const nodes = new Map<number, LineageGraph['nodes'][number]>();
    const edges: LineageGraph['edges'] = [];
    const key = (n: { name: string; version: string }) => `${n.name}@${n.version}`;
    /** false for a version the caller may not read */
    const visit = (id: number) => {
      if (nodes.has(id)) return true;
      const node = this.lineage.node(id)!;
      if (!mayRead(caller, node.name)) return false;
      nodes.set(id, { name: node.name, version: node.version, number: node.number, digest: node.digest, deleted: node.deleted_at !== null });
      return true;
    };
    const edgeKeys = new Set<string>();
    const addEdge = (e: { child_id: number; parent_id: number; relation: string; recipe: string }) => {
      const from = key(nodes.get(e.child_id)!);
      const to = key(nodes.get(e.parent_id)!);
      const k = `${from}>${to}>${e.relation}`;
      if (edgeKeys.has(k)) return;
      edgeKeys.add(k);
      edges.push({ from, to, relation: e.relation, recipe: JSON.parse(e.recipe) as unknown });
    };
    visit(start.id);
    for (const direction of ['up', 'down'] as const) {
      const queue = [start.id];
      const seen = new Set(queue);
      while (queue.length > 0) {
        const id = queue.shift()!;
        const next = direction === 'up' ? this.lineage.parentsOf(id) : this.lineage.childrenOf(id);
        for (const e of next) {
          const other = direction === 'up' ? e.parent_id : e.child_id;
          if (!visit(other)) continue;
          addEdge(e);
          if (!seen.has(other)) {
            seen.add(other);
            queue.push(other);
          }
        }
      }
    }
    return { root: { name: model.name, version: start.version }, nodes: [...nodes.values()], edges };
  }

  history(name: string, query: { limit?: unknown; cursor?: unknown }): Page<HistoryEntry> {
    const model = this.requireModel(name);
    const limit = parseLimit(query.limit);
    const list = `history:${model.id}`;
    const rows = this.events.history(model.id, { beforeId: this.cursors.decode<number>(list, query.cursor, 'number'), limit: limit + 1 });
    const page = rows.slice(0, limit);
    return { items: page.map(historyEntry), next_cursor: rows.length > limit ? this.cursors.encode(list, page[page.length - 1]!.id) : null };
  }

  setAlias(name: string, alias: unknown, version: unknown, actor: string): { alias: string; version: string; previous: string | null } {
    const a = checkAlias(alias);
    const v = checkVersion(version);
    const result = this.db.transaction(() => {
      const model = this.requireModel(name);
      const target = this.models.versionByString(model.id, v);
      if (!target || target.deleted_at) throw new CairnError('VERSION_NOT_FOUND', `${name}@${v} does not exist`);
      if (this.models.versionByString(model.id, a)) {
        throw new CairnError('INVALID_ALIAS', `alias ${a} would be shadowed by the version of the same name`);
      }
      const previous = this.models.aliasTarget(model.id, a);
      const now = this.now().toISOString();
      this.models.setAlias(model.id, a, target.id, now, actor);
      this.models.touchModel(model.id, now);
      if (previous?.id !== target.id) {
        this.recordEvent(model, {
          kind: 'alias',
          version: v,
          alias: a,
          actor,
          time: now,
          subject: `alias ${name}@${a} -> ${v}`,
          changes: { [modelPath(name)]: this.modelJson(model) },
        });
      }
      return { alias: a, version: v, previous: previous?.version ?? null };
    });
    this.onEvent();
    return result;
  }

  deleteAlias(name: string, alias: unknown, actor: string): void {
    const a = checkAlias(alias);
    this.db.transaction(() => {
      const model = this.requireModel(name);
      const target = this.models.aliasTarget(model.id, a);
      if (!target || !this.models.deleteAlias(model.id, a)) throw new CairnError('ALIAS_NOT_FOUND', `${name} has no alias ${a}`);
      const now = this.now().toISOString();
      this.models.touchModel(model.id, now);
      this.recordEvent(model, {
        kind: 'unalias',
        version: target.version,
        alias: a,
        actor,
        time: now,
        subject: `unalias ${name}@${a}`,
        changes: { [modelPath(name)]: this.modelJson(model) },
      });
    });
    this.onEvent();
  }

  /** Tombstones a version: it disappears, its string stays taken, its bytes go at the next gc. */
  deleteVersion(name: string, version: unknown, actor: string): void {
    const v = checkVersion(version);
    this.db.transaction(() => {
      const model = this.requireModel(name);
      const row = this.models.versionByString(model.id, v);
      if (!row || row.deleted_at) throw new CairnError('VERSION_NOT_FOUND', `${name}@${v} does not exist`);
      const aliases = this.models.aliasesOfVersion(row.id);
      if (aliases.length > 0) {
        throw new CairnError('VERSION_HAS_ALIASES', `${name}@${v} is still the target of ${aliases.join(', ')}: move or remove those aliases first`, { aliases });
      }
      const now = this.now().toISOString();
      this.models.markDeleted(row.id, now, actor);
      this.models.touchModel(model.id, now);
      this.recordEvent(model, {
        kind: 'delete',
        version: v,
        actor,
        time: now,
        subject: `delete ${name}@${v}`,
        changes: { [versionPath(name, v)]: null, [modelPath(name)]: this.modelJson(model) },
      });
    });
    this.onEvent();
  }

  // ---- resumable uploads --------------------------------------------------
  // A session belongs to the token that started it: to any other it does not exist.

  createUpload(caller: Caller): UploadDoc {
    const id = randomBytes(16).toString('base64url');
    const row = this.uploads.create(id, this.now().toISOString(), caller.principal ?? null);
    return uploadDoc(row);
  }

  getUpload(id: string, caller: Caller): UploadDoc {
    return uploadDoc(this.requireUpload(id, caller));
  }

  private requireUpload(id: string, caller: Caller) {
    const row = typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? this.uploads.get(id) : undefined;
    // with auth off (no principal) every session is everyone's
    if (!row || (caller.principal !== undefined && row.owner !== caller.principal)) throw new CairnError('UPLOAD_NOT_FOUND', `no upload session ${id}`);
    return row;
  }

  private async withUpload<T>(id: string, caller: Caller, fn: () => Promise<T>): Promise<T> {
    this.requireUpload(id, caller);
    if (this.uploadsBusy.has(id)) throw new CairnError('UPLOAD_BUSY', `upload ${id} has another request in progress`);
    this.uploadsBusy.add(id);
    try {
      return await fn();
    } finally {
      this.uploadsBusy.delete(id);
    }
  }

  /**
   * Appends a request body at `start` (which must be the current offset).
   * Every byte received is stored, even when the client goes away mid-way,
   * so the session resumes from exactly what the server has.
   */
  appendUpload(id: string, start: number | undefined, source: AsyncIterable<Uint8Array>, caller: Caller): Promise<UploadDoc> {
    return this.withUpload(id, caller, async () => {
      const row = this.requireUpload(id, caller);
      if (start !== undefined && start !== row.size) {
        throw new CairnError('UPLOAD_OFFSET_MISMATCH', `upload ${id} is at offset ${row.size}, not ${start}`, { offset: row.size });
      }
      // The session's running hash sees the bytes too, as long as it has
      // seen every byte stored so far; otherwise (this process started after
      // the session did) finishing reads the content back.
      // Each request continues the chunking of the one before (its last
      // chunk is cut again with the new bytes): the session's chunks are
      // those of a single upload of the same bytes, whatever the part sizes.
      let hash = this.uploadHashes.get(id);
      if (!hash && row.size === 0) this.uploadHashes.set(id, (hash = this.chunks.runningHash()));
      await this.chunks.store(source, {
        startOffset: row.size,
        keepPartial: true,
        hash,
        resume: this.uploads.resumePoint(id),
        onLayout: (layout) => this.uploads.setLayout(id, layout),
        onChunks: (chunks) => this.uploads.appendChunks(id, chunks),
      });
      return uploadDoc(this.requireUpload(id, caller));
    });
  }

  /** Checks the digest of everything received and turns the session into a blob the caller may use. */
  finishUpload(id: string, digest: unknown, source: AsyncIterable<Uint8Array> | undefined, caller: Caller): Promise<{ digest: string; size: number }> {
    const expected = checkDigest(digest);
    const append = source ? this.appendUpload(id, undefined, source, caller) : Promise.resolve();
    return append.then(() =>
      this.withUpload(id, caller, async () => {
        const row = this.requireUpload(id, caller);
        const chunks = this.uploads.chunks(id);
        const running = await this.uploadHashes.get(id)?.digest();
        let actual: string;
        if (running && running.size === row.size) {
          actual = running.digest;
        } else {
          // This process has not seen every byte (it restarted): read them back.
          const hash = createHash('sha256');
          for (const c of chunks) hash.update(await this.chunks.readChunk(c.digest));
          actual = `sha256:${hash.digest('hex')}`;
        }
        if (actual !== expected) {
          throw new CairnError('DIGEST_MISMATCH', `upload ${id} holds ${row.size} bytes with digest ${actual}, not ${expected}`, {
            actual,
            size: row.size,
          });
        }
        this.db.transaction(() => {
          this.blobs.addBlob(actual, row.size, chunks);
          if (row.owner !== null) this.blobs.addGrant(actual, row.owner);
          this.uploads.delete(id);
        });
        this.forgetUploadHash(id);
        return { digest: actual, size: row.size };
      }),
    );
  }

  cancelUpload(id: string, caller: Caller): Promise<void> {
    return this.withUpload(id, caller, async () => {
      this.uploads.delete(id);
      this.forgetUploadHash(id);
    });
  }

  /** Frees the running hash of a session that is gone (finished, cancelled, or expired: gc tells). */
  forgetUploadHash(id: string): void {
    this.uploadHashes.get(id)?.drop();
    this.uploadHashes.delete(id);
  }
}

function historyEntry(e: EventRow): HistoryEntry {
  return {
    id: e.id,
    commit: e.commit_id,
    event: e.kind,
    version: e.version,
    alias: e.alias,
    author: e.actor,
    time: e.time,
    subject: e.subject,
    message: e.message,
  };
}

function parseRecipe(field: string, value: unknown): unknown {
  if (value === undefined || value === null || value === '') return null;
  return parseJsonField(field, value, 'JSON');
}

function fileDoc(f: FileRow): FileDoc {
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

function uploadDoc(row: { id: string; size: number; created_at: string; updated_at: string }): UploadDoc {
  return { id: row.id, offset: row.size, created_at: row.created_at, updated_at: row.updated_at };
}

function unknownBlob(f: PublishFile): CairnError {
  return new CairnError('UNKNOWN_BLOB', `no uploaded content ${f.digest} for ${f.path}: upload it first`);
}

function aliasShadowed(name: string, version: string): CairnError {
  return new CairnError('INVALID_VERSION', `${name} has an alias ${version}: a version of that name would hide it (move or remove the alias first)`);
}

function versionExists(name: string, row: VersionRow): CairnError {
  const why = row.deleted_at ? ' (deleted; version strings are never reused)' : '';
  return new CairnError('VERSION_EXISTS', `${name}@${row.version} already exists${why}; published versions never change`);
}
