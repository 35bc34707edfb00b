// Lineage: the graph of a version's ancestors and descendants across models,
// and the lineage repository itself, served read-only over git's smart HTTP.
import path from 'node:path';
import { type Caller, mayRead } from '../access.ts';
import type { LineageGraph } from '../api/index.ts';
import { type GitHttpRequest, serveGitHttp } from '../lineage/git-http-backend.ts';
import type { Catalog } from './catalog.ts';

export class Lineage {
  constructor(
    private readonly catalog: Catalog,
    /** the bare lineage repository */
    private readonly gitdir: string,
  ) {}

  /**
   * Ancestors and descendants of a version, across models — those the caller
   * may read: a version of another model is left out with its edges (and
   * their recipes), and the walk does not go on through it.
   */
  graph(name: string, ref: string, caller: Caller): LineageGraph {
    const { catalog } = this;
    const model = catalog.requireModel(name);
    const start = catalog.resolve(model, ref);
    const nodes = new Map<number, LineageGraph['nodes'][number]>();
    const edges: LineageGraph['edges'] = [];
    const key = (n: { name: string; version: string }) => `${n.name}@${n.version}`;
    /** false for a version the caller may not read */
    const visit = (id: number) => {
      if (nodes.has(id)) return true;
      const node = catalog.lineage.node(id)!;
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
        const next = direction === 'up' ? catalog.lineage.parentsOf(id) : catalog.lineage.childrenOf(id);
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

  /** One request of git's smart HTTP protocol (read-only: pushes are refused); resolves when answered. */
  serveGit(request: GitHttpRequest): Promise<void> {
    return serveGitHttp(path.dirname(this.gitdir), path.basename(this.gitdir), request);
  }
}
