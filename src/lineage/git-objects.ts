// Git's object format, computed in memory: an object's id is the sha1 of
// "<type> <size>\0" + its content, so the lineage's commit ids are known the
// moment an event is recorded, before (and without) anything is written.
import { createHash } from 'node:crypto';

export type ObjectType = 'commit' | 'tree' | 'blob';

export interface GitObject {
  type: ObjectType;
  oid: string;
  content: Buffer;
  /**
   * Trees only: the directory this is a version of (the same key for each
   * of its versions), so that a pack can store it as a delta against the
   * previous one — a directory's versions differ by an entry or two.
   */
  deltaKey?: object;
}

/** The id of the tree with no entries. */
export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

export function objectId(type: ObjectType, content: Buffer): string {
  return createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');
}

export interface CommitFields {
  tree: string;
  parent: string | null;
  /** author and committer */
  name: string;
  email: string;
  /** seconds since the epoch, UTC (+0000) */
  seconds: number;
  message: string;
}

/**
 * A commit's bytes exactly as isomorphic-git's writeCommit renders them (the
 * writer of every repository before this one): rebuilding an old repository
 * gives its commit ids back. Its message normalization: no carriage returns,
 * no leading newlines, one final newline.
 */
export function commitContent(c: CommitFields): Buffer {
  const message = `${c.message.replace(/\r/g, '').replace(/^\n+/, '').replace(/\n+$/, '')}\n`;
  const who = `${c.name} <${c.email}> ${c.seconds} +0000`;
  return Buffer.from(`tree ${c.tree}\n${c.parent ? `parent ${c.parent}\n` : ''}author ${who}\ncommitter ${who}\n\n${message}`, 'utf8');
}

/** One entry of a tree object: `<mode> <name>\0<20-byte id>` (trees have mode 40000, files 100644). */
export function treeEntry(kind: 'tree' | 'blob', name: string, oid: string): Buffer {
  const head = Buffer.from(`${kind === 'tree' ? '40000' : '100644'} ${name}\0`, 'utf8');
  const entry = Buffer.allocUnsafe(head.length + 20);
  head.copy(entry);
  entry.write(oid, head.length, 'hex');
  return entry;
}
