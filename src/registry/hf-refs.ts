// A model as a Hugging Face Hub repository sees it, read side: its refs
// (`main` is the latest version, aliases are branches, versions are tags) and
// its commit log, from the history index in SQLite. Commit ids are the
// lineage repository's, the ones X-Repo-Commit gives (Versions.commitsOf).
// Branches and tags are made and removed as aliases; a tag is an alias that
// never moves (README "With Hugging Face clients").
import type { Caller } from '../access.ts';
import { CairnError } from '../errors.ts';
import { checkAlias, LATEST, MAIN, parseLimit } from '../identifiers.ts';
import type { EventRow } from '../metadata/events.ts';
import type { ModelRow, VersionRow } from '../metadata/models.ts';
import type { Aliases } from './aliases.ts';
import type { Catalog } from './catalog.ts';
import type { Versions } from './versions.ts';

export interface HubRef {
  name: string;
  ref: string;
  targetCommit: string;
}

export interface HubRefs {
  branches: HubRef[];
  tags: HubRef[];
}

export interface HubCommit {
  id: string;
  title: string;
  message: string;
  authors: Array<{ user: string }>;
  date: string;
}

/** Versions listed per query while collecting every tag. */
const TAG_PAGE = 1000;

export class HubRepos {
  constructor(
    private readonly catalog: Catalog,
    private readonly versions: Versions,
    private readonly aliases: Aliases,
  ) {}

  /**
   * The version a commit to `branch` builds on: for `main` the latest
   * (undefined while the model has none), else the alias's. A version or a
   * commit is no branch: versions never change.
   */
  head(model: ModelRow, branch: string): VersionRow | undefined {
    const { models } = this.catalog;
    if (branch === MAIN || branch === LATEST) return models.latestVersion(model.id);
    const target = models.aliasTarget(model.id, branch);
    if (target && models.isFixedAlias(model.id, branch)) {
      throw new CairnError('INVALID_ARGUMENT', `${model.name}@${branch} is a tag (made by create_tag), which never moves: commit to main or to a branch`);
    }
    if (target) return target;
    if (models.versionByString(model.id, branch) || /^[0-9a-f]{40}$/.test(branch)) {
      throw new CairnError('INVALID_ARGUMENT', `${model.name}@${branch} is a version or a commit, which never changes: commit to main or to a branch (an alias)`);
    }
    throw new CairnError('ALIAS_NOT_FOUND', `${model.name} has no branch ${branch} (branches are main and the aliases)`);
  }

  /** Branches (`main`, then the aliases) and tags (the live versions, then the tags create_tag made), each with the publish commit of its version. */
  async refs(name: string): Promise<HubRefs> {
    const { models } = this.catalog;
    const model = this.catalog.requireModel(name);
    const latest = models.latestVersion(model.id);
    const aliases = models.aliasesOfModel(model.id).filter((a) => a.alias !== MAIN);
    const branches = aliases.filter((a) => a.fixed === 0);
    const fixed = aliases.filter((a) => a.fixed === 1);
    const versions: VersionRow[] = [];
    for (let page = models.listVersions(model.id, { limit: TAG_PAGE }); page.length > 0; page = models.listVersions(model.id, { beforeNumber: page[page.length - 1]!.number, limit: TAG_PAGE })) {
      versions.push(...page);
      if (page.length < TAG_PAGE) break;
    }
    const commits = await this.versions.commitsOf(name, [...new Set([...versions.map((v) => v.version), ...aliases.map((a) => a.version)])]);
    const branch = (branchName: string, version: string): HubRef => ({ name: branchName, ref: `refs/heads/${branchName}`, targetCommit: commits.get(version)! });
    const tag = (tagName: string, version: string): HubRef => ({ name: tagName, ref: `refs/tags/${tagName}`, targetCommit: commits.get(version)! });
    return {
      branches: [...(latest ? [branch(MAIN, latest.version)] : []), ...branches.map((a) => branch(a.alias, a.version))],
      tags: [...versions.map((v) => tag(v.version, v.version)), ...fixed.map((a) => tag(a.alias, a.version))],
    };
  }

  /**
   * The commits of a revision, newest first: the model's events up to the
   * one that published the revision's version (as `git log <commit> --
   * models/<name>` lists them), a page at a time.
   */
  async log(name: string, revision: string, query: { limit?: unknown; cursor?: unknown }, caller: Caller): Promise<{ commits: HubCommit[]; next_cursor: string | null }> {
    const { catalog } = this;
    const { version } = await this.versions.atRevision(name, revision, caller);
    const model = catalog.requireModel(name);
    const limit = parseLimit(query.limit);
    const list = `hf-commits:${model.id}`;
    const upTo = catalog.events.publishEventId(model.id, version.version)!;
    const beforeId = Math.min(catalog.cursors.decode<number>(list, query.cursor, 'number') ?? Number.MAX_SAFE_INTEGER, upTo + 1);
    // every event's commit id is recorded with it: nothing waits for the git mirror
    const rows = catalog.events.history(model.id, { beforeId, limit: limit + 1 });
    const { page, next_cursor } = catalog.cursors.page(list, rows, limit, (last) => last.id);
    return { commits: page.map(hubCommit), next_cursor };
  }

  /**
   * A new branch or tag: an alias on the version at `revision` (a commit id,
   * a version, an alias, `main`), never one that exists (ALIAS_EXISTS) — a
   * tag one that never moves. `main` exists always.
   */
  async createRef(name: string, kind: 'branch' | 'tag', ref: unknown, revision: string, actor: string, caller: Caller): Promise<{ alias: string; version: string }> {
    if (ref === MAIN) throw new CairnError('ALIAS_EXISTS', `${name} already has the branch main (its latest version)`);
    const alias = checkAlias(ref);
    const { version } = await this.versions.atRevision(name, revision, caller);
    this.aliases.set(name, alias, version.version, actor, { exclusive: true, fixed: kind === 'tag' });
    return { alias, version: version.version };
  }

  deleteRef(name: string, ref: string, actor: string): void {
    this.aliases.delete(name, ref, actor);
  }
}

/** An event as a Hub commit: its title is the first line of its message (a Hub commit's summary), else its subject. */
function hubCommit(e: EventRow): HubCommit {
  const message = e.message.trim();
  const newline = message.indexOf('\n');
  const title = message === '' ? e.subject : newline < 0 ? message : message.slice(0, newline);
  return {
    id: e.commit_id!,
    title,
    message: newline < 0 ? '' : message.slice(newline + 1).trim(),
    authors: [{ user: e.actor }],
    date: e.time,
  };
}
