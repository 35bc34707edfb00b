// Queries for models, versions, their files and aliases.
import { patternMatches } from '../access.ts';
import type { Database } from './db.ts';

export interface ModelRow {
  id: number;
  name: string;
  description: string;
  /** the model's card (Markdown); '' = none */
  readme: string;
  created_at: string;
  updated_at: string;
  last_number: number;
}

export interface VersionRow {
  id: number;
  model_id: number;
  version: string;
  number: number;
  digest: string;
  size: number;
  created_at: string;
  created_by: string;
  message: string;
  metadata: string;
  framework: string | null;
  safety: string;
  /** JSON VersionSummary */
  summary: string;
  deleted_at: string | null;
  deleted_by: string | null;
}

export interface FileRow {
  path: string;
  blob_digest: string;
  size: number;
  format: string;
  /** JSON FileFormat */
  analysis: string;
}

export interface ModelSummaryRow extends ModelRow {
  version_count: number;
  latest_version: string | null;
  latest_size: number | null;
  latest_safety: string | null;
  /** JSON array of the latest version's formats, or null */
  latest_formats: string | null;
  latest_framework: string | null;
  production_version: string | null;
  /** 1 when a live version has a file that runs code when loaded */
  has_unsafe: number;
}

/** How the model list is ordered: by name, or most recently changed first. */
export type ModelSort = 'name' | 'updated';

export interface ModelFilter {
  q?: string;
  namespace?: string;
  format?: string;
  framework?: string;
  unsafe?: boolean;
  patterns: readonly string[];
}

/**
 * SQL true when model `m`'s name is within the JSON array of name patterns
 * @patterns (none: every model) — the patterns of a token, matched by the one
 * matcher (patternMatches in ../access.ts, registered as an SQL function), so
 * that lists, their cursors and the checks of single models never disagree.
 */
const NAME_VISIBLE = '(json_array_length(@patterns) = 0 OR EXISTS (SELECT 1 FROM json_each(@patterns) p WHERE cairn_pattern_matches(p.value, m.name)))';

export class ModelQueries {
  constructor(private readonly db: Database) {
    db.raw.function('cairn_pattern_matches', { deterministic: true }, (pattern: unknown, name: unknown) => (patternMatches(String(pattern), String(name)) ? 1 : 0));
  }

  model(name: string): ModelRow | undefined {
    return this.db.first<ModelRow>('SELECT * FROM models WHERE name = ?', [name]);
  }

  /** Those of `names` that are models (json_each: any number of names, one statement). */
  existingModels(names: readonly string[]): string[] {
    return this.db.all<{ name: string }>('SELECT name FROM models WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name', [JSON.stringify(names)]).map((r) => r.name);
  }

  /** The models with an alias of this name. */
  modelsWithAlias(alias: string): string[] {
    return this.db.all<{ name: string }>('SELECT m.name FROM aliases a JOIN models m ON m.id = a.model_id WHERE a.alias = ? ORDER BY m.name', [alias]).map((r) => r.name);
  }

  createModel(name: string, now: string): ModelRow {
    this.db.run('INSERT INTO models (name, created_at, updated_at) VALUES (?, ?, ?)', [name, now, now]);
    return this.model(name)!;
  }

  takeNumber(modelId: number, now: string): number {
    this.db.run('UPDATE models SET last_number = last_number + 1, updated_at = ? WHERE id = ?', [now, modelId]);
    return this.db.first<{ last_number: number }>('SELECT last_number FROM models WHERE id = ?', [modelId])!.last_number;
  }

  touchModel(modelId: number, now: string): void {
    this.db.run('UPDATE models SET updated_at = ? WHERE id = ?', [now, modelId]);
  }

  /**
   * Models in `namespace` whose name or description contains `q`, with a
   * live version holding a file of `format`, of `framework`, or (un)safe —
   * among those whose names match `patterns` (none: every model) — ordered
   * by `sort`, after the position `after` (the last row of the page before).
   */
  listModels(filter: ModelFilter & { sort: ModelSort; after?: { name: string; updated_at?: string }; limit: number }): ModelSummaryRow[] {
    const { where, params } = this.modelFilter(filter);
    const after = filter.after === undefined ? '' : filter.sort === 'name' ? 'AND m.name > @afterName' : 'AND (m.updated_at < @afterUpdated OR (m.updated_at = @afterUpdated AND m.name > @afterName))';
    return this.db.all<ModelSummaryRow>(
      `SELECT m.id, m.name, m.description, m.created_at, m.updated_at, m.last_number,
              (SELECT count(*) FROM versions v WHERE v.model_id = m.id AND v.deleted_at IS NULL) AS version_count,
              l.version AS latest_version, l.size AS latest_size, l.safety AS latest_safety,
              json_extract(l.summary, '$.formats') AS latest_formats, l.framework AS latest_framework,
              (SELECT v.version FROM aliases a JOIN versions v ON v.id = a.version_id WHERE a.model_id = m.id AND a.alias = 'production') AS production_version,
              EXISTS (SELECT 1 FROM versions v WHERE v.model_id = m.id AND v.deleted_at IS NULL AND v.safety = 'unsafe') AS has_unsafe
         FROM models m
         LEFT JOIN versions l ON l.id = (SELECT v.id FROM versions v WHERE v.model_id = m.id AND v.deleted_at IS NULL ORDER BY v.number DESC LIMIT 1)
        WHERE ${where} ${after}
        ORDER BY ${filter.sort === 'name' ? 'm.name' : 'm.updated_at DESC, m.name'} LIMIT @limit`,
      { ...params, afterName: filter.after?.name ?? null, afterUpdated: filter.after?.updated_at ?? null, limit: filter.limit },
    );
  }

  /** How many models the filter matches, on every page. */
  countModels(filter: ModelFilter): number {
    const { where, params } = this.modelFilter(filter);
    return this.db.first<{ n: number }>(`SELECT count(*) AS n FROM models m WHERE ${where}`, params)!.n;
  }

  private modelFilter(filter: ModelFilter): { where: string; params: Record<string, unknown> } {
    const like = filter.q ? `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : '%';
    const live = 'v.model_id = m.id AND v.deleted_at IS NULL';
    const where = [
      "(m.name LIKE @like ESCAPE '\\' OR m.description LIKE @like ESCAPE '\\')",
      NAME_VISIBLE,
      // `acme/…` sorts between `acme/` and `acme0` ('0' follows '/'): a range of the name index
      filter.namespace === undefined ? '' : "m.name > @namespace || '/' AND m.name < @namespace || '0'",
      filter.format === undefined ? '' : `EXISTS (SELECT 1 FROM versions v JOIN version_files f ON f.version_id = v.id WHERE ${live} AND f.format = @format)`,
      filter.framework === undefined ? '' : `EXISTS (SELECT 1 FROM versions v WHERE ${live} AND v.framework = @framework)`,
      filter.unsafe === undefined ? '' : `${filter.unsafe ? '' : 'NOT '}EXISTS (SELECT 1 FROM versions v WHERE ${live} AND v.safety = 'unsafe')`,
    ]
      .filter(Boolean)
      .join(' AND ');
    return {
      where,
      params: { like, namespace: filter.namespace ?? null, format: filter.format ?? null, framework: filter.framework ?? null, patterns: JSON.stringify(filter.patterns) },
    };
  }

  /** The description and card of a model. */
  describe(modelId: number, fields: { description: string; readme: string }, now: string): void {
    this.db.run('UPDATE models SET description = ?, readme = ?, updated_at = ? WHERE id = ?', [fields.description, fields.readme, now, modelId]);
  }

  /** Whether a live version of a model whose name matches `patterns` (none: any model) has a file with this content. */
  liveVersionHolds(blobDigest: string, patterns: readonly string[]): boolean {
    return (
      this.db.first(
        `SELECT 1 FROM version_files f JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id
          WHERE f.blob_digest = @digest AND v.deleted_at IS NULL AND ${NAME_VISIBLE} LIMIT 1`,
        { digest: blobDigest, patterns: JSON.stringify(patterns) },
      ) !== undefined
    );
  }

  countVersions(modelId: number): number {
    return this.db.first<{ n: number }>('SELECT count(*) AS n FROM versions WHERE model_id = ? AND deleted_at IS NULL', [modelId])!.n;
  }

  /** Any version row with this string, live or deleted. */
  versionByString(modelId: number, version: string): VersionRow | undefined {
    return this.db.first<VersionRow>('SELECT * FROM versions WHERE model_id = ? AND version = ?', [modelId, version]);
  }

  liveVersionByDigest(modelId: number, digest: string): VersionRow | undefined {
    return this.db.first<VersionRow>(
      'SELECT * FROM versions WHERE model_id = ? AND digest = ? AND deleted_at IS NULL ORDER BY number DESC LIMIT 1',
      [modelId, digest],
    );
  }

  latestVersion(modelId: number): VersionRow | undefined {
    return this.db.first<VersionRow>(
      'SELECT * FROM versions WHERE model_id = ? AND deleted_at IS NULL ORDER BY number DESC LIMIT 1',
      [modelId],
    );
  }

  versionById(id: number): VersionRow | undefined {
    return this.db.first<VersionRow>('SELECT * FROM versions WHERE id = ?', [id]);
  }

  /** Live versions, newest first, with numbers below `beforeNumber`. */
  listVersions(modelId: number, options: { beforeNumber?: number; limit: number }): VersionRow[] {
    return this.db.all<VersionRow>(
      `SELECT * FROM versions WHERE model_id = ? AND deleted_at IS NULL AND number < ?
        ORDER BY number DESC LIMIT ?`,
      [modelId, options.beforeNumber ?? Number.MAX_SAFE_INTEGER, options.limit],
    );
  }

  insertVersion(row: Omit<VersionRow, 'id' | 'deleted_at' | 'deleted_by'>): number {
    const result = this.db.run(
      `INSERT INTO versions (model_id, version, number, digest, size, created_at, created_by, message, metadata, framework, safety, summary)
       VALUES (@model_id, @version, @number, @digest, @size, @created_at, @created_by, @message, @metadata, @framework, @safety, @summary)`,
      row,
    );
    return Number(result.lastInsertRowid);
  }

  insertFile(versionId: number, file: FileRow): void {
    this.db.run('INSERT INTO version_files (version_id, path, blob_digest, size, format, analysis) VALUES (?, ?, ?, ?, ?, ?)', [
      versionId,
      file.path,
      file.blob_digest,
      file.size,
      file.format,
      file.analysis,
    ]);
  }

  files(versionId: number): FileRow[] {
    return this.db.all<FileRow>('SELECT path, blob_digest, size, format, analysis FROM version_files WHERE version_id = ? ORDER BY path', [versionId]);
  }

  file(versionId: number, path: string): FileRow | undefined {
    return this.db.first<FileRow>('SELECT path, blob_digest, size, format, analysis FROM version_files WHERE version_id = ? AND path = ?', [
      versionId,
      path,
    ]);
  }

  markDeleted(versionId: number, now: string, actor: string): void {
    this.db.run('UPDATE versions SET deleted_at = ?, deleted_by = ? WHERE id = ?', [now, actor, versionId]);
  }

  aliasTarget(modelId: number, alias: string): VersionRow | undefined {
    return this.db.first<VersionRow>(
      'SELECT v.* FROM aliases a JOIN versions v ON v.id = a.version_id WHERE a.model_id = ? AND a.alias = ?',
      [modelId, alias],
    );
  }

  aliasesOfModel(modelId: number): Array<{ alias: string; version: string }> {
    return this.db.all(
      'SELECT a.alias, v.version FROM aliases a JOIN versions v ON v.id = a.version_id WHERE a.model_id = ? ORDER BY a.alias',
      [modelId],
    );
  }

  aliasesOfVersion(versionId: number): string[] {
    return this.db.all<{ alias: string }>('SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias', [versionId]).map((r) => r.alias);
  }

  setAlias(modelId: number, alias: string, versionId: number, now: string, actor: string): void {
    this.db.run(
      `INSERT INTO aliases (model_id, alias, version_id, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [modelId, alias, versionId, now, actor],
    );
  }

  deleteAlias(modelId: number, alias: string): boolean {
    return this.db.run('DELETE FROM aliases WHERE model_id = ? AND alias = ?', [modelId, alias]).changes > 0;
  }
}
