// Models: one model with its aliases and latest version, the searchable list
// of those the caller may read, and a model's description and card.
import type { Caller } from '../access.ts';
import { MODEL_SORTS, type ModelDoc, type ModelList, type ModelSummary } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import { checkNamespace, MAIN, parseLimit, RESERVED_WORDS } from '../identifiers.ts';
import { modelPath, readmePath } from '../lineage/documents.ts';
import type { ModelSort, ModelSummaryRow } from '../metadata/models.ts';
import type { Catalog } from './catalog.ts';

const MAX_DESCRIPTION = 2048;
const MAX_README_BYTES = 256 * 1024;

export interface ModelQuery {
  q?: unknown;
  namespace?: unknown;
  limit?: unknown;
  cursor?: unknown;
  format?: unknown;
  framework?: unknown;
  unsafe?: unknown;
  sort?: unknown;
}

export class Models {
  constructor(private readonly catalog: Catalog) {}

  get(name: string): ModelDoc {
    const { catalog } = this;
    const model = catalog.requireModel(name);
    const latest = catalog.models.latestVersion(model.id);
    return {
      name: model.name,
      description: model.description,
      readme: model.readme,
      created_at: model.created_at,
      updated_at: model.updated_at,
      aliases: Object.fromEntries(catalog.models.aliasesOfModel(model.id).map((a) => [a.alias, a.version])),
      latest: latest ? catalog.summary(latest) : null,
      counts: { versions: catalog.models.countVersions(model.id) },
    };
  }

  /**
   * Data from before names were reserved, still served as it was: flat models
   * named with a reserved word, and aliases named `main` (which Hugging Face
   * clients get instead of the latest version). Logged at start.
   */
  legacyNames(): { reservedModelNames: string[]; modelsWithMainAlias: string[] } {
    return { reservedModelNames: this.catalog.models.existingModels([...RESERVED_WORDS]), modelsWithMainAlias: this.catalog.models.modelsWithAlias(MAIN) };
  }

  /** Only models the caller may read: they make the page and its cursor. */
  list(query: ModelQuery, caller: Caller): ModelList {
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
    let sort: ModelSort = 'name';
    if (query.sort !== undefined && query.sort !== '') {
      if (!(MODEL_SORTS as readonly unknown[]).includes(query.sort)) throw new CairnError('INVALID_ARGUMENT', `sort must be one of ${MODEL_SORTS.join(', ')}`);
      sort = query.sort as ModelSort;
    }
    const filter = {
      q,
      namespace: query.namespace === undefined || query.namespace === '' ? undefined : checkNamespace(query.namespace),
      format: text('format', query.format),
      framework: text('framework', query.framework),
      unsafe,
      patterns: caller.models,
    };
    // a cursor belongs to one order: the position is the last row's sort key
    const list = `models:${sort}`;
    const position = this.catalog.cursors.decode<string>(sort === 'name' ? 'models' : list, query.cursor, 'string');
    const after = position === undefined ? undefined : sort === 'name' ? { name: position } : afterUpdated(position);
    const rows = this.catalog.models.listModels({ ...filter, sort, after, limit: limit + 1 });
    const { page, next_cursor } = sort === 'name'
      ? this.catalog.cursors.page('models', rows, limit, (last) => last.name)
      : this.catalog.cursors.page(list, rows, limit, (last) => JSON.stringify([last.updated_at, last.name]));
    return { models: page.map(modelSummary), next_cursor, total: this.catalog.models.countModels(filter) };
  }

  /**
   * Sets a model's description and/or card (Markdown): one event, a commit
   * writing model.json and README.md in the lineage. Nothing changed: no event.
   */
  describe(name: string, patch: { description?: unknown; readme?: unknown }, actor: string): ModelDoc {
    const description = patch.description === undefined ? undefined : checkDescription(patch.description);
    const readme = patch.readme === undefined ? undefined : checkReadme(patch.readme);
    if (description === undefined && readme === undefined) throw new CairnError('INVALID_ARGUMENT', 'give a description, a readme, or both');
    const { catalog } = this;
    catalog.commit(() => {
      const model = catalog.requireModel(name);
      const next = { description: description ?? model.description, readme: readme ?? model.readme };
      if (next.description === model.description && next.readme === model.readme) return;
      const now = catalog.now().toISOString();
      catalog.models.describe(model.id, next, now);
      const updated = catalog.requireModel(name);
      const changes: Record<string, string | null> = { [modelPath(name)]: catalog.modelFile(updated) };
      if (next.readme !== model.readme) changes[readmePath(name)] = next.readme === '' ? null : next.readme;
      const what = [next.description !== model.description ? 'description' : '', next.readme !== model.readme ? 'model card' : ''].filter(Boolean).join(' and ');
      catalog.record(updated, { kind: 'describe', actor, time: now, subject: `describe ${name}`, message: `${what} updated`, changes });
    });
    return this.get(name);
  }
}

function modelSummary(m: ModelSummaryRow): ModelSummary {
  return {
    name: m.name,
    description: m.description,
    created_at: m.created_at,
    updated_at: m.updated_at,
    latest_version: m.latest_version,
    versions: m.version_count,
    production_version: m.production_version,
    latest:
      m.latest_version === null
        ? null
        : { formats: JSON.parse(m.latest_formats ?? '[]') as string[], framework: m.latest_framework, size: m.latest_size ?? 0, safety: (m.latest_safety ?? 'unknown') as 'safe' | 'unsafe' | 'unknown' },
    unsafe: m.has_unsafe === 1,
  };
}

function afterUpdated(position: string): { name: string; updated_at: string } {
  const [updated_at, name] = JSON.parse(position) as [string, string];
  return { name, updated_at };
}

function checkDescription(value: unknown): string {
  if (typeof value !== 'string') throw new CairnError('INVALID_ARGUMENT', 'description must be a string');
  const text = value.trim();
  if (text.length > MAX_DESCRIPTION) throw new CairnError('INVALID_ARGUMENT', `description is longer than ${MAX_DESCRIPTION} characters (put the rest in the readme)`);
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(text)) throw new CairnError('INVALID_ARGUMENT', 'description must not hold control characters');
  return text;
}

function checkReadme(value: unknown): string {
  if (typeof value !== 'string') throw new CairnError('INVALID_ARGUMENT', 'readme must be a string (Markdown)');
  if (Buffer.byteLength(value) > MAX_README_BYTES) throw new CairnError('INVALID_ARGUMENT', `readme is longer than ${MAX_README_BYTES} bytes`, { max_bytes: MAX_README_BYTES });
  if (value.includes('\0')) throw new CairnError('INVALID_ARGUMENT', 'readme must not hold NUL characters');
  return value;
}
