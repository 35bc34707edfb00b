// Pulls that bypass the server (issue 17): with S3 storage the server hands out
// a file's chunk map with presigned GETs and `cairn pull` fetches, decodes and
// verifies the chunks itself. Against the real S3 server (Ceph RGW): the map
// and its access rules, URLs that expire, the CLI's direct pull, its resume,
// and chunk objects tampered with in the bucket (never written out as the
// file). With fs storage: 409 DIRECT_UNAVAILABLE, and the CLI falls back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChunkMap } from '../src/api/index.ts';
import { decodeChunk, encodeChunk } from '../src/codecs/codec.ts';
import { chunkKey } from '../src/blobs/layout.ts';
import { partialPath } from '../src/cli/direct-pull.ts';
import { bearer, createToken, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { compressibleBytes, digestOf, mixedCodecBytes, MiB, randomBytesFor } from './support/bytes.ts';
import { cairn, cairnJson } from './support/cli-in-process.ts';
import { s3TestConfig, startTestServer, storageKinds, type TestServer } from './support/server.ts';

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json() };
}

const s3 = storageKinds.includes('s3');

describe('chunk maps and direct pulls, S3 storage', { skip: !s3 && 'no S3 server configured' }, () => {
  let server: TestServer;
  let work: string;
  let env: Record<string, string>;
  const data = mixedCodecBytes('direct-a');
  const digest = digestOf(data);

  before(async () => {
    server = await startTestServer('s3');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-'));
    env = { CAIRN_URL: server.url };
    await fs.writeFile(path.join(work, 'model.bin'), data);
    await cairnJson(['push', 'direct@1.0', path.join(work, 'model.bin')], env, work);
  });
  after(async () => {
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test('the chunk map tiles the file, and its URLs fetch the stored objects straight from S3', async () => {
    const { status, body } = await getJson(`${server.url}/v1/models/direct/versions/1.0/files/model.bin/chunks`);
    assert.equal(status, 200, JSON.stringify(body));
    const map = body as ChunkMap;
    assert.equal(map.size, data.length);
    assert.equal(map.digest, digest);
    assert.ok(map.chunks.length >= 4, `${map.chunks.length} chunks`);
    assert.ok(Date.parse(map.expires_at) > Date.now() + 200_000, 'default lifetime: 300 s');
    assert.deepEqual(new Set(map.chunks.map((c) => c.codec)), new Set(['raw', 'zstd', 'zstd-bg2']));
    let offset = 0;
    for (const chunk of map.chunks) {
      assert.equal(chunk.offset, offset);
      const url = new URL(chunk.url);
      assert.equal(url.origin, new URL(process.env.CAIRN_S3_ENDPOINT!).origin, 'the URL points at S3, not at Cairn');
      const res = await fetch(chunk.url);
      assert.equal(res.status, 200);
      const stored = new Uint8Array(await res.arrayBuffer());
      assert.equal(stored.length, chunk.stored_size);
      const raw = decodeChunk(stored, chunk.digest);
      assert.ok(data.subarray(chunk.offset, chunk.offset + chunk.size).equals(raw));
      offset += chunk.size;
    }
    assert.equal(offset, data.length);

    // a range: only the chunks overlapping it
    const mid = map.chunks[2]!;
    const part = await getJson(`${server.url}/v1/models/direct/versions/1.0/files/model.bin/chunks?range=${mid.offset + 1}-${mid.offset + 2}`);
    assert.equal(part.status, 200);
    assert.deepEqual(part.body.chunks.map((c: { digest: string }) => c.digest), [mid.digest]);
    assert.equal(part.body.start, mid.offset + 1);
    const open = await getJson(`${server.url}/v1/models/direct/versions/1.0/files/model.bin/chunks?range=${map.chunks.at(-1)!.offset}-`);
    assert.equal(open.body.chunks.length, 1);
  });

  test('bad ranges and unknown files are refused with their codes', async () => {
    const base = `${server.url}/v1/models/direct/versions/1.0/files`;
    assert.equal((await getJson(`${base}/model.bin/chunks?range=abc`)).body.error.code, 'INVALID_ARGUMENT');
    const past = await getJson(`${base}/model.bin/chunks?range=${data.length}-`);
    assert.equal(past.status, 416);
    assert.equal(past.body.error.code, 'RANGE_NOT_SATISFIABLE');
    const missing = await getJson(`${base}/nope.bin/chunks`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'FILE_NOT_FOUND');
  });

  test('a file whose own path ends in /chunks is still served as a file', async () => {
    const dir = path.join(work, 'tree');
    await fs.mkdir(path.join(dir, 'weights'), { recursive: true });
    await fs.writeFile(path.join(dir, 'weights', 'chunks'), 'not a chunk map');
    await cairnJson(['push', 'direct-tree@1.0', dir], env, work);
    const res = await fetch(`${server.url}/v1/models/direct-tree/versions/1.0/files/weights/chunks`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'not a chunk map');
    const map = await getJson(`${server.url}/v1/models/direct-tree/versions/1.0/files/weights/chunks/chunks`);
    assert.equal(map.status, 200);
    assert.equal(map.body.path, 'weights/chunks');
  });

  test('cairn pull fetches the chunks from S3, checks them and the file, and writes it', async () => {
    const out = path.join(work, 'out-direct');
    const result = await cairnJson(['pull', 'direct@1.0', '-o', out], env, work);
    assert.equal(result.files[0].via, 'storage');
    assert.equal(result.summary.from_storage, 1);
    assert.ok(result.summary.bytes_received < data.length, 'compressed chunks cross, not raw bytes');
    const written = await fs.readFile(path.join(out, 'model.bin'));
    assert.equal(digestOf(written), digest);
    assert.deepEqual((await fs.readdir(out)).filter((f) => f.endsWith('.cairn-partial')), [], 'no partial file left');

    const proxied = await cairnJson(['pull', 'direct@1.0', '-o', path.join(work, 'out-proxied'), '--via-server'], env, work);
    assert.equal(proxied.files[0].via, 'server');
    assert.equal(proxied.summary.bytes_received, data.length);
  });

  test('an interrupted direct pull resumes: chunks already on disk that check out are kept, the rest fetched', async () => {
    const out = path.join(work, 'out-resume');
    await fs.mkdir(out, { recursive: true });
    const map = (await getJson(`${server.url}/v1/models/direct/versions/1.0/files/model.bin/chunks`)).body as ChunkMap;
    const dest = path.join(out, 'model.bin');
    const doc = { path: 'model.bin', size: data.length, digest } as Parameters<typeof partialPath>[1];
    // what a cut pull leaves: the first chunks written, one of them damaged since, the rest missing
    const keep = map.chunks[3]!.offset + map.chunks[3]!.size;
    const partial = Buffer.from(data.subarray(0, keep));
    partial[map.chunks[1]!.offset + 10]! ^= 0xff;
    await fs.writeFile(partialPath(dest, doc), partial);
    const result = await cairnJson(['pull', 'direct@1.0', '-o', out], env, work);
    assert.equal(result.files[0].via, 'storage');
    const refetched = map.chunks.filter((c, i) => i === 1 || i > 3).reduce((n, c) => n + c.stored_size, 0);
    assert.equal(result.summary.bytes_received, refetched, 'only the damaged and the missing chunks are fetched');
    assert.equal(digestOf(await fs.readFile(dest)), digest);
  });

  test('gc keeps the chunks of a map handed out while its URLs work, even once the version is deleted', async () => {
    const data = randomBytesFor('direct-gc', 3 * MiB);
    await fs.writeFile(path.join(work, 'gc.bin'), data);
    await cairnJson(['push', 'gone@1.0', path.join(work, 'gc.bin')], env, work);
    const map = (await getJson(`${server.url}/v1/models/gone/versions/1.0/files/gc.bin/chunks`)).body as ChunkMap;
    assert.equal((await fetch(`${server.url}/v1/models/gone/versions/1.0`, { method: 'DELETE' })).status, 204);
    const gc = await fetch(`${server.url}/v1/admin/gc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grace_seconds: 0 }) });
    assert.equal(gc.status, 200, await gc.text());
    for (const chunk of map.chunks) {
      const res = await fetch(chunk.url);
      assert.equal(res.status, 200, `chunk at ${chunk.offset} still fetchable`);
      assert.ok(data.subarray(chunk.offset, chunk.offset + chunk.size).equals(decodeChunk(new Uint8Array(await res.arrayBuffer()), chunk.digest)));
    }
  });

  test('chunk objects tampered with in the bucket are never written out as the file', async (t) => {
    const victim = mixedCodecBytes('direct-victim');
    await fs.writeFile(path.join(work, 'victim.bin'), victim);
    await cairnJson(['push', 'victim@1.0', path.join(work, 'victim.bin')], env, work);
    const map = (await getJson(`${server.url}/v1/models/victim/versions/1.0/files/victim.bin/chunks`)).body as ChunkMap;
    const rawChunk = map.chunks.find((c) => c.codec === 'raw')!;
    const key = chunkKey(rawChunk.digest);
    const { driver } = server.cairn;
    const original = await driver.get(key);
    const replace = async (bytes: Uint8Array) => {
      await driver.delete(key);
      await driver.put(key, bytes);
    };
    t.after(() => replace(original));

    const cases: Array<[string, Uint8Array]> = [
      // the same size, other bytes
      ['same size, different content', Buffer.concat([original.subarray(0, 1), randomBytesFor('tamper', original.length - 1)])],
      // a perfectly valid object, of other content of the same size
      ['a valid compressed object of other content', encodeChunk(compressibleBytes(rawChunk.size, 'other')).stored],
    ];
    for (const [what, bytes] of cases) {
      await replace(bytes);
      const out = path.join(work, `out-tampered-${cases.findIndex((c) => c[0] === what)}`);
      const run = await cairn(['pull', 'victim@1.0', '-o', out, '--json'], env, work);
      assert.equal(run.code, 1, `${what}: ${run.stdout}`);
      assert.equal(JSON.parse(run.stdout).error.code, 'DIGEST_MISMATCH', what);
      await assert.rejects(fs.stat(path.join(out, 'victim.bin')), { code: 'ENOENT' }, `${what}: never written under its name`);
      // and the server does not serve it either
      const res = await fetch(`${server.url}/v1/models/victim/versions/1.0/files/victim.bin`);
      const served = await res.arrayBuffer().then(() => true, () => false);
      assert.ok(res.status !== 200 || !served, `${what}: the server cuts the download rather than serve it`);
    }
  });
});

describe('presigned URLs expire', { skip: !s3 && 'no S3 server configured' }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('s3', { presignSeconds: 1 });
  });
  after(() => server?.stop());

  test('a chunk URL is refused by S3 once its lifetime (CAIRN_PRESIGN_SECONDS) has passed', async () => {
    const form = new FormData();
    form.append('version', '1.0');
    form.append('file', new Blob([new Uint8Array(randomBytesFor('expiry', 256 * 1024))]), 'w.bin');
    assert.equal((await fetch(`${server.url}/v1/models/expiry/versions`, { method: 'POST', body: form })).status, 201);
    const map = (await getJson(`${server.url}/v1/models/expiry/versions/1.0/files/w.bin/chunks`)).body as ChunkMap;
    assert.equal((await fetch(map.chunks[0]!.url)).status, 200, 'valid at first');
    await new Promise((resolve) => setTimeout(resolve, 2500)); // the URL's lifetime runs out (the point: expiry is time passing)
    const late = await fetch(map.chunks[0]!.url);
    assert.equal(late.status, 403, 'RGW refuses an expired URL');
    await late.body?.cancel();
  });

  test('the CLI asks for a fresh URL when one has expired', async () => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-expiry-'));
    try {
      // every URL of the first map is stale by the time the CLI uses it: its answer is held back past their lifetime
      const data = randomBytesFor('expiry-cli', 3 * MiB);
      await fs.writeFile(path.join(work, 'w.bin'), data);
      await cairnJson(['push', 'expiry-cli@1.0', path.join(work, 'w.bin')], { CAIRN_URL: server.url }, work);
      const realFetch = globalThis.fetch;
      let maps = 0;
      globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
        const res = await realFetch(input, init);
        if (String(input).includes('/chunks') && maps++ === 0) await new Promise((resolve) => setTimeout(resolve, 2500));
        return res;
      }) as typeof fetch;
      try {
        const result = await cairnJson(['pull', 'expiry-cli@1.0', '-o', path.join(work, 'out')], { CAIRN_URL: server.url }, work);
        assert.equal(result.files[0].via, 'storage');
        assert.ok(maps >= 2, `the map was asked for again (${maps} maps)`);
      } finally {
        globalThis.fetch = realFetch;
      }
      assert.equal(digestOf(await fs.readFile(path.join(work, 'out', 'w.bin'))), digestOf(data));
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
});

describe('storage the client cannot reach', { skip: !s3 && 'no S3 server configured' }, () => {
  let server: TestServer;
  let forwarder: net.Server;
  let work: string;
  before(async () => {
    // S3 as the server sees it, through a forwarder that cuts every presigned request (the client's):
    // the bucket answers the server, never the client, like an endpoint on the server's private network
    const target = new URL(process.env.CAIRN_S3_ENDPOINT!);
    forwarder = net.createServer((client) => {
      client.once('data', (first: Buffer) => {
        if (first.toString('latin1').includes('X-Amz-Signature=')) return void client.destroy();
        const upstream = net.connect(Number(target.port), target.hostname, () => {
          upstream.write(first);
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      });
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(forwarder.address() as net.AddressInfo).port}`;
    server = await startTestServer('s3', { s3: { ...s3TestConfig()!, endpoint } });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-unreachable-'));
  });
  after(async () => {
    await server?.stop();
    forwarder?.close();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test('cairn pull falls back to downloading through the server, and leaves no partial file', async () => {
    const data = randomBytesFor('unreachable', 3 * MiB);
    await fs.writeFile(path.join(work, 'u.bin'), data);
    const env = { CAIRN_URL: server.url };
    await cairnJson(['push', 'unreachable@1.0', path.join(work, 'u.bin')], env, work);
    const out = path.join(work, 'out');
    const result = await cairnJson(['pull', 'unreachable@1.0', '-o', out], env, work);
    assert.equal(result.files[0].via, 'server');
    assert.equal(digestOf(await fs.readFile(path.join(out, 'u.bin'))), digestOf(data));
    assert.deepEqual(await fs.readdir(out), ['u.bin']);
  });
});

describe('chunk maps need read access to the model', () => {
  let server: AuthServer;
  before(async () => {
    server = await startAuthServer({ s3: s3TestConfig() });
  });
  after(() => server?.stop());

  test('no token: 401; a token for team-a/*: 403 on acme/*; a reader of acme/*: the map', async () => {
    const form = new FormData();
    form.append('version', '1.0');
    form.append('file', new Blob([new Uint8Array(randomBytesFor('acl', 64 * 1024))]), 'w.bin');
    const res = await fetch(`${server.url}/v1/models/acme/secret/versions`, { method: 'POST', body: form, headers: bearer(server.adminToken) });
    assert.equal(res.status, 201, await res.text());
    const url = `${server.url}/v1/models/acme/secret/versions/1.0/files/w.bin/chunks`;
    const anonymous = await getJson(url);
    assert.equal(anonymous.status, 401);
    const teamA = await createToken(server, { name: 'team-a-reader', scope: 'read', models: ['team-a/*'] });
    const refused = await getJson(url, bearer(teamA));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'FORBIDDEN');
    const acme = await createToken(server, { name: 'acme-reader', scope: 'read', models: ['acme/*'] });
    const allowed = await getJson(url, bearer(acme));
    if (s3) {
      assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
      assert.equal(allowed.body.chunks.length, 1);
    } else {
      assert.equal(allowed.body.error.code, 'DIRECT_UNAVAILABLE');
    }
  });
});

describe('fs storage: no chunk maps, the CLI pulls through the server', () => {
  let server: TestServer;
  let work: string;
  before(async () => {
    server = await startTestServer('fs');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-fs-'));
  });
  after(async () => {
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test('409 DIRECT_UNAVAILABLE, and cairn pull still works', async () => {
    const data = mixedCodecBytes('direct-fs');
    await fs.writeFile(path.join(work, 'm.bin'), data);
    const env = { CAIRN_URL: server.url };
    await cairnJson(['push', 'fsmodel@1.0', path.join(work, 'm.bin')], env, work);
    const map = await getJson(`${server.url}/v1/models/fsmodel/versions/1.0/files/m.bin/chunks`);
    assert.equal(map.status, 409);
    assert.equal(map.body.error.code, 'DIRECT_UNAVAILABLE');
    const result = await cairnJson(['pull', 'fsmodel@1.0', '-o', path.join(work, 'out')], env, work);
    assert.equal(result.files[0].via, 'server');
    assert.equal(createHash('sha256').update(await fs.readFile(path.join(work, 'out', 'm.bin'))).digest('hex'), digestOf(data).slice(7));
  });
});
