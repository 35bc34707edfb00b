// Version diffs: statuses by path, and the bytes two versions share at the
// chunk level — through the API (fs and S3) and the CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { MiB, randomBytesFor } from './support/bytes.ts';
import { assertError, call, publishForm } from './support/http-client.ts';
import { startTestServer, storageKinds, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';

for (const kind of storageKinds) {
  describe(`version diff (${kind})`, () => {
    let srv: TestServer;
    const weights = randomBytesFor(`${kind}-diff-weights`, 12 * MiB + 3);
    // v2: 4 KiB overwritten in the middle and 100 bytes inserted near the start (every offset after it shifts)
    const weights2 = Buffer.concat([weights.subarray(0, 1000), randomBytesFor('inserted', 100), weights.subarray(1000)]);
    randomBytesFor('overwrite', 4096).copy(weights2, 6 * MiB);
    const config = Buffer.from('{"layers": 12}\n');
    const notes = Buffer.from('first cut\n');

    before(async () => {
      srv = await startTestServer(kind);
      const publish = async (name: string, version: string, files: Array<{ path: string; data: Buffer }>) => {
        const res = await publishForm(srv.url, name, { version }, files);
        assert.equal(res.status, 201, JSON.stringify(res.body));
      };
      await publish('dm', '1', [
        { path: 'weights.bin', data: weights },
        { path: 'config.json', data: config },
        { path: 'notes.txt', data: notes },
      ]);
      await publish('dm', '2', [
        { path: 'weights.bin', data: weights2 },
        { path: 'config.json', data: config },
        { path: 'extra.bin', data: randomBytesFor('extra', 3000) },
      ]);
      await publish('dm-copy', '1', [{ path: 'w.bin', data: weights }]);
    });
    after(async () => {
      await srv?.stop();
    });

    test('statuses by path; a shifted, partly changed file still shares most of its bytes', async (t) => {
      const res = await call(srv.url, 'GET', '/v1/models/dm/versions/2/diff?from=1');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const d = res.body;
      assert.deepEqual([d.from.version, d.to.version], ['1', '2']);
      assert.deepEqual(
        d.files.map((f: any) => [f.path, f.status]),
        [
          ['config.json', 'unchanged'],
          ['extra.bin', 'added'],
          ['notes.txt', 'removed'],
          ['weights.bin', 'changed'],
        ],
      );
      const w = d.files.find((f: any) => f.path === 'weights.bin');
      assert.equal(w.to.size, weights2.length);
      // two edits touch at most ~2 chunks each (≤ 8 MiB chunks, ~2 MiB on average): the rest is shared
      assert.ok(w.shared_bytes >= weights2.length / 2 && w.shared_bytes < weights2.length, `shared ${w.shared_bytes} of ${weights2.length}`);
      t.diagnostic(`weights.bin (${kind}): ${w.shared_bytes} of ${weights2.length} bytes shared (${((100 * w.shared_bytes) / weights2.length).toFixed(1)}%)`);
      assert.equal(d.files.find((f: any) => f.path === 'config.json').shared_bytes, config.length);
      assert.equal(d.files.find((f: any) => f.path === 'extra.bin').shared_bytes, 0);
      assert.equal(d.files.find((f: any) => f.path === 'notes.txt').to, null);
      const s = d.summary;
      assert.deepEqual([s.added, s.removed, s.changed, s.unchanged], [1, 1, 1, 1]);
      assert.equal(s.to_bytes, weights2.length + config.length + 3000);
      assert.equal(s.shared_bytes, w.shared_bytes + config.length);
      assert.ok(s.new_stored_bytes > 0 && s.new_stored_bytes < weights2.length - w.shared_bytes + 3000 + 4096, `new stored ${s.new_stored_bytes}`);
    });

    test('across models: the same bytes under another name share everything', async () => {
      const d = (await call(srv.url, 'GET', '/v1/models/dm-copy/versions/1/diff?from=dm@1')).body;
      assert.deepEqual(d.files.map((f: any) => [f.path, f.status]), [['config.json', 'removed'], ['notes.txt', 'removed'], ['w.bin', 'added'], ['weights.bin', 'removed']]);
      assert.equal(d.files.find((f: any) => f.path === 'w.bin').shared_bytes, weights.length, 'added under a new path, yet every chunk is shared');
      assert.equal(d.summary.new_stored_bytes, 0);
    });

    test('bad input: no from, an unknown version or model', async () => {
      assertError(await call(srv.url, 'GET', '/v1/models/dm/versions/2/diff'), 400, 'INVALID_ARGUMENT');
      assertError(await call(srv.url, 'GET', '/v1/models/dm/versions/2/diff?from=9'), 404, 'VERSION_NOT_FOUND');
      assertError(await call(srv.url, 'GET', '/v1/models/dm/versions/2/diff?from=nope@1'), 404, 'MODEL_NOT_FOUND');
      assertError(await call(srv.url, 'GET', '/v1/models/dm/versions/2/diff?from=dm@bad%20ref'), 400, 'INVALID_REF');
    });
  });
}

describe('cairn diff (CLI)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer('fs');
    const data = randomBytesFor('cli-diff', 3 * MiB);
    assert.equal((await publishForm(srv.url, 'cd', { version: '1.0' }, [{ path: 'a.bin', data }])).status, 201);
    assert.equal((await publishForm(srv.url, 'cd', { version: '1.1' }, [{ path: 'a.bin', data }, { path: 'b.txt', data: Buffer.from('new') }])).status, 201);
  });
  after(async () => {
    await srv?.stop();
  });

  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [cairnBin(), ...args], { env: { ...process.env, CAIRN_URL: srv.url, CAIRN_TOKEN: '' } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  test('a table of statuses and shared bytes; --json; usage errors exit 2', async () => {
    const text = await cli(['diff', 'cd@1.0', '1.1']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^cd@1\.0 → cd@1\.1: 0 changed, 1 added, 0 removed, 1 unchanged$/m);
    assert.match(text.stdout, /^unchanged\s+a\.bin\s+3\.00 MiB\s+100\.0%$/m);
    assert.match(text.stdout, /^added\s+b\.txt\s+3 B\s+0\.0%$/m);
    assert.match(text.stdout, /in chunks cd@1\.0 already has; \d+ B stored for the rest$/m);
    const json = JSON.parse((await cli(['diff', 'cd@1.0', 'cd@1.1', '--json'])).stdout);
    assert.equal(json.summary.added, 1);
    const missing = await cli(['diff', 'cd@1.0']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing the second version/);
    assert.equal((await cli(['diff', 'cd@1.0', 'cd@9'])).code, 1);
  });
});
