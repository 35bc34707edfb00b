// Queries for version parents (lineage edges, across models).
import type { Database } from './db.ts';

export interface ParentEdgeRow {
  child_id: number;
  parent_id: number;
  relation: string;
  recipe: string;
}

export interface VersionNodeRow {
  id: number;
  name: string;
  version: string;
  number: number;
  digest: string;
  deleted_at: string | null;
}

export class LineageQueries {
  constructor(private readonly db: Database) {}

  addParent(versionId: number, seq: number, parentId: number, relation: string, recipe: unknown): void {
    this.db.run('INSERT INTO version_parents (version_id, seq, parent_version_id, relation, recipe) VALUES (?, ?, ?, ?, ?)', [
      versionId,
      seq,
      parentId,
      relation,
      JSON.stringify(recipe ?? null),
    ]);
  }

  parentsOf(versionId: number): ParentEdgeRow[] {
    return this.db.all<ParentEdgeRow>(
      `SELECT version_id AS child_id, parent_version_id AS parent_id, relation, recipe
         FROM version_parents WHERE version_id = ? ORDER BY seq`,
      [versionId],
    );
  }

  childrenOf(versionId: number): ParentEdgeRow[] {
    return this.db.all<ParentEdgeRow>(
      `SELECT version_id AS child_id, parent_version_id AS parent_id, relation, recipe
         FROM version_parents WHERE parent_version_id = ? ORDER BY version_id, seq`,
      [versionId],
    );
  }

  node(versionId: number): VersionNodeRow | undefined {
    return this.db.first<VersionNodeRow>(
      `SELECT v.id, m.name, v.version, v.number, v.digest, v.deleted_at
         FROM versions v JOIN models m ON m.id = v.model_id WHERE v.id = ?`,
      [versionId],
    );
  }
}
