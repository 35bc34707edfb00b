// Lineage commit ids at publish (issue 13 point 4): every event's commit id is
// computed in the transaction that records it, so it is known before the git
// mirror writes anything; Hugging Face reads at that revision never wait for
// the mirror; the mirror later writes exactly those commits (checked with the
// real git CLI on a real `git clone`), also after a crash in the middle of a
// batch, and `cairn lineage rebuild` gives them again.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import nodeFs from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { cairnBin } from './support/build.ts';
import { spawnServer } from './support/child-server.ts';
import { call, publishForm } from './support/http-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { stallableFs } from './support/stallable-fs.ts';

const run = promisify(execFile);

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, maxBuffer: 64 << 20 });
  return stdout;
}

/** `git clone --bare` of the server's lineage over smart HTTP; returns `%H %s` of every commit, oldest first, and the tags. */
async function cloned(url: string, into: string): Promise<{ log: string[]; tags: Map<string, string> }> {
  await fs.rm(into, { recursive: true, force: true });
  await run('git', ['clone', '--bare', '-q', `${url}/git/lineage.git`, into], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  await git(into, 'fsck', '--strict', '--no-dangling');
  const log = (await git(into, 'log', '--reverse', '--format=%H %s', 'main')).trim().split('\n').filter(Boolean);
  const tags = new Map<string, string>();
  for (const line of (await git(into, 'for-each-ref', '--format=%(refname:strip=2) %(objectname)', 'refs/tags')).trim().split('\n').filter(Boolean)) {
    const [tag, oid] = line.split(' ') as [string, string];
    tags.set(tag, oid);
  }
  return { log, tags };
}

/** A JSON publish of one already-stored file (no bytes move: the cost is the registry's and the lineage's). */
function publishJson(url: string, name: string, version: string, digest: string) {
  return call(url, 'POST', `/v1/models/${name}/versions`, { version, files: [{ path: 'w.bin', digest }] });
}

async function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('commit ids at publish, with the git writer stalled', () => {
  let srv: TestServer;
  let work: string;
  const gate = stallableFs();
  /** commit id of each version, as the service gives it right after the publish */
  const atPublish = new Map<string, string>();

  before(async () => {
    srv = await startTestServer('fs', {}, { gitFs: gate.fs });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-commit-ids-'));
    const first = await publishForm(srv.url, 'm', { version: '1' }, [{ path: 'w.bin', data: Buffer.from('weights one') }]);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    atPublish.set('1', srv.cairn.services.versions.publishCommit('m', '1'));
    await srv.cairn.mirror.kick();
    assert.equal(srv.cairn.mirror.status().pending, 0);
    // from here on the writer is stuck in its first file system call
    gate.stall();
    for (const v of ['2', '3', '4']) {
      const res = await publishForm(srv.url, 'm', { version: v, message: `release ${v}` }, [{ path: 'w.bin', data: Buffer.from(`weights ${v}`) }]);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      atPublish.set(v, srv.cairn.services.versions.publishCommit('m', v));
    }
    assert.equal((await call(srv.url, 'PUT', '/v1/models/m/aliases/prod', { version: '3' })).status, 200);
    assert.equal((await call(srv.url, 'DELETE', '/v1/models/m/versions/2')).status, 204);
    const namespaced = await publishJson(srv.url, 'acme/m', '1', first.body.files[0].digest);
    assert.equal(namespaced.status, 201, JSON.stringify(namespaced.body));
    atPublish.set('acme/m@1', srv.cairn.services.versions.publishCommit('acme/m', '1'));
  });

  after(async () => {
    gate.resume();
    await srv?.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  test('every event has its commit id while git has none of them', async () => {
    assert.equal(srv.cairn.mirror.status().pending, 6);
    for (const id of atPublish.values()) assert.match(id, /^[0-9a-f]{40}$/);
    assert.equal(new Set(atPublish.values()).size, atPublish.size);
    const history = await call(srv.url, 'GET', '/v1/models/m/history');
    assert.deepEqual(
      history.body.events.map((e: any) => e.subject),
      ['delete m@2', 'alias m@prod -> 3', 'publish m@4', 'publish m@3', 'publish m@2', 'publish m@1'],
    );
    for (const e of history.body.events) assert.match(e.commit, /^[0-9a-f]{40}$/, `${e.subject} has its commit`);
    assert.equal(history.body.events.find((e: any) => e.subject === 'publish m@3').commit, atPublish.get('3'));
  });

  test('/hf reads at a commit not yet in git answer at once', async () => {
    const quick = <T>(what: string, p: Promise<T>) => withTimeout(what, 5_000, p);
    for (const v of ['3', '4']) {
      const sha = atPublish.get(v)!;
      const info = await quick(`info at ${v}`, call(srv.url, 'GET', `/hf/api/models/m/revision/${v}`));
      assert.equal(info.status, 200, JSON.stringify(info.body));
      assert.equal(info.body.sha, sha);
      const pinned = await quick(`info at ${sha}`, call(srv.url, 'GET', `/hf/api/models/m/revision/${sha}`));
      assert.equal(pinned.status, 200);
      assert.equal(pinned.body.sha, sha);
      const tree = await quick(`tree at ${sha}`, call(srv.url, 'GET', `/hf/api/models/m/tree/${sha}`));
      assert.equal(tree.status, 200);
      assert.deepEqual(tree.body.map((e: any) => e.path), ['w.bin']);
      const file = await quick(`resolve at ${sha}`, fetch(`${srv.url}/hf/m/resolve/${sha}/w.bin`));
      assert.equal(file.status, 200);
      assert.equal(file.headers.get('x-repo-commit'), sha);
      assert.equal(await file.text(), `weights ${v}`);
    }
    const main = await quick('info at main', call(srv.url, 'GET', '/hf/api/models/m'));
    assert.equal(main.body.sha, atPublish.get('4'));
    assert.equal(srv.cairn.mirror.status().pending, 6, 'the reads did not need the writer');
  });

  test('the writer then writes exactly those commits: git log of a real clone', async () => {
    gate.resume();
    await srv.cairn.mirror.kick();
    assert.equal(srv.cairn.mirror.status().pending, 0);
    assert.equal(srv.cairn.mirror.status().mismatched_commits, 0);
    const { log, tags } = await cloned(srv.url, path.join(work, 'clone.git'));
    assert.deepEqual(log.map((l) => l.slice(41)), ['publish m@1', 'publish m@2', 'publish m@3', 'publish m@4', 'alias m@prod -> 3', 'delete m@2', 'publish acme/m@1']);
    for (const v of ['1', '2', '3', '4']) {
      assert.ok(log.includes(`${atPublish.get(v)} publish m@${v}`), `m@${v}: the id given at publish is in git log`);
      assert.equal(tags.get(`m@${v}`), atPublish.get(v), `tag m@${v}`);
    }
    assert.equal(log.at(-1), `${atPublish.get('acme/m@1')} publish acme/m@1`);
    assert.equal(tags.get('acme/m@1'), atPublish.get('acme/m@1'));
    // the history's ids are git's, event for event
    const history = await call(srv.url, 'GET', '/v1/models/m/history');
    assert.deepEqual(
      history.body.events.map((e: any) => `${e.commit} ${e.subject}`).reverse(),
      log.filter((l) => l.includes(' m@')),
    );
  });
});

/** The sha the Hub API gives for name@version: what an HF client pins to right after publishing. */
async function shaOf(url: string, name: string, version: string): Promise<string> {
  const res = await call(url, 'GET', `/hf/api/models/${name}/revision/${version}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.sha as string;
}

describe('a burst of publishes against the real server, killed in the middle of the mirror', () => {
  test('reads stay fast, a clone during the burst works, ids survive SIGKILL and equal git log and a rebuild', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-commit-burst-'));
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-commit-burst-work-'));
    let server = await spawnServer({ dataDir });
    try {
      const base = await publishForm(server.url, 'burst', { version: 'base' }, [{ path: 'w.bin', data: Buffer.from('burst weights') }]);
      assert.equal(base.status, 201, JSON.stringify(base.body));
      const digest = base.body.files[0].digest as string;
      const BURST = 800;
      const CONCURRENCY = 4;
      /** version -> commit id given right after its publish */
      const given = new Map<string, string>([['base', await shaOf(server.url, 'burst', 'base')]]);
      let next = 0;
      let publishing = true;
      const publisher = async () => {
        for (;;) {
          const i = next++;
          if (i >= BURST) return;
          const version = `v${i}`;
          const res = await publishJson(server.url, `burst/m${i % 7}`, version, digest);
          assert.equal(res.status, 201, JSON.stringify(res.body));
          given.set(`burst/m${i % 7}@${version}`, await shaOf(server.url, `burst/m${i % 7}`, version));
        }
      };
      // a Hugging Face reader meanwhile: info, tree and resolve at pinned commits
      const latencies: number[] = [];
      const reader = async (going: () => boolean) => {
        while (going()) {
          for (const [key, sha] of [...given].slice(-3)) {
            const name = key.includes('@') ? key.slice(0, key.indexOf('@')) : 'burst';
            for (const p of [`/hf/api/models/${name}/revision/${sha}`, `/hf/api/models/${name}/tree/${sha}`, `/hf/${name}/resolve/${sha}/w.bin`]) {
              const t0 = performance.now();
              const res = await fetch(`${server.url}${p}`);
              await res.arrayBuffer();
              latencies.push(performance.now() - t0);
              assert.equal(res.status, 200, p);
            }
          }
        }
      };
      // the same reads on the idle server first: what this machine gives without a burst
      await reader(() => latencies.length < 150);
      const idle = latencies.splice(0).sort((a, b) => a - b);
      const idleP99 = idle[Math.floor(idle.length * 0.99)]!;
      const readers = reader(() => publishing);
      // a clone in the middle of the burst
      const cloneDuring = (async () => {
        while (next < BURST / 3) await new Promise((r) => setTimeout(r, 20));
        return cloned(server.url, path.join(work, 'during.git'));
      })();
      await Promise.all(Array.from({ length: CONCURRENCY }, publisher));
      publishing = false;
      await readers;
      const during = await cloneDuring;
      assert.ok(during.log.length > 1, 'the clone during the burst has commits');
      for (const line of during.log) {
        const [sha, , ref] = line.split(' ');
        if (ref && given.has(ref)) assert.equal(sha, given.get(ref), `${ref} in the clone during the burst`);
      }
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.floor(latencies.length * q)]!.toFixed(1);
      const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
      assert.ok(latencies.length >= 30, `${latencies.length} reads`);
      // The target is < 100 ms (bench/lineage.ts measures it with 10,000 publishes). On a
      // shared 2-core machine the burst's own processes (server, clients, git clone, git
      // repack) compete for the CPU, so the suite's bound is looser — still two orders
      // below a read that waits for the mirror's backlog (tens of seconds here).
      const limit = Math.max(250, 5 * idleP99);
      const seen = `/hf reads during the burst: p50 ${at(0.5)}, p90 ${at(0.9)}, p99 ${p99.toFixed(1)}, max ${at(0.9999)} ms over ${latencies.length} reads; idle p99 ${idleP99.toFixed(1)} ms`;
      process.stderr.write(`# ${seen}\n`);
      assert.ok(p99 < limit, `${seen} (must stay < ${limit.toFixed(0)} ms)`);

      // a second burst, killed while the mirror still has work: SIGKILL as soon as git has some but not all
      let killedAt = -1;
      const second = (async () => {
        for (let i = 0; i < 400; i++) {
          const res = await publishJson(server.url, 'burst/late', `v${i}`, digest).catch(() => undefined);
          if (!res) return; // the server is gone
          if (res.status === 201) given.set(`burst/late@v${i}`, await shaOf(server.url, 'burst/late', `v${i}`).catch(() => 'unread'));
        }
      })();
      for (;;) {
        const ready = await call(server.url, 'GET', '/readyz');
        if (ready.body.mirror.pending > 0 && given.size > BURST + 50) {
          killedAt = ready.body.mirror.pending;
          break;
        }
        if (given.size >= BURST + 400) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      await server.kill();
      await second;
      assert.ok(killedAt > 0, 'killed with events the mirror had not written yet');

      server = await spawnServer({ dataDir });
      for (let i = 0; (await call(server.url, 'GET', '/readyz')).body.mirror.pending > 0; i++) {
        assert.ok(i < 600, 'the mirror drains after the restart');
        await new Promise((r) => setTimeout(r, 50));
      }
      const ready = await call(server.url, 'GET', '/readyz');
      assert.equal(ready.body.mirror.last_error, null);
      assert.equal(ready.body.mirror.mismatched_commits, 0);
      const { log, tags } = await cloned(server.url, path.join(work, 'after.git'));
      let checked = 0;
      for (const [ref, sha] of given) {
        if (sha === 'unread') continue;
        const tag = ref.includes('@') ? ref : `burst@${ref}`;
        assert.equal(tags.get(tag), sha, `${tag}: the id given at publish is the tag's commit after the crash`);
        checked += 1;
      }
      assert.ok(checked > BURST, `${checked} ids checked`);
      const subjects = log.map((l) => l.slice(41));
      assert.equal(new Set(subjects).size, subjects.length, 'no event written twice');
      assert.equal(tags.size, subjects.filter((s) => s.startsWith('publish ')).length, 'one tag per publish');
      const head = log.at(-1)!.slice(0, 40);
      await server.stop();

      // rebuild from SQLite alone: the same commits
      const { stdout } = await run(process.execPath, [cairnBin(), 'lineage', 'rebuild', '--json'], { env: { ...process.env, CAIRN_DATA_DIR: dataDir } });
      const rebuilt = JSON.parse(stdout);
      assert.equal(rebuilt.mismatched, 0);
      assert.equal(rebuilt.head, head);
      assert.equal(rebuilt.events, log.length);
    } finally {
      await server.kill();
      await fs.rm(dataDir, { recursive: true, force: true });
      await fs.rm(work, { recursive: true, force: true });
    }
  });
});

describe('a crash at each step of a mirror batch', () => {
  /** node:fs whose rename onto the branch ref fails while `failing` is set: the writer dies after the pack and the tags, before the branch. */
  function branchFailingFs() {
    const state = { failing: true };
    const promises = new Proxy(nodeFs.promises, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'rename' || typeof value !== 'function') return value;
        return (from: string, to: string) =>
          state.failing && to.endsWith(path.join('refs', 'heads', 'main'))
            ? Promise.reject(Object.assign(new Error('EIO: crash before the branch moved'), { code: 'EIO' }))
            : (value as (a: string, b: string) => Promise<void>).call(target, from, to);
      },
    });
    return { fs: { ...nodeFs, promises } as typeof nodeFs, state };
  }

  async function publishThree(url: string, name: string): Promise<string[]> {
    const ids: string[] = [];
    for (const v of ['1', '2', '3']) {
      const res = await publishForm(url, name, { version: v }, [{ path: 'w.bin', data: Buffer.from(`${name} ${v}`) }]);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(await shaOf(url, name, v));
    }
    return ids;
  }

  async function restartedLog(dataDir: string): Promise<string[]> {
    const again = await startTestServer('fs', { dataDir });
    try {
      await again.cairn.mirror.kick();
      const status = again.cairn.mirror.status();
      assert.equal(status.pending, 0, status.last_error ?? '');
      assert.equal(status.mismatched_commits, 0);
      await git(again.cairn.mirror.gitdir, 'fsck', '--strict', '--no-dangling');
      return (await git(again.cairn.mirror.gitdir, 'log', '--reverse', '--format=%H')).trim().split('\n');
    } finally {
      await again.close();
    }
  }

  test('after the pack and the tags, before the branch: the restarted writer writes the same commits', async () => {
    const faulty = branchFailingFs();
    const srv = await startTestServer('fs', {}, { gitFs: faulty.fs });
    try {
      const ids = await publishThree(srv.url, 'crash-a');
      await srv.cairn.mirror.kick();
      assert.match(srv.cairn.mirror.status().last_error ?? '', /EIO/);
      assert.equal(srv.cairn.mirror.status().pending, 3);
      await srv.close();
      assert.deepEqual(await restartedLog(srv.dataDir), ids);
    } finally {
      await fs.rm(srv.dataDir, { recursive: true, force: true });
    }
  });

  test('after the branch, before SQLite recorded the batch: the restarted writer finds the commits in git and writes none twice', async () => {
    const srv = await startTestServer('fs');
    try {
      const ids = await publishThree(srv.url, 'crash-b');
      await srv.cairn.mirror.kick();
      assert.equal(srv.cairn.mirror.status().pending, 0);
      // the state a crash between the branch's rename and the batch's SQLite commit leaves
      srv.cairn.db.run('UPDATE events SET mirrored_at = NULL WHERE id > (SELECT min(id) FROM events)');
      await srv.close();
      assert.deepEqual(await restartedLog(srv.dataDir), ids);
    } finally {
      await fs.rm(srv.dataDir, { recursive: true, force: true });
    }
  });
});

describe('a server started on a deleted lineage repository', () => {
  test('computes commit ids from the events alone, the ones `cairn lineage rebuild` then writes', async () => {
    const first = await startTestServer('fs');
    const dataDir = first.dataDir;
    try {
      for (const v of ['1', '2']) assert.equal((await publishForm(first.url, 'gone', { version: v }, [{ path: 'w.bin', data: Buffer.from(v) }])).status, 201);
      await first.cairn.mirror.kick();
      const gitdir = first.cairn.mirror.gitdir;
      await first.close();
      await fs.rm(gitdir, { recursive: true, force: true });

      const second = await startTestServer('fs', { dataDir });
      let given: string;
      try {
        assert.equal((await publishForm(second.url, 'gone', { version: '3' }, [{ path: 'w.bin', data: Buffer.from('3') }])).status, 201);
        given = await shaOf(second.url, 'gone', '3');
        await second.cairn.mirror.kick();
        assert.match(second.cairn.mirror.status().last_error ?? '', /lineage rebuild/, 'the writer waits for a rebuild');
      } finally {
        await second.close();
      }
      const { stdout } = await run(process.execPath, [cairnBin(), 'lineage', 'rebuild', '--json'], { env: { ...process.env, CAIRN_DATA_DIR: dataDir } });
      const rebuilt = JSON.parse(stdout);
      assert.equal(rebuilt.mismatched, 0);
      assert.equal(rebuilt.head, given);
      assert.equal((await git(gitdir, 'rev-parse', 'gone@3^{commit}')).trim(), given);
      assert.equal((await git(gitdir, 'rev-list', '--count', 'main')).trim(), '3');
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
