// Lineage end to end: every change a commit in a bare repository, cloned with
// the real git client over smart HTTP; history from SQLite carries the commit
// ids; rebuild reproduces them; a failing git writer never fails a publish.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import nodeFs from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { rebuildRepository } from '../src/lineage/git-mirror.ts';
import { createLogger } from '../src/log.ts';
import { EventQueries } from '../src/metadata/events.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';

const run = promisify(execFile);

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  return stdout;
}

async function publish(url: string, name: string, version: string, files: Record<string, string>, fields: Record<string, string | string[]> = {}) {
  const form = new FormData();
  form.append('version', version);
  for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) form.append(k, one);
  for (const [p, content] of Object.entries(files)) form.append('file', new Blob([content]), p);
  const res = await fetch(`${url}/v1/models/${name}/versions`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json().catch(() => null) };
}

const putAlias = (url: string, name: string, alias: string, version: string) =>
  json(`${url}/v1/models/${name}/aliases/${alias}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });

describe('lineage mirror', () => {
  let server: TestServer;
  let work: string;

  before(async () => {
    server = await startTestServer('fs');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-lineage-'));
    const u = server.url;
    assert.equal((await publish(u, 'base', '1.0.0', { 'model.bin': 'base weights v1' }, { message: 'first base' })).status, 201);
    assert.equal((await publish(u, 'base', '1.1.0', { 'model.bin': 'base weights v2' })).status, 201);
    const derived = await publish(u, 'base-int8', '1.0.0', { 'model.bin': 'int8 weights' }, {
      parent: 'base@1.0.0',
      relation: 'quantized-from',
      recipe: JSON.stringify({ method: 'gptq', bits: 8, metrics: { before: { acc: 0.91 }, after: { acc: 0.9 } } }),
    });
    assert.equal(derived.status, 201, JSON.stringify(derived.body));
    const tuned = await json(`${u}/v1/models/base-int8-chat/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        version: '0.1',
        files: [{ path: 'model.bin', digest: derived.body.files[0].digest }],
        parents: [{ ref: 'base-int8@1.0.0', relation: 'fine-tuned-from', recipe: { dataset: 'sha256:' + 'a'.repeat(64) } }],
      }),
    });
    assert.equal(tuned.status, 201, JSON.stringify(tuned.body));
    assert.equal((await putAlias(u, 'base', 'production', '1.0.0')).status, 200);
    assert.equal((await putAlias(u, 'base', 'production', '1.1.0')).status, 200);
    assert.equal((await fetch(`${u}/v1/models/base/aliases/production`, { method: 'DELETE' })).status, 204);
    assert.equal((await putAlias(u, 'base', 'production', '1.1.0')).status, 200);
    assert.equal((await publish(u, 'base', '2.0.0-rc1', { 'model.bin': 'rc' })).status, 201);
    assert.equal((await fetch(`${u}/v1/models/base/versions/2.0.0-rc1`, { method: 'DELETE' })).status, 204);
    await server.cairn.mirror.kick();
  });

  after(async () => {
    await server.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  test('a parent that does not exist is refused with 400', async () => {
    const r = await publish(server.url, 'orphan', '1.0', { a: 'x' }, { parent: 'nope@1.0', relation: 'fine-tuned-from' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_PARENT');
    const r2 = await publish(server.url, 'orphan', '1.0', { a: 'x' }, { parent: 'base@9.9', relation: 'fine-tuned-from' });
    assert.equal(r2.status, 400);
    const r3 = await publish(server.url, 'orphan', '1.0', { a: 'x' }, { parent: 'base@1.0.0', relation: 'copied-from' });
    assert.equal(r3.status, 400);
    assert.equal((await fetch(`${server.url}/v1/models/orphan/versions/1.0`)).status, 404);
  });

  test('the version document names its parents with relation and recipe', async () => {
    const { body } = await json(`${server.url}/v1/models/base-int8/versions/1.0.0`);
    assert.equal(body.parents.length, 1);
    assert.equal(body.parents[0].name, 'base');
    assert.equal(body.parents[0].version, '1.0.0');
    assert.equal(body.parents[0].relation, 'quantized-from');
    assert.equal(body.parents[0].recipe.bits, 8);
    assert.match(body.parents[0].digest, /^sha256:[0-9a-f]{64}$/);
  });

  test('the lineage graph reaches ancestors and descendants across models', async () => {
    const { status, body } = await json(`${server.url}/v1/models/base-int8/versions/1.0.0/lineage`);
    assert.equal(status, 200);
    const nodes = body.nodes.map((n: any) => `${n.name}@${n.version}`).sort();
    assert.deepEqual(nodes, ['base-int8-chat@0.1', 'base-int8@1.0.0', 'base@1.0.0']);
    const edges = body.edges.map((e: any) => `${e.from} ${e.relation} ${e.to}`).sort();
    assert.deepEqual(edges, ['base-int8-chat@0.1 fine-tuned-from base-int8@1.0.0', 'base-int8@1.0.0 quantized-from base@1.0.0']);
    const fromRoot = await json(`${server.url}/v1/models/base/versions/1.0.0/lineage`);
    assert.equal(fromRoot.body.nodes.length, 3, 'descendants two levels down');
    const unrelated = await json(`${server.url}/v1/models/base/versions/1.1.0/lineage`);
    assert.deepEqual(unrelated.body.edges, []);
  });

  test('history comes newest first, paginated, each entry with its commit id', async () => {
    const first = await json(`${server.url}/v1/models/base/history?limit=3`);
    assert.equal(first.status, 200);
    assert.equal(first.body.events.length, 3);
    assert.ok(first.body.next_cursor);
    const rest = await json(`${server.url}/v1/models/base/history?limit=100&cursor=${first.body.next_cursor}`);
    const all = [...first.body.events, ...rest.body.events];
    assert.deepEqual(
      all.map((e: any) => e.subject),
      [
        'delete base@2.0.0-rc1',
        'publish base@2.0.0-rc1',
        'alias base@production -> 1.1.0',
        'unalias base@production',
        'alias base@production -> 1.1.0',
        'alias base@production -> 1.0.0',
        'publish base@1.1.0',
        'publish base@1.0.0',
      ],
    );
    for (const e of all) assert.match(e.commit, /^[0-9a-f]{40}$/);
    assert.equal(all.at(-1).message, 'first base');
    assert.equal(all.at(-1).author, 'anonymous');
  });

  test('git clone over HTTP tells the story of each model', async () => {
    const clone = path.join(work, 'clone');
    await run('git', ['clone', '-q', `${server.url}/git/lineage.git`, clone]);
    const log = (await git(clone, 'log', '--format=%s', '--', 'models/base')).trim().split('\n');
    assert.equal(log[0], 'delete base@2.0.0-rc1');
    assert.equal(log.at(-1), 'publish base@1.0.0');
    assert.equal(log.length, 8);
    const shown = await git(clone, 'show', '--stat', '--format=%an|%s|%b', 'base@1.1.0');
    assert.match(shown, /anonymous\|publish base@1\.1\.0\|Cairn-Event: \d+/);
    assert.match(shown, /models\/base\/versions\/1\.1\.0\.json/);
    const manifest = JSON.parse(await git(clone, 'show', 'HEAD:models/base-int8/versions/1.0.0.json'));
    assert.equal(manifest.parents[0].relation, 'quantized-from');
    assert.equal(manifest.files[0].path, 'model.bin');
    const model = JSON.parse(await git(clone, 'show', 'HEAD:models/base/model.json'));
    assert.deepEqual(model.aliases, { production: '1.1.0' });
    // the deleted version is gone from the tree, still in history
    await assert.rejects(git(clone, 'show', 'HEAD:models/base/versions/2.0.0-rc1.json'));
    assert.ok((await git(clone, 'show', 'base@2.0.0-rc1:models/base/versions/2.0.0-rc1.json')).includes('2.0.0-rc1'));
    // every history commit id is in the clone
    const { body } = await json(`${server.url}/v1/models/base/history?limit=100`);
    for (const e of body.events) await git(clone, 'cat-file', '-e', `${e.commit}^{commit}`);
    // dates are the event times
    const date = (await git(clone, 'log', '-1', '--format=%aI', 'base@1.0.0')).trim();
    assert.equal(new Date(date).getTime(), Math.floor(Date.parse(body.events.at(-1).time) / 1000) * 1000);
  });

  test('pushes are refused', async () => {
    const clone = path.join(work, 'push');
    await run('git', ['clone', '-q', `${server.url}/git/lineage.git`, clone]);
    await fs.writeFile(path.join(clone, 'x'), 'x');
    await git(clone, 'add', 'x');
    await git(clone, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x');
    await assert.rejects(git(clone, 'push', 'origin', 'HEAD:refs/heads/main'));
    const res = await fetch(`${server.url}/git/lineage.git/info/refs?service=git-receive-pack`);
    assert.equal(res.status, 403);
  });

  test('cairn log prints the history with commit ids', async () => {
    const { stdout } = await run(process.execPath, [cairnBin(), 'log', 'base', '--json'], { env: { ...process.env, CAIRN_URL: server.url } });
    const doc = JSON.parse(stdout);
    assert.equal(doc.events.length, 8);
    assert.equal(doc.events[0].subject, 'delete base@2.0.0-rc1');
    const text = (await run(process.execPath, [cairnBin(), 'log', 'base'], { env: { ...process.env, CAIRN_URL: server.url } })).stdout;
    assert.match(text, new RegExp(`^${doc.events[0].commit.slice(0, 12)}  delete base@2\\.0\\.0-rc1`, 'm'));
  });

  test('rebuild from SQLite alone produces the same commit ids', async () => {
    const head = (await git(server.cairn.mirror.gitdir, 'rev-parse', 'refs/heads/main')).trim();
    const tags = await git(server.cairn.mirror.gitdir, 'show-ref', '--tags');
    const result = await rebuildRepository({ gitdir: server.cairn.mirror.gitdir, events: new EventQueries(server.cairn.db), log: createLogger({ silent: true }) });
    assert.equal(result.mismatched, 0);
    assert.equal(result.head, head);
    assert.equal((await git(server.cairn.mirror.gitdir, 'rev-parse', 'refs/heads/main')).trim(), head);
    assert.equal(await git(server.cairn.mirror.gitdir, 'show-ref', '--tags'), tags);
    await git(server.cairn.mirror.gitdir, 'fsck', '--strict');
  });
});

describe('lineage of namespaced models', () => {
  let server: TestServer;
  let work: string;

  before(async () => {
    server = await startTestServer('fs');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-lineage-ns-'));
    const u = server.url;
    assert.equal((await publish(u, 'acme', '1.0', { 'model.bin': 'flat acme' })).status, 201);
    assert.equal((await publish(u, 'acme/resnet', '1.0.0', { 'model.bin': 'resnet v1', 'conf/a.json': '{}' }, { message: 'first resnet' })).status, 201);
    assert.equal((await publish(u, 'acme/resnet', '1.1.0', { 'model.bin': 'resnet v2' }, { parent: 'acme@1.0' })).status, 201);
    assert.equal((await putAlias(u, 'acme/resnet', 'production', '1.1.0')).status, 200);
    assert.equal((await publish(u, 'acme/vit', '0.1', { 'model.bin': 'vit' })).status, 201);
    assert.equal((await publish(u, 'acme', '1.1', { 'model.bin': 'flat acme 2' })).status, 201);
    assert.equal((await fetch(`${u}/v1/models/acme/resnet/versions/1.0.0`, { method: 'DELETE' })).status, 204);
    await server.cairn.mirror.kick();
  });

  after(async () => {
    await server.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  test('git clone: models/acme/resnet/… beside the flat models/acme/…, acme/resnet@<version> tags, git log by path', async () => {
    const clone = path.join(work, 'clone');
    await run('git', ['clone', '-q', `${server.url}/git/lineage.git`, clone]);
    const files = (await git(clone, 'ls-tree', '-r', '--name-only', 'HEAD')).trim().split('\n');
    assert.deepEqual(files, [
      'models/acme/model.json',
      'models/acme/resnet/model.json',
      'models/acme/resnet/versions/1.1.0.json',
      'models/acme/versions/1.0.json',
      'models/acme/versions/1.1.json',
      'models/acme/vit/model.json',
      'models/acme/vit/versions/0.1.json',
    ]);
    const log = (path: string) => git(clone, 'log', '--format=%s', '--', path).then((o) => o.trim().split('\n'));
    assert.deepEqual(await log('models/acme/resnet'), ['delete acme/resnet@1.0.0', 'alias acme/resnet@production -> 1.1.0', 'publish acme/resnet@1.1.0', 'publish acme/resnet@1.0.0']);
    assert.deepEqual(await log('models/acme/vit'), ['publish acme/vit@0.1']);
    // the flat model alone: its own files (models/acme holds the namespace's models too)
    assert.deepEqual((await git(clone, 'log', '--format=%s', '--', 'models/acme/model.json', 'models/acme/versions')).trim().split('\n'), ['publish acme@1.1', 'publish acme@1.0']);
    const tags = (await git(clone, 'tag', '-l')).trim().split('\n').sort();
    assert.deepEqual(tags, ['acme/resnet@1.0.0', 'acme/resnet@1.1.0', 'acme/vit@0.1', 'acme@1.0', 'acme@1.1']);
    // a tag names its publish commit, whose tree holds the version (the deleted one too)
    const manifest = JSON.parse(await git(clone, 'show', 'acme/resnet@1.0.0:models/acme/resnet/versions/1.0.0.json'));
    assert.equal(manifest.name, 'acme/resnet');
    assert.deepEqual(manifest.files.map((f: any) => f.path), ['conf/a.json', 'model.bin']);
    const tuned = JSON.parse(await git(clone, 'show', 'HEAD:models/acme/resnet/versions/1.1.0.json'));
    assert.deepEqual(tuned.parents.map((p: any) => `${p.name}@${p.version}`), ['acme@1.0']);
    assert.deepEqual(JSON.parse(await git(clone, 'show', 'HEAD:models/acme/resnet/model.json')), { aliases: { production: '1.1.0' }, description: '', name: 'acme/resnet' });
    // the history API's commit ids are these commits
    const { body } = await json(`${server.url}/v1/models/acme/resnet/history`);
    const published = body.events.find((e: any) => e.subject === 'publish acme/resnet@1.1.0');
    assert.equal((await git(clone, 'rev-parse', 'acme/resnet@1.1.0^{commit}')).trim(), published.commit);
    await git(server.cairn.mirror.gitdir, 'fsck', '--strict');
  });

  test('rebuild reproduces the commit ids and tags of flat and namespaced models together', async () => {
    const refs = await git(server.cairn.mirror.gitdir, 'for-each-ref', '--format=%(refname) %(objectname)');
    const result = await rebuildRepository({ gitdir: server.cairn.mirror.gitdir, events: new EventQueries(server.cairn.db), log: createLogger({ silent: true }) });
    assert.equal(result.events, 7);
    assert.equal(result.mismatched, 0);
    assert.equal(await git(server.cairn.mirror.gitdir, 'for-each-ref', '--format=%(refname) %(objectname)'), refs);
  });
});

/** node:fs whose writes fail with ENOSPC while `failing` is set. */
function faultyFs() {
  const state = { failing: false };
  const writeOps = new Set(['writeFile', 'mkdir', 'rename', 'unlink', 'rmdir', 'symlink', 'appendFile', 'open']);
  const promises = new Proxy(nodeFs.promises, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop === 'string' && writeOps.has(prop) && typeof value === 'function') {
        return (...args: unknown[]) => {
          if (state.failing) {
            const err = Object.assign(new Error(`ENOSPC: no space left on device, ${prop}`), { code: 'ENOSPC' });
            return Promise.reject(err);
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return value;
    },
  });
  return { fs: { ...nodeFs, promises } as typeof nodeFs, state };
}

describe('cairn lineage rebuild', () => {
  test('rebuilds a stopped server\'s repository with identical commit ids', async () => {
    const server = await startTestServer('fs');
    const dataDir = server.dataDir;
    try {
      for (const v of ['1', '2', '3']) assert.equal((await publish(server.url, 'r', v, { a: v })).status, 201);
      assert.equal((await putAlias(server.url, 'r', 'prod', '2')).status, 200);
      // namespaced models beside the flat one: models/r/… and models/r/x/… share a directory
      assert.equal((await publish(server.url, 'r/x', '1', { a: 'x' })).status, 201);
      assert.equal((await putAlias(server.url, 'r/x', 'prod', '1')).status, 200);
      await server.cairn.mirror.kick();
      const gitdir = server.cairn.mirror.gitdir;
      await server.close();
      const before = await git(gitdir, 'for-each-ref', '--format=%(refname) %(objectname)');
      await fs.rm(gitdir, { recursive: true, force: true });
      const { stdout } = await run(process.execPath, [cairnBin(), 'lineage', 'rebuild', '--json'], { env: { ...process.env, CAIRN_DATA_DIR: dataDir } });
      const result = JSON.parse(stdout);
      assert.equal(result.events, 6);
      assert.equal(result.mismatched, 0);
      assert.equal(await git(gitdir, 'for-each-ref', '--format=%(refname) %(objectname)'), before);
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('lineage mirror failures', () => {
  test('a failing git writer never fails a publish; the lag shows; the writer catches up, also after a restart', async () => {
    const faulty = faultyFs();
    const server = await startTestServer('fs', {}, { gitFs: faulty.fs });
    const dataDir = server.dataDir;
    try {
      assert.equal((await publish(server.url, 'm', '1', { a: '1' })).status, 201);
      await server.cairn.mirror.kick();
      faulty.state.failing = true;
      assert.equal((await publish(server.url, 'm', '2', { a: '2' })).status, 201, 'publish succeeds while git fails');
      assert.equal((await putAlias(server.url, 'm', 'prod', '2')).status, 200);
      await server.cairn.mirror.kick();
      const ready = await json(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(ready.body.mirror.pending, 2);
      assert.match(ready.body.mirror.last_error, /ENOSPC/);
      const hist = await json(`${server.url}/v1/models/m/history`);
      // the commit ids exist from the publish on, whether git has them yet or not
      const recorded = hist.body.events.map((e: any) => e.commit);
      for (const c of recorded) assert.match(c, /^[0-9a-f]{40}$/);
      // the version is fully usable meanwhile
      assert.equal(await (await fetch(`${server.url}/v1/models/m/versions/prod/files/a`)).text(), '2');

      // restart on the same data dir with a healthy disk: the queue drains
      await server.close();
      const restarted = await startTestServer('fs', { dataDir });
      try {
        await restarted.cairn.mirror.kick();
        const after = await json(`${restarted.url}/readyz`);
        assert.equal(after.body.mirror.pending, 0);
        const h = await json(`${restarted.url}/v1/models/m/history`);
        assert.deepEqual(h.body.events.map((e: any) => e.subject), ['alias m@prod -> 2', 'publish m@2', 'publish m@1']);
        for (const e of h.body.events) assert.match(e.commit, /^[0-9a-f]{40}$/);
        const log = await git(restarted.cairn.mirror.gitdir, 'log', '--format=%s');
        assert.equal(log, 'alias m@prod -> 2\npublish m@2\npublish m@1\n', 'no event written twice');
        assert.deepEqual(h.body.events.map((e: any) => e.commit), recorded, 'git has the ids recorded at publish');
        assert.equal((await git(restarted.cairn.mirror.gitdir, 'log', '--format=%H')).trim().split('\n').join(), recorded.join());
      } finally {
        await restarted.stop();
      }
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  test('a corrupted branch ref stops the writer without losing events; rebuild repairs it', async () => {
    const server = await startTestServer('fs');
    try {
      assert.equal((await publish(server.url, 'c', '1', { a: '1' })).status, 201);
      await server.cairn.mirror.kick();
      const good = (await git(server.cairn.mirror.gitdir, 'rev-parse', 'refs/heads/main')).trim();
      await fs.writeFile(path.join(server.cairn.mirror.gitdir, 'refs/heads/main'), 'garbage\n');
      assert.equal((await publish(server.url, 'c', '2', { a: '2' })).status, 201);
      await server.cairn.mirror.kick();
      const ready = await json(`${server.url}/readyz`);
      assert.equal(ready.body.mirror.pending, 1);
      await server.cairn.mirror.stop();
      const result = await rebuildRepository({ gitdir: server.cairn.mirror.gitdir, events: new EventQueries(server.cairn.db), log: createLogger({ silent: true }) });
      assert.equal(result.events, 2);
      assert.equal(result.mismatched, 0);
      const log = await git(server.cairn.mirror.gitdir, 'log', '--format=%H %s');
      assert.match(log, new RegExp(`${good} publish c@1`));
      assert.equal(new EventQueries(server.cairn.db).lag().pending, 0);
    } finally {
      await server.stop();
    }
  });
});

