// The Hugging Face Hub API subset under /hf, driven by a real Hugging Face
// client (@huggingface/hub, the Hub's own JavaScript library) against a real
// server, plus the headers huggingface_hub (Python) relies on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { downloadFile, fileDownloadInfo, listFiles, modelInfo } from '@huggingface/hub';
import { digestOf, MiB, randomBytesFor } from './support/bytes.ts';
import { call, publishForm } from './support/http-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

describe('Hugging Face clients (/hf)', () => {
  let srv: TestServer;
  let hubUrl: string;
  const weights1 = randomBytesFor('hf-weights-1', 3 * MiB + 17);
  const weights2 = randomBytesFor('hf-weights-2', 2 * MiB + 5);
  const config = Buffer.from('{"model_type":"demo"}\n');
  const tokenizer = Buffer.from('{"vocab":{}}\n');
  const commits: Record<string, string> = {};

  /** The publish commit of a version, from the model's history (waits for the mirror). */
  async function publishCommit(name: string, version: string): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const history = await call(srv.url, 'GET', `/v1/models/${name}/history`);
      const entry = (history.body.items ?? history.body.events ?? []).find((e: { event: string; version: string; commit: string | null }) => e.event === 'publish' && e.version === version);
      if (entry?.commit) return entry.commit as string;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no commit for ${name}@${version}`);
  }

  before(async () => {
    srv = await startTestServer('fs');
    hubUrl = `${srv.url}/hf`;
    let res = await publishForm(srv.url, 'demo', { version: '1.0.0' }, [
      { path: 'model.bin', data: weights1 },
      { path: 'config.json', data: config },
      { path: 'tokenizer/tokenizer.json', data: tokenizer },
    ]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    res = await publishForm(srv.url, 'demo', { version: '2.0.0', aliases: ['production'] }, [
      { path: 'model.bin', data: weights2 },
      { path: 'config.json', data: config },
    ]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    commits['1.0.0'] = await publishCommit('demo', '1.0.0');
    commits['2.0.0'] = await publishCommit('demo', '2.0.0');
  });
  after(async () => {
    await srv?.stop();
  });

  test('downloadFile: main is the latest version; a version, an alias and a commit id pin one', async () => {
    const bytes = async (revision?: string, path = 'model.bin') => {
      const blob = await downloadFile({ repo: 'demo', path, revision, hubUrl });
      assert.ok(blob, `${path}@${revision} exists`);
      return Buffer.from(await blob.arrayBuffer());
    };
    assert.ok((await bytes()).equals(weights2), 'main');
    assert.ok((await bytes('1.0.0')).equals(weights1), 'a version');
    assert.ok((await bytes('production')).equals(weights2), 'an alias');
    assert.ok((await bytes(commits['1.0.0'])).equals(weights1), 'a commit id');
    assert.ok((await bytes('1.0.0', 'tokenizer/tokenizer.json')).equals(tokenizer), 'a nested path');
  });

  test('fileDownloadInfo: size and the sha256 as ETag; a missing file is null (EntryNotFound)', async () => {
    const info = await fileDownloadInfo({ repo: 'demo', path: 'model.bin', revision: '1.0.0', hubUrl });
    assert.ok(info);
    assert.equal(info.size, weights1.length);
    assert.equal(info.etag, `"${digestOf(weights1).slice(7)}"`);
    assert.equal(await fileDownloadInfo({ repo: 'demo', path: 'nope.bin', hubUrl }), null);
  });

  test('modelInfo and listFiles: the files of a revision', async () => {
    const info = await modelInfo({ name: 'demo', hubUrl, revision: commits['1.0.0'], additionalFields: ['filePaths', 'sha'] });
    assert.equal(info.name, 'demo');
    assert.equal((info as { sha?: string }).sha, commits['1.0.0']);
    assert.deepEqual([...(info as { filePaths: string[] }).filePaths].sort(), ['config.json', 'model.bin', 'tokenizer/tokenizer.json']);
    // the fields huggingface_hub's ModelInfo and snapshot_download read
    const raw = (await call(srv.url, 'GET', '/hf/api/models/demo/revision/production')).body;
    assert.equal(raw.id, 'demo');
    assert.equal(raw.sha, commits['2.0.0']);
    assert.match(raw.lastModified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(raw.siblings.find((s: { rfilename: string }) => s.rfilename === 'model.bin').lfs, { sha256: digestOf(weights2).slice(7), size: weights2.length, pointerSize: 134 });
    const top = [];
    for await (const entry of listFiles({ repo: 'demo', revision: '1.0.0', hubUrl })) top.push(`${entry.type} ${entry.path} ${entry.size}`);
    assert.deepEqual(top.sort(), ['directory tokenizer 0', `file config.json ${config.length}`, `file model.bin ${weights1.length}`]);
    const all = [];
    for await (const entry of listFiles({ repo: 'demo', revision: '1.0.0', recursive: true, hubUrl })) if (entry.type === 'file') all.push(entry.path);
    assert.deepEqual(all.sort(), ['config.json', 'model.bin', 'tokenizer/tokenizer.json']);
    const sub = [];
    for await (const entry of listFiles({ repo: 'demo', revision: '1.0.0', path: 'tokenizer', hubUrl })) sub.push(entry.path);
    assert.deepEqual(sub, ['tokenizer/tokenizer.json']);
  });

  test('what huggingface_hub reads from a HEAD: X-Repo-Commit, X-Linked-Etag, X-Linked-Size; ranges', async () => {
    const head = await fetch(`${hubUrl}/demo/resolve/main/config.json`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('x-repo-commit'), commits['2.0.0']);
    assert.equal(head.headers.get('x-linked-etag'), `"${digestOf(config).slice(7)}"`);
    assert.equal(head.headers.get('x-linked-size'), String(config.length));
    assert.equal(head.headers.get('content-length'), String(config.length));
    const part = await fetch(`${hubUrl}/demo/resolve/${commits['1.0.0']}/model.bin`, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(weights1.subarray(100, 200)));
  });

  test('not found: the Hub error codes the clients map to their own errors', async () => {
    const codeOf = async (path: string) => {
      const res = await fetch(`${hubUrl}${path}`);
      await res.arrayBuffer();
      return [res.status, res.headers.get('x-error-code')];
    };
    assert.deepEqual(await codeOf('/nope/resolve/main/config.json'), [404, 'RepoNotFound']);
    assert.deepEqual(await codeOf('/demo/resolve/9.9.9/config.json'), [404, 'RevisionNotFound']);
    assert.deepEqual(await codeOf(`/demo/resolve/${'0'.repeat(40)}/config.json`), [404, 'RevisionNotFound']);
    assert.deepEqual(await codeOf('/demo/resolve/main/nope.json'), [404, 'EntryNotFound']);
    assert.deepEqual(await codeOf('/api/models/demo/tree/main/nope'), [404, 'EntryNotFound']);
  });
});

describe('Hugging Face clients (/hf) with access control', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer('fs', { auth: true });
  });
  after(async () => {
    await srv?.stop();
  });

  test('a read token sent as the client sends it gets the file; none gets 401', async () => {
    const admin = readFileSync(`${srv.dataDir}/admin-token`, 'utf8').trim();
    const data = randomBytesFor('hf-auth', 1000);
    const pub = await publishForm(srv.url, 'secret', { version: '1' }, [{ path: 'w.bin', data }], { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    const token = await call(srv.url, 'POST', '/v1/tokens', { name: 'hf-reader', scopes: ['read'] }, { authorization: `Bearer ${admin}` });
    assert.equal(token.status, 201, JSON.stringify(token.body));
    await assert.rejects(downloadFile({ repo: 'secret', path: 'w.bin', hubUrl: `${srv.url}/hf` }));
    // @huggingface/hub only takes `hf_…` tokens itself; a fetch that adds the header is its way for others
    const withToken: typeof fetch = (input, init) =>
      fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), authorization: `Bearer ${token.body.token}` } });
    const blob = await downloadFile({ repo: 'secret', path: 'w.bin', revision: '1', hubUrl: `${srv.url}/hf`, fetch: withToken });
    assert.ok(blob);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(data));
    const anonymous = await fetch(`${srv.url}/hf/secret/resolve/1/w.bin`, { method: 'HEAD' });
    assert.equal(anonymous.status, 401);
  });
});
