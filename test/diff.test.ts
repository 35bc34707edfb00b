// Version diffs: statuses by path, and the bytes two versions share at the
// chunk level — through the API (fs and S3) and the CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { MiB, randomBytesFor } from './support/bytes.ts';
import { assertError, call, publishForm } from './support/http-client.ts';
import { startTestServer, storageKinds, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';
import { buildSafetensors } from './support/fixtures-safetensors-gguf.ts';

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
      assert.deepEqual([s.added, s.removed, s.changed, s.renamed, s.unchanged], [1, 1, 1, 0, 1]);
      assert.deepEqual(w.delta, { size: weights2.length - weights.length }, 'no format facts to compare in raw bytes');
      assert.deepEqual(d.metadata, []);
      assert.equal(s.to_bytes, weights2.length + config.length + 3000);
      assert.equal(s.shared_bytes, w.shared_bytes + config.length);
      assert.ok(s.new_stored_bytes > 0 && s.new_stored_bytes < weights2.length - w.shared_bytes + 3000 + 4096, `new stored ${s.new_stored_bytes}`);
    });

    test('across models: the same bytes under another name are a rename, sharing everything', async () => {
      const d = (await call(srv.url, 'GET', '/v1/models/dm-copy/versions/1/diff?from=dm@1')).body;
      assert.deepEqual(d.files.map((f: any) => [f.path, f.status, f.from_path]), [['config.json', 'removed', undefined], ['notes.txt', 'removed', undefined], ['w.bin', 'renamed', 'weights.bin']]);
      assert.equal(d.files.find((f: any) => f.path === 'w.bin').shared_bytes, weights.length, 'the same content under a new path: every chunk is shared');
      assert.equal(d.summary.renamed, 1);
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

describe('version diff: renames, metadata and format deltas', () => {
  let srv: TestServer;
  const model = (dtype: string, rows: number) => buildSafetensors([{ name: 'w', dtype, shape: [rows, 8] }, { name: 'b', dtype: 'F32', shape: [8] }]).bytes;
  before(async () => {
    srv = await startTestServer('fs');
    const v1 = await publishForm(srv.url, 'dd', { version: '1', metadata: JSON.stringify({ lr: 0.1, train: { steps: 100, data: 'web' }, tags: ['a'] }) }, [
      { path: 'model.safetensors', data: model('F32', 16) },
      { path: 'tok/vocab.txt', data: Buffer.from('a b c\n') },
      { path: 'old-notes.md', data: Buffer.from('# notes\n') },
      { path: 'twin-a.bin', data: Buffer.from('twin') },
      { path: 'twin-b.bin', data: Buffer.from('twin') },
    ]);
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    const v2 = await publishForm(srv.url, 'dd', { version: '2', metadata: JSON.stringify({ lr: 0.05, train: { steps: 100 }, tags: ['a', 'b'], quant: 'int8' }) }, [
      { path: 'model.safetensors', data: model('I8', 32) },
      { path: 'tokenizer/vocab.txt', data: Buffer.from('a b c\n') },
      { path: 'twin-a.bin', data: Buffer.from('twin') },
      { path: 'twin-c.bin', data: Buffer.from('twin') },
    ]);
    assert.equal(v2.status, 201, JSON.stringify(v2.body));
  });
  after(async () => {
    await srv?.stop();
  });

  test('a moved file is renamed (by digest, once per source), a changed one carries its dtype, parameter and size deltas, metadata by key', async () => {
    const res = await call(srv.url, 'GET', '/v1/models/dd/versions/2/diff?from=1');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const d = res.body;
    assert.deepEqual(
      d.files.map((f: any) => [f.path, f.status, f.from_path ?? null]),
      [
        ['model.safetensors', 'changed', null],
        ['old-notes.md', 'removed', null],
        ['tokenizer/vocab.txt', 'renamed', 'tok/vocab.txt'],
        ['twin-a.bin', 'unchanged', null],
        ['twin-c.bin', 'renamed', 'twin-b.bin'],
      ],
    );
    const m = d.files[0];
    assert.deepEqual(m.delta.parameters, { from: 16 * 8 + 8, to: 32 * 8 + 8 });
    assert.deepEqual(m.delta.dtypes, { float32: { from: 16 * 8 + 8, to: 8 }, int8: { from: 0, to: 32 * 8 } });
    assert.equal(m.delta.size, m.to.size - m.from.size);
    assert.equal(m.delta.format, undefined, 'safetensors both times');
    assert.deepEqual(d.metadata, [
      { key: 'lr', status: 'changed', from: 0.1, to: 0.05 },
      { key: 'quant', status: 'added', to: 'int8' },
      { key: 'tags', status: 'changed', from: ['a'], to: ['a', 'b'] },
      { key: 'train.data', status: 'removed', from: 'web' },
    ]);
    assert.deepEqual([d.summary.renamed, d.summary.removed, d.summary.changed, d.summary.added], [2, 1, 1, 0]);
    assert.deepEqual([d.summary.from_parameters, d.summary.to_parameters], [16 * 8 + 8, 32 * 8 + 8]);
  });

  test('an alias or another model as the base; a deleted base is 404 VERSION_DELETED', async () => {
    assert.equal((await call(srv.url, 'PUT', '/v1/models/dd/aliases/production', { version: '1' })).status, 200);
    const byAlias = await call(srv.url, 'GET', '/v1/models/dd/versions/2/diff?from=dd@production');
    assert.equal(byAlias.body.from.version, '1');
    assert.equal((await publishForm(srv.url, 'dd', { version: '3' }, [{ path: 'x.bin', data: Buffer.from('x') }])).status, 201);
    assert.equal((await call(srv.url, 'DELETE', '/v1/models/dd/versions/3')).status, 204);
    assertError(await call(srv.url, 'GET', '/v1/models/dd/versions/2/diff?from=3'), 404, 'VERSION_DELETED');
  });
});

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
