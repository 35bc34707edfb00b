// Aliases: movable pointers to one version of a model (`latest` is automatic).
import type { AliasSet } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import { checkAlias, checkAliasName, checkVersion } from '../identifiers.ts';
import { modelPath } from '../lineage/documents.ts';
import type { Catalog } from './catalog.ts';

export class Aliases {
  constructor(private readonly catalog: Catalog) {}

  /**
   * Sets or moves an alias (`exclusive`: only sets a new one, ALIAS_EXISTS
   * otherwise; `fixed`: a tag, which nothing moves); an event only when it
   * points somewhere new. A tag is never moved: ALIAS_EXISTS.
   */
  set(name: string, alias: unknown, version: unknown, actor: string, options: { exclusive?: boolean; fixed?: boolean } = {}): AliasSet {
    const a = checkAlias(alias);
    const v = checkVersion(version);
    const { catalog } = this;
    return catalog.commit(() => {
      const model = catalog.requireModel(name);
      const target = catalog.models.versionByString(model.id, v);
      if (!target || target.deleted_at) throw new CairnError('VERSION_NOT_FOUND', `${name}@${v} does not exist`);
      if (catalog.models.versionByString(model.id, a)) {
        throw new CairnError('INVALID_ALIAS', `alias ${a} would be shadowed by the version of the same name`);
      }
      const previous = catalog.models.aliasTarget(model.id, a);
      if (previous && options.exclusive) throw new CairnError('ALIAS_EXISTS', `${name} already has an alias ${a} (on ${previous.version})`);
      const now = catalog.now().toISOString();
      if (!catalog.models.setAlias(model.id, a, target.id, now, actor, options.fixed)) throw fixedAlias(name, a, previous!.version);
      catalog.models.touchModel(model.id, now);
      if (previous?.id !== target.id) {
        catalog.record(model, {
          kind: 'alias',
          version: v,
          alias: a,
          actor,
          time: now,
          subject: `alias ${name}@${a} -> ${v}`,
          changes: { [modelPath(name)]: catalog.modelFile(model) },
        });
      }
      return { alias: a, version: v, previous: previous?.version ?? null };
    });
  }

  delete(name: string, alias: unknown, actor: string): void {
    // one named `main`, set before that name was reserved, can be removed
    const a = checkAliasName(alias);
    const { catalog } = this;
    catalog.commit(() => {
      const model = catalog.requireModel(name);
      const target = catalog.models.aliasTarget(model.id, a);
      if (!target || !catalog.models.deleteAlias(model.id, a)) throw new CairnError('ALIAS_NOT_FOUND', `${name} has no alias ${a}`);
      const now = catalog.now().toISOString();
      catalog.models.touchModel(model.id, now);
      catalog.record(model, {
        kind: 'unalias',
        version: target.version,
        alias: a,
        actor,
        time: now,
        subject: `unalias ${name}@${a}`,
        changes: { [modelPath(name)]: catalog.modelFile(model) },
      });
    });
  }
}

/** A tag (an alias made by create_tag) asked to move. */
export function fixedAlias(name: string, alias: string, version: string): CairnError {
  return new CairnError('ALIAS_EXISTS', `${name}@${alias} is a tag on ${version}, which never moves (delete it to set it again)`);
}
