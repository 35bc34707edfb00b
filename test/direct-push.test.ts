// Pushes that bypass the server (issue 17): with S3 storage `cairn push` cuts
// and encodes the chunks itself, puts only the missing ones into the bucket
// through presigned PUTs, and appends the file as a chunk list — and the
// server trusts none of it. Against the real S3 server (Ceph RGW): the CLI's
// direct push and its dedup, chunk ids equal to the server's own, staged
// objects that lie (other bytes, a valid object of other content, a bomb),
// chunks the caller may not use, expiring URLs, scopes, the staging bound,
// gc of staged objects. With fs storage: 409 DIRECT_UNAVAILABLE and the CLI
// sends the bytes through the server.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { ChunkMap } from '../src/api/index.ts';
import { chunkKey, STAGING_PREFIX } from '../src/blobs/layout.ts';
import { cutFile } from '../src/cli/direct-push.ts';
import { Progress } from '../src/cli/progress.ts';
import { encodeChunk, sha256 } from '../src/codecs/codec.ts';
import { CodecPool } from '../src/codecs/codec-pool.ts';
import { bearer, createToken, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { compressibleBytes, digestOf, mixedCodecBytes, MiB, randomBytesFor } from './support/bytes.ts';
import { cairnJson } from './support/cli-in-process.ts';
import { s3TestConfig, startTestServer, storageKinds, type TestServer } from './support/server.ts';

async function call(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A safetensors file: a JSON header, then F16 tensors of assorted sizes (tiny ones among them). */
function safetensorsBytes(seed: string): Buffer {
  const sizes = [3 * MiB, 64, 2 * MiB + 6, 128, 128, 1 * MiB, 5 * MiB, 256];
  const header: Record<string, unknown> = {};
  let at = 0;
  sizes.forEach((size, i) => {
    header[`t${i}`] = { dtype: 'F16', shape: [size / 2], data_offsets: [at, at + size] };
    at += size;
  });
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const noise = randomBytesFor(seed, at);
  for (let i = 1; i < at; i += 2) noise[i] = 0x3c + (noise[i]! & 3);
  return Buffer.concat([length, json, noise]);
}

const s3 = storageKinds.includes('s3');
const silent = () => new Progress(false, new PassThrough());

describe('direct pushes, S3 storage', { skip: !s3 && 'no S3 server configured' }, () => {
  let server: TestServer;
  let work: string;
  let env: Record<string, string>;
  let pool: CodecPool;

  before(async () => {
    server = await startTestServer('s3');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-push-'));
    env = { CAIRN_URL: server.url };
    pool = new CodecPool(2);
  });
  after(async () => {
    await pool?.close();
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  const staged = async () => {
    const keys: string[] = [];
    for await (const key of server.cairn.driver.list(STAGING_PREFIX)) keys.push(key);
    return keys;
  };

  test('cairn push puts the chunks straight into S3, encoded; the version pulls back identical and nothing stays staged', async () => {
    const data = mixedCodecBytes('push-a');
    await fs.writeFile(path.join(work, 'a.bin'), data);
    const out = await cairnJson(['push', 'dp/a@1.0', 'a.bin'], env, work);
    const [file] = out.files;
    assert.equal(file.direct, true);
    assert.equal(file.status, 'uploaded');
    assert.equal(file.digest, digestOf(data));
    // encoded: the text and bf16 parts shrink, the random part does not
    assert.ok(file.bytes_sent > 6 * MiB && file.bytes_sent < data.length * 0.8, `${file.bytes_sent} of ${data.length} bytes sent`);
    const res = await fetch(`${server.url}/v1/models/dp/a/versions/1.0/files/a.bin`);
    assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), digestOf(data));
    const map = (await call(`${server.url}/v1/models/dp/a/versions/1.0/files/a.bin/chunks`, 'GET')).body as ChunkMap;
    assert.deepEqual(new Set(map.chunks.map((c) => c.codec)), new Set(['raw', 'zstd', 'zstd-bg2']));
    for (const c of map.chunks) assert.ok(await server.cairn.driver.stat(chunkKey(c.digest)), `chunk ${c.digest} stored`);
    assert.deepEqual(await staged(), [], 'staged objects are deleted once adopted');
  });

  test('chunk ids are the same whichever side cut them (tensor boundaries included)', async () => {
    const data = safetensorsBytes('same-cuts');
    await fs.writeFile(path.join(work, 'model.safetensors'), data);
    const proxied = await cairnJson(['push', 'dp/cuts@1.0', 'model.safetensors', '--via-server'], env, work);
    assert.equal(proxied.files[0].direct, false);
    const map = (await call(`${server.url}/v1/models/dp/cuts/versions/1.0/files/model.safetensors/chunks`, 'GET')).body as ChunkMap;
    const cut = await cutFile(path.join(work, 'model.safetensors'), pool, silent());
    assert.ok(cut.layout, 'the CLI read the tensor layout');
    assert.equal(cut.digest, digestOf(data));
    assert.deepEqual(
      cut.chunks.map((c) => [c.offset, c.size, c.digest]),
      map.chunks.map((c) => [c.offset, c.size, c.digest]),
    );
    // so a direct push of the same tensors after a longer header sends only what changed
    const v2 = Buffer.from(data);
    v2[9] = v2[9]!; // same bytes: the blob exists, nothing is sent at all
    const again = await cairnJson(['push', 'dp/cuts@1.1', 'model.safetensors'], env, work);
    assert.equal(again.files[0].status, 'skipped');
  });

  test('a v2 that shares 90% of its chunks with v1 sends only the changed chunks', async () => {
    const v1 = randomBytesFor('dedup-v1', 48 * MiB);
    await fs.writeFile(path.join(work, 'big.bin'), v1);
    const first = await cairnJson(['push', 'dp/dedup@1', 'big.bin'], env, work);
    assert.ok(first.files[0].bytes_sent >= v1.length);
    const cut = await cutFile(path.join(work, 'big.bin'), pool, silent());
    assert.ok(cut.chunks.length >= 10, `${cut.chunks.length} chunks`);
    // every 10th chunk changes in its middle, far from the cut points
    const v2 = Buffer.from(v1);
    let changed = 0;
    cut.chunks.forEach((c, i) => {
      if (i % 10 !== 5) return;
      randomBytesFor(`dedup-v2-${i}`, 4096).copy(v2, c.offset + Math.floor(c.size / 2));
      changed += c.size;
    });
    await fs.writeFile(path.join(work, 'big.bin'), v2);
    const second = await cairnJson(['push', 'dp/dedup@2', 'big.bin'], env, work);
    // random bytes: each changed chunk is sent raw, one codec byte more (bench/push-pull.ts prints the figure for 512 MiB)
    const sent = second.files[0].bytes_sent;
    const changedChunks = cut.chunks.filter((_, i) => i % 10 === 5).length;
    assert.equal(sent, changed + changedChunks, `sent ${sent} bytes; ${changed} in the ${changedChunks} changed chunks of ${cut.chunks.length}`);
    const res = await fetch(`${server.url}/v1/models/dp/dedup/versions/2/files/big.bin`);
    assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), digestOf(v2));
  });

  /** A session with one staged chunk claimed as `raw`, whose staged object is `object`; returns the append's answer. */
  async function appendLie(raw: Uint8Array, object: Uint8Array): Promise<{ status: number; body: any; session: string }> {
    const session = (await call(`${server.url}/v1/uploads`, 'POST')).body.id as string;
    const digest = sha256(raw);
    const urls = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks: [{ digest, stored_size: object.length }] });
    assert.equal(urls.status, 200, JSON.stringify(urls.body));
    const put = await fetch(urls.body.urls[0].url, { method: 'PUT', body: Buffer.from(object) });
    assert.equal(put.status, 200);
    const appended = await call(`${server.url}/v1/uploads/${session}/chunks`, 'POST', { offset: 0, chunks: [{ digest, size: raw.length }] });
    return { ...appended, session };
  }

  test('a staged object that does not hold the chunk it claims is refused, deleted, never recorded nor served', async () => {
    const raw = compressibleBytes(MiB, 'claimed');
    const honest = encodeChunk(raw).stored;
    const bomb = Buffer.from(encodeChunk(Buffer.alloc(64 * MiB)).stored); // a few KiB that inflate to 64 MiB
    const cases: Array<[string, Uint8Array]> = [
      ['same size, other bytes', Buffer.concat([honest.subarray(0, 1), randomBytesFor('liar', honest.length - 1)])],
      ['a valid object of other content of the same size', encodeChunk(compressibleBytes(MiB, 'other')).stored],
      ['an object that declares another size (a bomb)', bomb],
      ['an unknown codec', Buffer.concat([Buffer.from([9]), raw])],
    ];
    for (const [what, object] of cases) {
      const { status, body, session } = await appendLie(raw, object);
      assert.equal(status, 400, `${what}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'CHUNK_MISMATCH', what);
      assert.deepEqual((await call(`${server.url}/v1/chunks/missing`, 'POST', { digests: [sha256(raw)] })).body.missing, [sha256(raw)], `${what}: never recorded`);
      assert.equal((await call(`${server.url}/v1/uploads/${session}`, 'GET')).body.offset, 0, `${what}: the session holds nothing`);
      assert.equal((await staged()).filter((k) => k.includes(session)).length, 0, `${what}: the staged object was deleted`);
      const finish = await call(`${server.url}/v1/uploads/${session}?digest=${sha256(raw)}`, 'PUT');
      assert.equal(finish.body.error.code, 'DIGEST_MISMATCH', `${what}: nothing to finish`);
      assert.equal((await fetch(`${server.url}/v1/blobs/${sha256(raw)}`, { method: 'HEAD' })).status, 404, `${what}: no blob`);
    }
    // the honest object goes through
    const { status, body } = await appendLie(raw, honest);
    assert.equal(status, 202, JSON.stringify(body));
    assert.equal(body.offset, raw.length);
  });

  test('chunks neither staged nor stored, and lists that do not add up, are refused', async () => {
    const session = (await call(`${server.url}/v1/uploads`, 'POST')).body.id as string;
    const unknown = sha256(randomBytesFor('nowhere', 100));
    const missing = await call(`${server.url}/v1/uploads/${session}/chunks`, 'POST', { offset: 0, chunks: [{ digest: unknown, size: 100 }] });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, 'CHUNK_MISSING');
    const wrongOffset = await call(`${server.url}/v1/uploads/${session}/chunks`, 'POST', { offset: 5, chunks: [{ digest: unknown, size: 100 }] });
    assert.equal(wrongOffset.status, 409);
    assert.equal(wrongOffset.body.error.code, 'UPLOAD_OFFSET_MISMATCH');
    for (const body of [{ offset: 0, chunks: [] }, { offset: 0, chunks: [{ digest: 'sha256:zz', size: 1 }] }, { offset: 0, chunks: [{ digest: unknown, size: 0 }] }, { offset: -1, chunks: [] }, { digests: 'x' }]) {
      const bad = await call(`${server.url}/v1/uploads/${session}/chunks`, 'POST', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.match(bad.body.error.code, /^(INVALID_ARGUMENT|INVALID_DIGEST)$/);
    }
    // chunks that verify one by one, claimed under another file digest: finishing refuses it
    const raw = randomBytesFor('parts', 3000);
    const lie = await appendLie(raw, encodeChunk(raw).stored);
    assert.equal(lie.status, 202);
    const finish = await call(`${server.url}/v1/uploads/${lie.session}?digest=${digestOf(Buffer.from('something else'))}`, 'PUT');
    assert.equal(finish.status, 400);
    assert.equal(finish.body.error.code, 'DIGEST_MISMATCH');
  });

  test('a session may not stage more than 2 GiB at once', async () => {
    const session = (await call(`${server.url}/v1/uploads`, 'POST')).body.id as string;
    const chunks = Array.from({ length: 257 }, (_, i) => ({ digest: sha256(Buffer.from(`limit-${i}`)), stored_size: 8 * MiB }));
    const over = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks });
    assert.equal(over.status, 413);
    assert.equal(over.body.error.code, 'STAGING_LIMIT');
    const under = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks: chunks.slice(0, 200) });
    assert.equal(under.status, 200, JSON.stringify(under.body));
    const tooBig = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks: [{ digest: chunks[0]!.digest, stored_size: 9 * MiB }] });
    assert.equal(tooBig.body.error.code, 'INVALID_ARGUMENT');
  });

  test('a staged PUT must be exactly the size it was signed for', async () => {
    const session = (await call(`${server.url}/v1/uploads`, 'POST')).body.id as string;
    const urls = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks: [{ digest: sha256(Buffer.from('x')), stored_size: 1000 }] });
    const longer = await fetch(urls.body.urls[0].url, { method: 'PUT', body: Buffer.alloc(5000) });
    assert.equal(longer.status, 403, 'RGW refuses a body of another length');
    await longer.body?.cancel();
  });

  test('gc deletes the staged objects of sessions that are gone', async () => {
    const raw = randomBytesFor('left-behind', 5000);
    const session = (await call(`${server.url}/v1/uploads`, 'POST')).body.id as string;
    const urls = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks: [{ digest: sha256(raw), stored_size: raw.length + 1 }] });
    assert.equal((await fetch(urls.body.urls[0].url, { method: 'PUT', body: Buffer.from(encodeChunk(raw).stored) })).status, 200);
    const mine = async () => (await staged()).filter((k) => k.includes(session));
    assert.equal((await mine()).length, 1);
    const kept = await call(`${server.url}/v1/admin/gc`, 'POST', {});
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    assert.equal((await mine()).length, 1, 'a live session keeps its staged objects');
    const swept = await call(`${server.url}/v1/admin/gc`, 'POST', { upload_ttl_seconds: 0 });
    assert.ok(swept.body.uploads_expired >= 1);
    assert.ok(swept.body.staged_objects_deleted >= 1, JSON.stringify(swept.body));
    assert.deepEqual(await mine(), []);
  });
});

describe('direct pushes: URLs expire', { skip: !s3 && 'no S3 server configured' }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('s3', { presignSeconds: 1 });
  });
  after(() => server?.stop());

  test('a staging URL is refused by S3 once its lifetime has passed', async () => {
    const session = (await call(`${server.url}/v1/uploads`, 'POST')).body.id as string;
    const raw = randomBytesFor('late', 2000);
    const urls = await call(`${server.url}/v1/uploads/${session}/staging`, 'POST', { chunks: [{ digest: sha256(raw), stored_size: raw.length + 1 }] });
    assert.ok(Date.parse(urls.body.expires_at) <= Date.now() + 1500);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // the URL's lifetime runs out (the point: expiry is time passing)
    const late = await fetch(urls.body.urls[0].url, { method: 'PUT', body: Buffer.from(encodeChunk(raw).stored) });
    assert.equal(late.status, 403, 'RGW refuses an expired URL');
    await late.body?.cancel();
  });
});

describe('direct pushes need write access, and see only what the caller may read', { skip: !s3 && 'no S3 server configured' }, () => {
  let server: AuthServer;
  let work: string;
  before(async () => {
    server = await startAuthServer({ s3: s3TestConfig() });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-push-auth-'));
  });
  after(async () => {
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test('a read token gets no presigned PUT; a team-a/* token cannot probe, reuse or map acme/* chunks', async () => {
    const data = mixedCodecBytes('tenant-acme');
    await fs.writeFile(path.join(work, 'acme.bin'), data);
    await cairnJson(['push', 'acme/secret@1.0', 'acme.bin'], { CAIRN_URL: server.url, CAIRN_TOKEN: server.adminToken }, work);
    const map = (await call(`${server.url}/v1/models/acme/secret/versions/1.0/files/acme.bin/chunks`, 'GET', undefined, bearer(server.adminToken))).body as ChunkMap;
    const acmeChunk = map.chunks[0]!;

    const reader = await createToken(server, { name: 'reader', scope: 'read' });
    const anyChunk = { digest: acmeChunk.digest, stored_size: acmeChunk.stored_size };
    assert.equal((await call(`${server.url}/v1/uploads/whatever/staging`, 'POST', { chunks: [anyChunk] }, bearer(reader))).status, 403);
    assert.equal((await call(`${server.url}/v1/chunks/missing`, 'POST', { digests: [acmeChunk.digest] }, bearer(reader))).status, 403);
    assert.equal((await call(`${server.url}/v1/chunks/missing`, 'POST', { digests: [] })).status, 401);

    const teamA = await createToken(server, { name: 'team-a-writer', scope: 'write', models: ['team-a/*'] });
    // acme's chunks are "missing" to team-a: no oracle of what other tenants store
    const probe = await call(`${server.url}/v1/chunks/missing`, 'POST', { digests: map.chunks.map((c) => c.digest) }, bearer(teamA));
    assert.equal(probe.status, 200);
    assert.deepEqual(probe.body.missing.sort(), [...new Set(map.chunks.map((c) => c.digest))].sort());
    // nor can it build a file of them by digest
    const session = (await call(`${server.url}/v1/uploads`, 'POST', undefined, bearer(teamA))).body.id as string;
    const reuse = await call(`${server.url}/v1/uploads/${session}/chunks`, 'POST', { offset: 0, chunks: [{ digest: acmeChunk.digest, size: acmeChunk.size }] }, bearer(teamA));
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error.code, 'CHUNK_MISSING');
    // nor map them
    assert.equal((await call(`${server.url}/v1/models/acme/secret/versions/1.0/files/acme.bin/chunks`, 'GET', undefined, bearer(teamA))).status, 403);
    // another token's session does not exist for it
    const adminSession = (await call(`${server.url}/v1/uploads`, 'POST', undefined, bearer(server.adminToken))).body.id as string;
    const foreign = await call(`${server.url}/v1/uploads/${adminSession}/staging`, 'POST', { chunks: [anyChunk] }, bearer(teamA));
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.error.code, 'UPLOAD_NOT_FOUND');

    // a writer of acme/* who can read the version builds on its chunks without sending them
    const acmeWriter = await createToken(server, { name: 'acme-writer', scope: 'write', models: ['acme/*'] });
    const own = await call(`${server.url}/v1/chunks/missing`, 'POST', { digests: [acmeChunk.digest] }, bearer(acmeWriter));
    assert.deepEqual(own.body.missing, []);
    const longer = Buffer.concat([data, randomBytesFor('tail', 3 * MiB)]);
    await fs.writeFile(path.join(work, 'acme.bin'), longer);
    const pushed = await cairnJson(['push', 'acme/secret@1.1', 'acme.bin'], { CAIRN_URL: server.url, CAIRN_TOKEN: acmeWriter }, work);
    assert.equal(pushed.files[0].direct, true);
    assert.ok(pushed.files[0].bytes_sent < 6 * MiB, `only the new tail (and the chunk it changed) was sent: ${pushed.files[0].bytes_sent}`);
  });
});

describe('fs storage: no direct push, the CLI sends the bytes through the server', () => {
  let server: TestServer;
  let work: string;
  before(async () => {
    server = await startTestServer('fs');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-direct-push-fs-'));
  });
  after(async () => {
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test('409 DIRECT_UNAVAILABLE, and cairn push still works', async () => {
    for (const [p, body] of [
      ['/v1/chunks/missing', { digests: [] }],
      ['/v1/uploads/x/staging', { chunks: [] }],
      ['/v1/uploads/x/chunks', { offset: 0, chunks: [{ digest: sha256(Buffer.from('a')), size: 1 }] }],
    ] as const) {
      const res = await call(`${server.url}${p}`, 'POST', body);
      assert.equal(res.status, 409, p);
      assert.equal(res.body.error.code, 'DIRECT_UNAVAILABLE', p);
    }
    const data = mixedCodecBytes('fs-push');
    await fs.writeFile(path.join(work, 'f.bin'), data);
    const out = await cairnJson(['push', 'dp/fs@1', 'f.bin'], { CAIRN_URL: server.url }, work);
    assert.equal(out.files[0].direct, false);
    assert.equal(out.files[0].bytes_sent, data.length);
  });
});
