// Reading models: one model with its aliases and latest version, and the
// searchable list of those the caller may read.
import type { Caller } from '../access.ts';
import type { ModelDoc, ModelList } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import { checkNamespace, MAIN, parseLimit, RESERVED_WORDS } from '../identifiers.ts';
import type { Catalog } from './catalog.ts';

export interface ModelQuery {
  q?: unknown;
  namespace?: unknown;
  limit?: unknown;
  cursor?: unknown;
  format?: unknown;
  framework?: unknown;
  unsafe?: unknown;
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
    const rows = this.catalog.models.listModels({
      q,
      afterName: this.catalog.cursors.decode<string>('models', query.cursor, 'string'),
      namespace: query.namespace === undefined || query.namespace === '' ? undefined : checkNamespace(query.namespace),
      limit: limit + 1,
      format: text('format', query.format),
      framework: text('framework', query.framework),
      unsafe,
      patterns: caller.models,
    });
    const page = rows.slice(0, limit);
    return {
      models: page.map((m) => ({
        name: m.name,
        description: m.description,
        created_at: m.created_at,
        updated_at: m.updated_at,
        latest_version: m.latest_version,
        versions: m.version_count,
      })),
      next_cursor: rows.length > limit ? this.catalog.cursors.encode('models', page[page.length - 1]!.name) : null,
    };
  }
}
