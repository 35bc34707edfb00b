// What changes the set of versions: publish (validation, format analysis,
// the manifest and its digest, the event) and delete (a tombstone).
import { createHash } from 'node:crypto';
import { type Caller, FULL_VIEW, mayRead } from '../access.ts';
import { RELATIONS, type VersionDoc } from '../api/index.ts';
import type { ChunkStore } from '../blobs/chunk-store.ts';
import { canonicalJson, canonicalJsonFile } from '../canonical-json.ts';
import { CairnError } from '../errors.ts';
import { InvalidVersionFileError, type AnalysisPool } from '../formats/analysis-pool.ts';
import { linkVersionFiles, summarize } from '../formats/analyze.ts';
import type { FileFormat } from '../formats/types.ts';
import { checkAlias, checkDigest, checkName, checkNewName, checkNewVersion, checkVersion, MAX_FILES_PER_VERSION, MAX_PARENTS, parseNameRef, tooManyFiles, VersionPaths } from '../identifiers.ts';
import { checkJsonValue, MAX_JSON_BYTES } from '../json-limits.ts';
import { isValidTagName, modelPath, versionPath } from '../lineage/documents.ts';
import type { FileRow, VersionRow } from '../metadata/models.ts';
import type { Catalog } from './catalog.ts';

export interface PublishFile {
  path: string;
  digest: string;
}

export interface ParentInput {
  /** `<name>@<ref>` */
  ref: unknown;
  relation?: unknown;
  recipe?: unknown;
}

/** A publish as it arrives: every field but the files still to be checked. */
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
  /** runs inside the transaction that makes the version visible (a front door's own records of it) */
  inTransaction?: (versionId: number) => void;
}

export interface PublishingDeps {
  catalog: Catalog;
  chunks: ChunkStore;
  /** format analysis, in worker threads */
  analysis: AnalysisPool;
  /** what to do with a version whose files run code when loaded */
  unsafePolicy: 'warn' | 'reject';
}

const MAX_MESSAGE = 64 * 1024;

/**
 * The manifest a version's digest is the sha256 of (compact canonical JSON):
 * its content and its ancestry — name, version, files (path, size, digest),
 * parents, metadata — and nothing else. The lineage file
 * `versions/<version>.json` is the version document instead (canonical JSON
 * too, indented): it must differ, since it holds that digest itself, and
 * what the server adds (the publish time and author, the number, the format
 * analysis), none of which may change the identity of the content.
 */
export function manifestDigest(manifest: {
  name: string;
  version: string;
  files: Array<{ path: string; size: number; digest: string }>;
  parents: Array<{ name: string; version: string; digest: string; relation: string; recipe: unknown }>;
  metadata: Record<string, unknown>;
}): string {
  return `sha256:${createHash('sha256').update(canonicalJson(manifest)).digest('hex')}`;
}

export class Publishing {
  private readonly catalog: Catalog;
  private readonly chunks: ChunkStore;
  private readonly analysis: AnalysisPool;
  private readonly unsafePolicy: 'warn' | 'reject';

  constructor(deps: PublishingDeps) {
    this.catalog = deps.catalog;
    this.chunks = deps.chunks;
    this.analysis = deps.analysis;
    this.unsafePolicy = deps.unsafePolicy;
  }

  /** Cheap early check, so a client does not stream gigabytes into a publish that must fail. */
  assertCanPublish(name: string, version: unknown): void {
    checkName(name);
    const v = checkNewVersion(version);
    const model = this.catalog.models.model(name);
    if (!model) checkNewName(name);
    const existing = model && this.catalog.models.versionByString(model.id, v);
    if (existing) throw versionExists(name, existing);
    if (model && this.catalog.models.aliasTarget(model.id, v)) throw aliasShadowed(name, v);
  }

  /** Stores one uploaded file's bytes (the caller holds them now: see Catalog.usableBlob); returns its digest and size. */
  async storeFile(source: AsyncIterable<Uint8Array>, caller: Caller): Promise<{ digest: string; size: number }> {
    const content = await this.chunks.store(source);
    this.catalog.db.transaction(() => {
      this.catalog.blobs.addBlob(content.digest, content.size, content.chunks);
      if (caller.principal !== undefined) this.catalog.blobs.addGrant(content.digest, caller.principal);
    });
    return { digest: content.digest, size: content.size };
  }

  /** Makes a version visible: one transaction, after all of its bytes are stored. */
  async publish(input: PublishInput): Promise<VersionDoc> {
    const { catalog } = this;
    const name = checkName(input.name);
    const version = checkNewVersion(input.version);
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
      if (!catalog.usableBlob(f.digest, input.caller)) throw unknownBlob(f);
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

    const versionId = catalog.commit(() => {
      const now = catalog.now().toISOString();
      const model = catalog.models.model(name) ?? catalog.models.createModel(checkNewName(name), now);
      const existing = catalog.models.versionByString(model.id, version);
      if (existing) throw versionExists(name, existing);
      if (catalog.models.aliasTarget(model.id, version)) throw aliasShadowed(name, version);
      const files: FileRow[] = inputFiles
        .map((f) => {
          const blob = catalog.blobs.getBlob(f.digest);
          if (!blob) throw unknownBlob(f);
          const analysis = analysisOf.get(f.path)!;
          return { path: f.path, blob_digest: f.digest, size: blob.size, format: analysis.format, analysis: JSON.stringify(analysis) };
        })
        // byte order of the UTF-8 paths: the order SQLite lists them in, and the manifest's
        .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
      for (const alias of aliases) {
        if (catalog.models.versionByString(model.id, alias)) {
          throw new CairnError('INVALID_ALIAS', `alias ${alias} would be shadowed by the version of the same name`);
        }
      }
      const parents = parentInputs.map((p) => {
        const parentModel = catalog.models.model(p.name);
        let row: VersionRow | undefined;
        try {
          row = parentModel && catalog.resolve(parentModel, p.ref);
        } catch {
          row = undefined;
        }
        if (!parentModel || !row) throw new CairnError('INVALID_PARENT', `parent ${p.name}@${p.ref} does not exist`);
        return { row, doc: { name: p.name, version: row.version, digest: row.digest, relation: p.relation, recipe: p.recipe } };
      });
      const id = catalog.models.insertVersion({
        model_id: model.id,
        version,
        number: catalog.models.takeNumber(model.id, now),
        digest: manifestDigest({
          name,
          version,
          files: files.map((f) => ({ path: f.path, size: f.size, digest: f.blob_digest })),
          parents: parents.map((p) => p.doc),
          metadata,
        }),
        size: files.reduce((n, f) => n + f.size, 0),
        created_at: now,
        created_by: actor,
        message,
        metadata: JSON.stringify(metadata),
        framework: summary.framework,
        safety: summary.safety.verdict,
        summary: JSON.stringify(summary),
      });
      for (const f of files) catalog.models.insertFile(id, f);
      parents.forEach((p, seq) => catalog.lineage.addParent(id, seq, p.row.id, p.doc.relation, p.doc.recipe));
      input.inTransaction?.(id);
      const { aliases: _aliases, ...versionFile } = catalog.versionDoc(model, catalog.models.versionById(id)!, FULL_VIEW);
      catalog.record(model, {
        kind: 'publish',
        version,
        actor,
        time: now,
        message,
        subject: `publish ${name}@${version}`,
        changes: { [versionPath(name, version)]: canonicalJsonFile(versionFile), [modelPath(name)]: catalog.modelFile(model) },
        tag: isValidTagName(`${name}@${version}`) ? `${name}@${version}` : null,
      });
      // aliases given with the publish are events of their own, as if set right after it: who
      // put a version in production, and when, is in the history and in git like any alias move
      for (const alias of aliases) {
        const previous = catalog.models.aliasTarget(model.id, alias);
        catalog.models.setAlias(model.id, alias, id, now, actor);
        catalog.record(model, {
          kind: 'alias',
          version,
          alias,
          actor,
          time: now,
          message: previous ? `set at publish (was ${previous.version})` : 'set at publish',
          subject: `alias ${name}@${alias} -> ${version}`,
          changes: { [modelPath(name)]: catalog.modelFile(model) },
        });
      }
      return id;
    });
    const model = catalog.models.model(name)!;
    return catalog.versionDoc(model, catalog.models.versionById(versionId)!, input.caller);
  }

  /** Tombstones a version: it disappears, its string stays taken, its bytes go at the next gc. */
  delete(name: string, version: unknown, actor: string): void {
    const v = checkVersion(version);
    const { catalog } = this;
    catalog.commit(() => {
      const model = catalog.requireModel(name);
      const row = catalog.models.versionByString(model.id, v);
      if (!row || row.deleted_at) throw new CairnError('VERSION_NOT_FOUND', `${name}@${v} does not exist`);
      const aliases = catalog.models.aliasesOfVersion(row.id);
      if (aliases.length > 0) {
        throw new CairnError('VERSION_HAS_ALIASES', `${name}@${v} is still the target of ${aliases.join(', ')}: move or remove those aliases first`, { aliases });
      }
      const now = catalog.now().toISOString();
      catalog.models.markDeleted(row.id, now, actor);
      catalog.models.touchModel(model.id, now);
      catalog.record(model, {
        kind: 'delete',
        version: v,
        actor,
        time: now,
        subject: `delete ${name}@${v}`,
        changes: { [versionPath(name, v)]: null, [modelPath(name)]: catalog.modelFile(model) },
      });
    });
  }

  /**
   * Detects each file's format in the analysis workers, which read it back
   * from storage (bounded reads) through this thread.
   */
  private async analyzeFiles(files: PublishFile[]): Promise<Array<{ path: string; analysis: FileFormat }>> {
    const toAnalyze = files.map((f) => {
      const blob = this.catalog.blobs.getBlob(f.digest);
      if (!blob) throw unknownBlob(f);
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

function parseRecipe(field: string, value: unknown): unknown {
  if (value === undefined || value === null || value === '') return null;
  return parseJsonField(field, value, 'JSON');
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
