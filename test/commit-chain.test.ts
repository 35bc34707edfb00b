// CommitChain (src/lineage/commit-chain.ts) against the writer every lineage
// repository before it was made with: isomorphic-git's writeBlob/writeTree/
// writeCommit, driven the way src/lineage/git-mirror.ts did up to f74e57f
// (kept below as the reference). Same events, same commit ids — so
// `cairn lineage rebuild` of an old repository gives its ids back — on paths
// that test git's tree order (a, a-b, a.b, a/b: '-' and '.' sort before '/'),
// namespaced models beside flat ones, deletes that empty directories, a file
// replaced by a directory, and non-ASCII names.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import nodeFs from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import git from 'isomorphic-git';
import { type ChainEvent, CommitChain, commitMessage } from '../src/lineage/commit-chain.ts';
import { PackBuilder } from '../src/lineage/pack-file.ts';
import { prng } from './support/prng.ts';

interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

/** The old writer's apply(): one event as one commit on `parent`. */
async function referenceApply(gitdir: string, event: ChainEvent, parent: string | null): Promise<string> {
  const fs = nodeFs;
  const updateTree = async (tree: string | null, segments: string[], blob: string | null): Promise<string | null> => {
    const [name, ...rest] = segments as [string, ...string[]];
    const entries: TreeEntry[] = tree ? [...((await git.readTree({ fs, gitdir, oid: tree })).tree as TreeEntry[])] : [];
    const index = entries.findIndex((e) => e.path === name);
    const current = index >= 0 ? entries[index] : undefined;
    let replacement: TreeEntry | undefined;
    if (rest.length === 0) replacement = blob ? { mode: '100644', path: name, oid: blob, type: 'blob' } : undefined;
    else {
      const sub = await updateTree(current?.type === 'tree' ? current.oid : null, rest, blob);
      replacement = sub ? { mode: '040000', path: name, oid: sub, type: 'tree' } : undefined;
    }
    if (replacement && current && replacement.oid === current.oid && replacement.mode === current.mode) return tree;
    if (index >= 0) entries.splice(index, 1);
    if (replacement) entries.push(replacement);
    if (entries.length === 0) return null;
    return git.writeTree({ fs, gitdir, tree: entries });
  };
  const changes = event.changes as Record<string, string | null>;
  let tree: string | null = parent ? (await git.readCommit({ fs, gitdir, oid: parent })).commit.tree : null;
  for (const [file, content] of Object.entries(changes).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const blob = content === null ? null : await git.writeBlob({ fs, gitdir, blob: Buffer.from(content, 'utf8') });
    tree = await updateTree(tree, file.split('/'), blob);
  }
  tree ??= await git.writeTree({ fs, gitdir, tree: [] });
  const who = { name: event.actor, email: `${event.actor}@cairn`, timestamp: Math.floor(Date.parse(event.time) / 1000), timezoneOffset: 0 };
  return git.writeCommit({ fs, gitdir, commit: { message: commitMessage(event), tree, parent: parent ? [parent] : [], author: who, committer: who } });
}

const NAMES = ['a', 'a-b', 'a.b', 'a/b', 'a/b-c', 'ab', 'acme/resnet', 'acme', 'zé', 'z/ü', 'Z'];

function events(count: number): ChainEvent[] {
  const random = prng(7);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const live = new Map<string, Set<string>>();
  const out: ChainEvent[] = [];
  for (let id = 1; id <= count; id++) {
    const name = pick(NAMES);
    const versions = live.get(name) ?? new Set<string>();
    live.set(name, versions);
    const changes: Record<string, string | null> = {};
    let subject: string;
    if (versions.size > 0 && random() < 0.3) {
      const v = pick([...versions]);
      versions.delete(v);
      changes[`models/${name}/versions/${v}.json`] = null;
      if (versions.size === 0) changes[`models/${name}/model.json`] = null;
      subject = `delete ${name}@${v}`;
    } else {
      const v = pick(['1', '1.0', '1-rc', '1+b', '2', 'v1.b', '10']);
      versions.add(v);
      changes[`models/${name}/versions/${v}.json`] = `{"version":"${v}","n":${id}}\n`;
      changes[`models/${name}/model.json`] = `{"name":"${name}","versions":${versions.size}}\n`;
      subject = `publish ${name}@${v}`;
    }
    out.push({ id, actor: pick(['alice', 'ci']), time: new Date(1_700_000_000_000 + id * 1500).toISOString(), subject, message: id % 5 === 0 ? `note ${id}\r\n\n` : '', changes });
  }
  return out;
}

test('CommitChain gives the commit ids the isomorphic-git writer gave; its packs (trees as deltas) pass git fsck --strict', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-commit-chain-'));
  try {
    await git.init({ fs: nodeFs, dir, gitdir: dir, bare: true, defaultBranch: 'main' });
    const chain = CommitChain.empty();
    let head: string | null = null;
    for (const event of events(300)) {
      head = await referenceApply(dir, event, head);
      assert.equal(chain.append(event), head, `event ${event.id}: ${event.subject}`);
    }
    await git.writeRef({ fs: nodeFs, gitdir: dir, ref: 'refs/heads/main', value: head!, force: true });
    await promisify(execFile)('git', ['--git-dir', dir, 'fsck', '--strict', '--no-dangling']);

    // the same events as the mirror writes them: a pack per batch, directories as deltas on their previous versions
    const packed = path.join(dir, 'packed.git');
    await git.init({ fs: nodeFs, dir: packed, gitdir: packed, bare: true, defaultBranch: 'main' });
    const writer = CommitChain.empty();
    const all = events(300);
    for (let i = 0; i < all.length; i += 120) {
      const pack = new PackBuilder();
      for (const event of all.slice(i, i + 120)) writer.append(event, pack.add);
      await pack.write(nodeFs, packed);
    }
    assert.equal(writer.head, head);
    await fs.writeFile(path.join(packed, 'refs', 'heads', 'main'), `${head}\n`);
    const sh = (...args: string[]) => promisify(execFile)('git', ['--git-dir', packed, ...args], { maxBuffer: 64 << 20 }).then((r) => r.stdout);
    await sh('fsck', '--strict', '--no-dangling', '--full');
    assert.equal((await sh('rev-list', '--count', 'main')).trim(), '300');
    let deltas = 0;
    for (const idx of (await fs.readdir(path.join(packed, 'objects', 'pack'))).filter((f) => f.endsWith('.idx'))) {
      const verified = await sh('verify-pack', '-v', path.join(packed, 'objects', 'pack', idx));
      deltas += verified.split('\n').filter((line) => /^[0-9a-f]{40} tree +\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(line)).length;
    }
    assert.ok(deltas > 300, `${deltas} trees stored as deltas`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a rolled back transaction takes its events back out of the chain', () => {
  const [one, two, three] = events(3) as [ChainEvent, ChainEvent, ChainEvent];
  const straight = CommitChain.empty();
  straight.append(one);
  const expected = straight.append({ ...three, id: 2 });
  const chain = CommitChain.empty();
  chain.append(one);
  const checkpoint = chain.begin();
  chain.append(two);
  chain.rollback(checkpoint);
  assert.equal(chain.lastEventId, 1);
  assert.equal(chain.append({ ...three, id: 2 }), expected);
});
