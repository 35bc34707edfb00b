// The lineage repository's history as pure, synchronous state: the head
// commit and the head's tree, with every tree's id cached. Appending an event
// sets or removes the files it names, rehashes only the trees on those paths
// (siblings keep their cached ids) and returns the event's commit id — cheap
// enough to run inside the SQLite transaction that records the event. The git
// writer runs its own chain over the same events and gets the same objects,
// which it writes (a `sink` receives every new object).
import { commitContent, EMPTY_TREE, type GitObject, objectId, treeEntry } from './git-objects.ts';

const TRAILER = 'Cairn-Event';

/** What of an event goes into its commit (an events row has all of it). */
export interface ChainEvent {
  id: number;
  actor: string;
  /** ISO 8601; git keeps whole seconds */
  time: string;
  subject: string;
  message: string;
  /** `{ "<path>": "<content>" | null }`, as JSON or parsed */
  changes: string | Record<string, string | null>;
}

export type ObjectSink = (object: GitObject) => void;

export function commitMessage(event: Pick<ChainEvent, 'id' | 'subject' | 'message'>): string {
  const body = event.message.trim();
  return `${event.subject}\n\n${body ? `${body}\n\n` : ''}${TRAILER}: ${event.id}\n`;
}

interface FileEntry {
  name: string;
  /** what git sorts a tree's entries by */
  key: string;
  blob: string;
  line: Buffer;
  dir?: undefined;
}

interface DirEntry {
  name: string;
  key: string;
  dir: TreeDir;
  /** the entry's bytes for the subtree id `lineOid` */
  line?: Buffer;
  lineOid?: string;
}

type Entry = FileEntry | DirEntry;

/** Git's order: bytes of the UTF-8 names, a directory's name taken with a trailing '/'. */
function compareKeys(a: string, b: string): number {
  // UTF-16 order is code point (= UTF-8 byte) order except across surrogates
  if (/[\ud800-\udfff]/.test(a) || /[\ud800-\udfff]/.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

class TreeDir {
  private readonly byName = new Map<string, Entry>();
  /** by key */
  readonly sorted: Entry[] = [];
  /** null: changed since last hashed */
  oid: string | null = null;

  get size(): number {
    return this.sorted.length;
  }

  get(name: string): Entry | undefined {
    return this.byName.get(name);
  }

  /** Sets an entry; returns the one it replaces. */
  put(entry: Entry): Entry | undefined {
    const previous = this.byName.get(entry.name);
    this.oid = null;
    if (previous === entry) return previous;
    if (previous && previous.key !== entry.key) this.sorted.splice(this.indexOf(previous.key), 1);
    this.byName.set(entry.name, entry);
    const at = this.lowerBound(entry.key);
    if (this.sorted[at]?.key === entry.key) this.sorted[at] = entry;
    else this.sorted.splice(at, 0, entry);
    return previous;
  }

  remove(name: string): Entry | undefined {
    const previous = this.byName.get(name);
    if (!previous) return undefined;
    this.oid = null;
    this.byName.delete(name);
    this.sorted.splice(this.indexOf(previous.key), 1);
    return previous;
  }

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.sorted[mid]!.key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOf(key: string): number {
    const at = this.lowerBound(key);
    if (this.sorted[at]?.key !== key) throw new Error(`lineage tree index broken at ${key}`);
    return at;
  }

  clone(): TreeDir {
    const copy = new TreeDir();
    for (const e of this.sorted) copy.put(e.dir ? { name: e.name, key: e.key, dir: e.dir.clone() } : e);
    copy.oid = this.oid;
    return copy;
  }
}

function fileEntry(name: string, blob: string): FileEntry {
  return { name, key: name, blob, line: treeEntry('blob', name, blob) };
}

function dirEntry(name: string, dir: TreeDir): DirEntry {
  return { name, key: `${name}/`, dir };
}

/** The tree's id, hashing (and handing to `sink`) every tree changed since it was last hashed. */
function hashDir(dir: TreeDir, sink: ObjectSink | undefined): string {
  if (dir.oid !== null) return dir.oid;
  const parts = new Array<Buffer>(dir.sorted.length);
  dir.sorted.forEach((e, i) => {
    if (e.dir) {
      const oid = hashDir(e.dir, sink);
      if (e.lineOid !== oid) {
        e.line = treeEntry('tree', e.name, oid);
        e.lineOid = oid;
      }
      parts[i] = e.line!;
    } else {
      parts[i] = e.line;
    }
  });
  const content = Buffer.concat(parts);
  const oid = objectId('tree', content);
  sink?.({ type: 'tree', oid, content, deltaKey: dir });
  dir.oid = oid;
  return oid;
}

interface JournalEntry {
  dir: TreeDir;
  name: string;
  previous: Entry | undefined;
}

/** A position to roll back to (see CommitChain.begin). */
export interface Checkpoint {
  journal: number;
  head: string | null;
  lastEventId: number;
}

/** One entry of a tree as read from git (TreeLoader). */
export interface LoadedEntry {
  name: string;
  type: 'tree' | 'blob';
  oid: string;
}
export type TreeLoader = (oid: string) => Promise<LoadedEntry[]>;

export class CommitChain {
  /** the last event's commit (null: no event yet) */
  head: string | null;
  /** the last event appended (0: none) */
  lastEventId: number;
  private readonly root: TreeDir;
  private readonly journal: JournalEntry[] = [];
  private depth = 0;

  private constructor(head: string | null, lastEventId: number, root: TreeDir) {
    this.head = head;
    this.lastEventId = lastEventId;
    this.root = root;
  }

  static empty(): CommitChain {
    return new CommitChain(null, 0, new TreeDir());
  }

  /**
   * The chain at `head` (the commit of event `lastEventId`) whose tree is
   * `tree`, read through `load`. Our own serialization of what was read must
   * give `tree` back: anything git holds that this chain would not write the
   * same way (another mode, another order) is refused here, not discovered
   * later as commit ids that differ.
   */
  static async load(head: string, lastEventId: number, tree: string, load: TreeLoader): Promise<CommitChain> {
    const read = async (oid: string): Promise<TreeDir> => {
      const dir = new TreeDir();
      for (const e of await load(oid)) dir.put(e.type === 'tree' ? dirEntry(e.name, await read(e.oid)) : fileEntry(e.name, e.oid));
      return dir;
    };
    const root = await read(tree);
    const rehashed = hashDir(root, undefined);
    if (rehashed !== tree) throw new Error(`the lineage tree ${tree} of ${head} reads back as ${rehashed}: not a tree this writer makes`);
    return new CommitChain(head, lastEventId, root);
  }

  clone(): CommitChain {
    if (this.depth > 0) throw new Error('a commit chain is cloned only outside a transaction');
    return new CommitChain(this.head, this.lastEventId, this.root.clone());
  }

  /**
   * Appends one event: its files set or removed, its commit made on the head.
   * Returns the commit id; `sink` gets the event's new blobs, trees and commit.
   */
  append(event: ChainEvent, sink?: ObjectSink): string {
    if (event.id <= this.lastEventId) throw new Error(`event ${event.id} appended after event ${this.lastEventId}`);
    const changes = typeof event.changes === 'string' ? (JSON.parse(event.changes) as Record<string, string | null>) : event.changes;
    // in path order, as the first writer applied them (it matters only if one path is a prefix of another)
    for (const [file, text] of Object.entries(changes).sort(([a], [b]) => (a < b ? -1 : 1))) {
      let blob: string | null = null;
      if (text !== null) {
        const content = Buffer.from(text, 'utf8');
        blob = objectId('blob', content);
        sink?.({ type: 'blob', oid: blob, content });
      }
      this.set(this.root, file.split('/'), 0, blob);
    }
    const tree = hashDir(this.root, sink);
    if (tree === EMPTY_TREE && sink) sink({ type: 'tree', oid: EMPTY_TREE, content: Buffer.alloc(0) });
    const content = commitContent({
      tree,
      parent: this.head,
      name: event.actor,
      email: `${event.actor}@cairn`,
      seconds: Math.floor(Date.parse(event.time) / 1000),
      message: commitMessage(event),
    });
    const commit = objectId('commit', content);
    sink?.({ type: 'commit', oid: commit, content });
    this.head = commit;
    this.lastEventId = event.id;
    return commit;
  }

  /**
   * Sets `segments[i..]` under `dir` to `blob` (null: removes it), as the
   * first writer did: a file standing where a directory is needed is
   * replaced by one, and a directory left empty disappears.
   */
  private set(dir: TreeDir, segments: string[], i: number, blob: string | null): void {
    const name = segments[i]!;
    if (i === segments.length - 1) {
      if (blob !== null) this.logged(dir, name, dir.put(fileEntry(name, blob)));
      else if (dir.get(name)) this.logged(dir, name, dir.remove(name));
      return;
    }
    const current = dir.get(name);
    const sub = current?.dir ?? new TreeDir();
    this.set(sub, segments, i + 1, blob);
    if (sub.size > 0) this.logged(dir, name, dir.put(current?.dir ? current : dirEntry(name, sub)));
    else if (current) this.logged(dir, name, dir.remove(name));
  }

  private logged(dir: TreeDir, name: string, previous: Entry | undefined): void {
    if (this.depth > 0) this.journal.push({ dir, name, previous });
  }

  /** Starts a span that `rollback` can undo (nested spans allowed); `end` closes it. */
  begin(): Checkpoint {
    this.depth += 1;
    return { journal: this.journal.length, head: this.head, lastEventId: this.lastEventId };
  }

  end(): void {
    this.depth -= 1;
    if (this.depth === 0) this.journal.length = 0;
  }

  /** Undoes every append since `checkpoint` (its transaction rolled back) and closes the span. */
  rollback(checkpoint: Checkpoint): void {
    while (this.journal.length > checkpoint.journal) {
      const { dir, name, previous } = this.journal.pop()!;
      if (previous) dir.put(previous);
      else dir.remove(name);
    }
    this.head = checkpoint.head;
    this.lastEventId = checkpoint.lastEventId;
    this.end();
  }
}
