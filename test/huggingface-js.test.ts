// The Hugging Face Hub API driven by @huggingface/hub (the Hub's JavaScript
// client) against a real server with tokens on: it uploads (createRepo,
// uploadFiles through git LFS — its multipart transfer sends five parts at
// once — and commit with a deletion) and reads back (snapshotDownload,
// downloadFileToCacheDir, fileExists, listCommits, listModels, whoAmI). The
// client takes only `hf_`-prefixed tokens (lib/who-am-i.ts checkCredentials):
// Cairn accepts `hf_<cairn token>`.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commit, createRepo, downloadFileToCacheDir, fileExists, listCommits, listModels, snapshotDownload, uploadFiles, whoAmI } from '@huggingface/hub';
import { MiB, randomBytesFor, sha256hex as sha256 } from './support/bytes.ts';
import { bearer, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { bodyOf, call } from './support/http-client.ts';


async function digestsUnder(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    const p = path.join(entry.parentPath, entry.name);
    // the cache's snapshot files are symlinks to its blobs
    if (!(await fs.stat(p)).isFile()) continue;
    out[path.relative(root, p).split(path.sep).join('/')] = sha256(await fs.readFile(p));
  }
  return out;
}

describe('@huggingface/hub uploads to Cairn and reads it back', () => {
  let server: AuthServer;
  let hubUrl: string;
  let accessToken: string;
  let cacheDir: string;
  // over 64 MiB: the batch answer offers multipart (64 MiB parts), so the client sends two parts at once
  const weights = randomBytesFor('hf-js-weights', 70 * MiB + 3);
  const config = Buffer.from('{"model_type":"tiny"}\n');
  const repo = { type: 'model' as const, name: 'acme/js-tiny' };

  before(async () => {
    server = await startAuthServer();
    hubUrl = `${server.url}/hf`;
    accessToken = `hf_${server.adminToken}`;
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-hf-js-'));
  });
  after(async () => {
    await server?.stop();
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  test('createRepo, uploadFiles (multipart LFS), commit with a deletion; every revision reads back', { timeout: 300_000 }, async () => {
    const made = await createRepo({ repo, hubUrl, accessToken });
    assert.equal(made.repoUrl, `${hubUrl}/acme/js-tiny`);
    const first = await uploadFiles({
      repo,
      hubUrl,
      accessToken,
      commitTitle: 'weights and config',
      files: [
        { path: 'model.bin', content: new Blob([bodyOf(weights)]) },
        { path: 'config.json', content: new Blob([bodyOf(config)]) },
        { path: 'extra/readme.txt', content: new Blob(['extra\n']) },
      ],
    });
    assert.match(first?.commit.oid ?? '', /^[0-9a-f]{40}$/);
    const second = await commit({ repo, hubUrl, accessToken, title: 'drop extra', operations: [{ operation: 'delete', path: 'extra/readme.txt' }] });
    assert.match(second?.commit.oid ?? '', /^[0-9a-f]{40}$/);

    const firstDir = await snapshotDownload({ repo, hubUrl, accessToken, cacheDir, revision: first!.commit.oid });
    assert.deepEqual(await digestsUnder(firstDir), { 'model.bin': sha256(weights), 'config.json': sha256(config), 'extra/readme.txt': sha256(Buffer.from('extra\n')) });
    const mainDir = await snapshotDownload({ repo, hubUrl, accessToken, cacheDir });
    assert.deepEqual(await digestsUnder(mainDir), { 'model.bin': sha256(weights), 'config.json': sha256(config) });
    const cached = await downloadFileToCacheDir({ repo, hubUrl, accessToken, cacheDir, path: 'config.json' });
    assert.deepEqual(await fs.readFile(cached), config);

    // fileExists is a HEAD of /raw/
    assert.equal(await fileExists({ repo, hubUrl, accessToken, path: 'config.json' }), true);
    assert.equal(await fileExists({ repo, hubUrl, accessToken, path: 'extra/readme.txt' }), false);
    assert.equal(await fileExists({ repo, hubUrl, accessToken, path: 'extra/readme.txt', revision: first!.commit.oid }), true);

    const log = [];
    for await (const c of listCommits({ repo, hubUrl, accessToken, batchSize: 1 })) log.push([c.oid, c.title]);
    assert.deepEqual(log, [
      [second!.commit.oid, 'drop extra'],
      [first!.commit.oid, 'weights and config'],
    ]);
    const models = [];
    for await (const m of listModels({ hubUrl, accessToken, search: { owner: 'acme' } })) models.push(m.name);
    assert.deepEqual(models, ['acme/js-tiny']);
    const me = await whoAmI({ hubUrl, accessToken });
    assert.equal(me.name, 'admin');
    // the client's error carries Cairn's message (the body's `error` is a string, not an object: no "[object Object]")
    await assert.rejects(
      uploadFiles({ repo: { type: 'model', name: 'acme/nope' }, hubUrl, accessToken, files: [{ path: 'a.txt', content: new Blob(['a']) }] }),
      (err: Error) => /model acme\/nope does not exist/.test(err.message) && !err.message.includes('[object Object]'),
    );

    // Cairn's side: two versions, the second derived from the first, the weights stored once
    const versions = await call(server.url, 'GET', '/v1/models/acme/js-tiny/versions', undefined, bearer(server.adminToken));
    assert.deepEqual(versions.body.versions.map((v: any) => v.version).sort(), ['1', '2']);
  });
});
