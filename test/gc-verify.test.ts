// Maintenance end to end, on each storage kind: garbage collection (space of
// deleted versions returned, uploads in flight never robbed, expired sessions
// and orphan objects removed after their grace) and the integrity check
// (healthy store, a flipped chunk, a missing chunk), through the HTTP API, the
// collector itself (with a clock) and the real `cairn` bin.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chunkKey } from '../src/blobs/layout.ts';
import { digestOf, MiB, randomBytesFor, sha256hex } from './support/bytes.ts';
import { assertError, bodyOf, call, filePath, publishForm, pull } from './support/http-client.ts';
import { startTestServer, storageKinds, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';
import { waitFor } from './support/wait-for.ts';

const MODEL = 'gc-model';

function runCli(args: string[], url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CAIRN_')) env[k] = v;
  env.CAIRN_URL = url;
  return new Promise((resolve) => {
    execFile(process.execPath, [cairnBin(), ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

for (const kind of storageKinds) {
  describe(`gc and verify (${kind})`, { timeout: 300_000 }, () => {
    let srv: TestServer;
    let base: string;
    const shared = randomBytesFor(`gc-shared-${kind}`, 6 * MiB);
    const onlyA = randomBytesFor(`gc-a-${kind}`, 5 * MiB);
    const onlyB = randomBytesFor(`gc-b-${kind}`, 5 * MiB);

    const listChunks = async (): Promise<Set<string>> => {
      const keys = new Set<string>();
      for await (const key of srv.cairn.driver.list('chunks/')) keys.add(key);
      return keys;
    };
    const chunksOf = (version: string, file: string): string[] =>
      srv.cairn.db
        .all<{ chunk_digest: string }>(
          `SELECT bc.chunk_digest FROM versions v JOIN models m ON m.id = v.model_id
             JOIN version_files f ON f.version_id = v.id JOIN blob_chunks bc ON bc.blob_digest = f.blob_digest
            WHERE m.name = ? AND v.version = ? AND f.path = ? ORDER BY bc.seq`,
          [MODEL, version, file],
        )
        .map((r) => r.chunk_digest);
    const gcHttp = async (body: Record<string, unknown>) => {
      const res = await call(base, 'POST', '/v1/admin/gc', body);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const verifyHttp = async (body: Record<string, unknown> = {}) => {
      const res = await call(base, 'POST', '/v1/admin/verify', body);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    /** Replaces a stored chunk object's bytes (fs: the file itself; S3: delete and put again). */
    const overwrite = async (key: string, data: Buffer) => {
      if (kind === 'fs') await fs.writeFile(path.join(srv.dataDir, 'blobs', ...key.split('/')), data);
      else {
        await srv.cairn.driver.delete(key);
        await srv.cairn.driver.put(key, data);
      }
    };

    before(async () => {
      srv = await startTestServer(kind);
      base = srv.url;
      const r1 = await publishForm(base, MODEL, { version: '1.0.0' }, [
        { path: 'shared.bin', data: shared },
        { path: 'a.bin', data: onlyA },
      ]);
      assert.equal(r1.status, 201, JSON.stringify(r1.body));
      const r2 = await publishForm(base, MODEL, { version: '2.0.0' }, [
        { path: 'shared.bin', data: shared },
        { path: 'b.bin', data: onlyB },
      ]);
      assert.equal(r2.status, 201, JSON.stringify(r2.body));
    });

    after(async () => {
      await srv?.stop();
    });

    test('deleting a version and running gc frees exactly its unique chunks; dry run deletes nothing', async () => {
      const uniqueA = chunksOf('1.0.0', 'a.bin');
      assert.ok(uniqueA.length >= 2, `a.bin spans several chunks (${uniqueA.length})`);
      const sharedChunks = new Set([...chunksOf('2.0.0', 'shared.bin'), ...chunksOf('2.0.0', 'b.bin')]);
      for (const c of uniqueA) assert.ok(!sharedChunks.has(c), 'a.bin shares no chunk with version 2');
      const uniqueKeys = uniqueA.map(chunkKey);
      let uniqueBytes = 0;
      for (const key of uniqueKeys) uniqueBytes += (await srv.cairn.driver.stat(key))!.size;

      // nothing to collect while both versions are live
      const idle = await gcHttp({ dry_run: true, grace_seconds: 0 });
      assert.equal(idle.chunks_deleted, 0);
      assert.equal(idle.bytes_freed, 0);

      const del = await call(base, 'DELETE', `/v1/models/${MODEL}/versions/1.0.0`);
      assert.equal(del.status, 204, JSON.stringify(del.body));
      const before = await listChunks();

      const dry = await gcHttp({ dry_run: true, grace_seconds: 0 });
      assert.equal(dry.dry_run, true);
      assert.equal(dry.chunks_deleted, uniqueA.length);
      assert.equal(dry.bytes_freed, uniqueBytes);
      assert.equal(dry.blobs_deleted, 1);
      assert.deepEqual(await listChunks(), before, 'a dry run deletes nothing');

      // the default grace period (1 h) protects chunks written a moment ago
      const young = await gcHttp({});
      assert.equal(young.chunks_deleted, 0);
      assert.deepEqual(await listChunks(), before);

      const real = await gcHttp({ grace_seconds: 0 });
      assert.equal(real.dry_run, false);
      assert.equal(real.chunks_deleted, uniqueA.length);
      assert.equal(real.bytes_freed, uniqueBytes);
      assert.equal(real.blobs_deleted, 1);
      const afterGc = await listChunks();
      assert.deepEqual(afterGc, new Set([...before].filter((k) => !uniqueKeys.includes(k))), 'exactly the unique chunk objects are gone');
      for (const key of uniqueKeys) assert.equal(await srv.cairn.driver.stat(key), undefined);
      const blob = await fetch(`${base}/v1/blobs/${digestOf(onlyA)}`, { method: 'HEAD' });
      assert.equal(blob.status, 404, 'the content of the deleted file is no longer offered for dedup');

      // the other version is untouched
      for (const [file, data] of [['shared.bin', shared], ['b.bin', onlyB]] as const) {
        const got = await pull(base, MODEL, '2.0.0', file);
        assert.equal(got.status, 200);
        assert.equal(sha256hex(got.bytes), sha256hex(data), `${file} pulls byte-identical`);
      }
      const again = await gcHttp({ grace_seconds: 0 });
      assert.equal(again.chunks_deleted, 0, 'a second gc finds nothing');
      assert.equal((await verifyHttp()).ok, true);
    });

    test('an open upload session is not robbed; an expired one is removed', async () => {
      const data = randomBytesFor(`gc-upload-${kind}`, 3 * MiB);
      const session = await call(base, 'POST', '/v1/uploads');
      assert.equal(session.status, 201);
      const patched = await fetch(`${base}/v1/uploads/${session.body.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `bytes 0-${data.length - 1}/*` },
        body: bodyOf(data),
      });
      assert.equal(patched.status, 202, await patched.text());
      const keysBefore = await listChunks();

      const withGrace = await srv.cairn.gc.run({ graceSeconds: 3600 });
      assert.equal(withGrace.chunks_deleted, 0);
      // a session not yet expired keeps its chunks even past the grace period
      const noGrace = await srv.cairn.gc.run({ graceSeconds: 0 });
      assert.equal(noGrace.chunks_deleted, 0);
      assert.equal(noGrace.uploads_expired, 0);
      assert.deepEqual(await listChunks(), keysBefore);

      const finished = await call(base, 'PUT', `/v1/uploads/${session.body.id}?digest=${digestOf(data)}`);
      assert.equal(finished.status, 201, JSON.stringify(finished.body));
      // finished but not yet published: the young blob keeps its chunks
      assert.equal((await srv.cairn.gc.run({ graceSeconds: 3600 })).chunks_deleted, 0);
      const published = await call(base, 'POST', `/v1/models/${MODEL}/versions`, { version: '3.0.0', files: [{ path: 'up.bin', digest: digestOf(data) }] });
      assert.equal(published.status, 201, JSON.stringify(published.body));
      const got = await pull(base, MODEL, '3.0.0', 'up.bin');
      assert.equal(sha256hex(got.bytes), sha256hex(data));

      // an abandoned session: past CAIRN_UPLOAD_TTL it goes, and its chunks with it
      const stale = randomBytesFor(`gc-stale-${kind}`, 2 * MiB);
      const s2 = await call(base, 'POST', '/v1/uploads');
      const p2 = await fetch(`${base}/v1/uploads/${s2.body.id}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: bodyOf(stale) });
      assert.equal(p2.status, 202, await p2.text());
      const staleKeys = srv.cairn.db
        .all<{ chunk_digest: string }>('SELECT chunk_digest FROM upload_chunks WHERE upload_id = ?', [s2.body.id])
        .map((r) => chunkKey(r.chunk_digest));
      assert.ok(staleKeys.length > 0);
      const early = await srv.cairn.gc.run({ graceSeconds: 0, now: () => new Date(Date.now() + 23 * 3600_000) });
      assert.equal(early.uploads_expired, 0, 'not expired after 23 h');
      const late = await srv.cairn.gc.run({ graceSeconds: 0, now: () => new Date(Date.now() + 25 * 3600_000) });
      assert.equal(late.uploads_expired, 1);
      assert.equal(late.chunks_deleted, staleKeys.length);
      assertError(await call(base, 'GET', `/v1/uploads/${s2.body.id}`), 404, 'UPLOAD_NOT_FOUND');
      for (const key of staleKeys) assert.equal(await srv.cairn.driver.stat(key), undefined);
      const still = await pull(base, MODEL, '3.0.0', 'up.bin');
      assert.equal(sha256hex(still.bytes), sha256hex(data));
    });

    test('an object without a record survives the first gc and goes after the grace period', async () => {
      const bytes = randomBytes(4096);
      const key = chunkKey(digestOf(bytes));
      await srv.cairn.driver.put(key, bytes);
      const t0 = Date.now();
      const at = (s: number) => () => new Date(t0 + s * 1000);

      const first = await srv.cairn.gc.run({ graceSeconds: 60, now: at(0) });
      assert.equal(first.orphan_objects_deleted, 0);
      assert.equal(first.orphan_objects_pending, 1);
      assert.ok(await srv.cairn.driver.stat(key), 'first seen: kept');
      const dry = await srv.cairn.gc.run({ graceSeconds: 60, now: at(61), dryRun: true });
      assert.equal(dry.orphan_objects_deleted, 1);
      assert.equal(dry.bytes_freed, bytes.length);
      assert.ok(await srv.cairn.driver.stat(key), 'dry run: kept');
      const within = await srv.cairn.gc.run({ graceSeconds: 60, now: at(30) });
      assert.equal(within.orphan_objects_deleted, 0);
      assert.ok(await srv.cairn.driver.stat(key), 'within the grace period: kept');
      const later = await srv.cairn.gc.run({ graceSeconds: 60, now: at(61) });
      assert.equal(later.orphan_objects_deleted, 1);
      assert.equal(later.orphan_bytes_freed, bytes.length);
      assert.equal(await srv.cairn.driver.stat(key), undefined, 'removed after the grace period');
      assert.equal(later.orphan_objects_pending, 0);

      // even with grace 0 a new orphan needs a second gc
      const other = randomBytes(1024);
      const key2 = chunkKey(digestOf(other));
      await srv.cairn.driver.put(key2, other);
      assert.equal((await srv.cairn.gc.run({ graceSeconds: 0 })).orphan_objects_deleted, 0);
      assert.ok(await srv.cairn.driver.stat(key2));
      assert.equal((await srv.cairn.gc.run({ graceSeconds: 0 })).orphan_objects_deleted, 1);
      assert.equal(await srv.cairn.driver.stat(key2), undefined);
    });

    test('verify: a flipped chunk is reported by file and never served; a missing chunk is reported', async () => {
      const healthy = await verifyHttp();
      assert.equal(healthy.ok, true, JSON.stringify(healthy.problems));
      assert.deepEqual(healthy.problems, []);
      assert.ok(healthy.chunks_checked > 0 && healthy.bytes_read > 0);
      assert.equal((await verifyHttp({ quick: true })).ok, true);

      const [firstB] = chunksOf('2.0.0', 'b.bin');
      const key = chunkKey(firstB!);
      const original = await srv.cairn.driver.get(key);
      const flipped = Buffer.from(original);
      flipped[flipped.length >> 1]! ^= 0x40;
      await overwrite(key, flipped);

      const report = await verifyHttp();
      assert.equal(report.ok, false);
      assert.deepEqual(report.problems, [{ model: MODEL, version: '2.0.0', path: 'b.bin', chunk: firstB, problem: 'corrupt' }]);

      // never served: an error before the headers, or a cut connection — never a whole body
      const res = await fetch(base + filePath(MODEL, '2.0.0', 'b.bin'));
      if (res.status === 200) {
        let received = 0;
        await assert.rejects(async () => {
          for await (const piece of res.body!) received += (piece as Uint8Array).length;
        });
        assert.ok(received < onlyB.length);
      } else {
        assertError({ status: res.status, body: await res.json() }, 500, 'CONTENT_CORRUPT');
      }
      const cli = await runCli(['verify', '--json'], base);
      assert.equal(cli.code, 1, cli.stderr);
      assert.equal(JSON.parse(cli.stdout).problems[0].path, 'b.bin');

      await overwrite(key, original);
      assert.equal((await verifyHttp()).ok, true);

      const sharedChunks = chunksOf('2.0.0', 'shared.bin');
      const gone = sharedChunks[sharedChunks.length - 1]!;
      const goneKey = chunkKey(gone);
      const goneBytes = await srv.cairn.driver.get(goneKey);
      await srv.cairn.driver.delete(goneKey);
      for (const quick of [false, true]) {
        const missing = await verifyHttp({ quick });
        assert.equal(missing.ok, false);
        assert.deepEqual(missing.problems, [{ model: MODEL, version: '2.0.0', path: 'shared.bin', chunk: gone, problem: 'missing' }]);
      }
      await srv.cairn.driver.put(goneKey, goneBytes);
      assert.equal((await verifyHttp()).ok, true);
    });

    test('cairn gc --dry-run --json and cairn verify --json against the server', async () => {
      const gc = await runCli(['gc', '--dry-run', '--json', '--grace', '0s'], base);
      assert.equal(gc.code, 0, gc.stderr);
      const doc = JSON.parse(gc.stdout);
      assert.equal(doc.dry_run, true);
      assert.equal(typeof doc.bytes_freed, 'number');
      const text = await runCli(['gc', '--dry-run'], base);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^would free .* in \d+ chunks?/);
      const v = await runCli(['verify', '--json'], base);
      assert.equal(v.code, 0, v.stderr);
      assert.equal(JSON.parse(v.stdout).ok, true);
      const bad = await runCli(['gc', '--grace', 'soon'], base);
      assert.equal(bad.code, 2);
      assertError(await call(base, 'POST', '/v1/admin/gc', { grace_seconds: -1 }), 400, 'INVALID_ARGUMENT');
    });
  });
}

describe('maintenance needs the admin scope', () => {
  test('without a token 401; with the admin token 200', async () => {
    const srv = await startTestServer('fs', { auth: true });
    try {
      assertError(await call(srv.url, 'POST', '/v1/admin/gc', { dry_run: true }), 401, 'UNAUTHORIZED');
      assertError(await call(srv.url, 'POST', '/v1/admin/verify', {}), 401, 'UNAUTHORIZED');
      const token = (await fs.readFile(path.join(srv.dataDir, 'admin-token'), 'utf8')).trim();
      const ok = await call(srv.url, 'POST', '/v1/admin/gc', { dry_run: true }, { authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.dry_run, true);
    } finally {
      await srv.stop();
    }
  });
});

/**
 * A GET whose body is read only when asked: the first bytes arrive, then the
 * client stops reading (the server's stream waits on backpressure) until
 * `finish` reads the rest; resolves with the body's length and sha256.
 */
async function slowGet(url: string): Promise<{ finish(): Promise<{ status: number; size: number; sha256: string }> }> {
  const hash = createHash('sha256');
  let size = 0;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, resolve).on('error', reject));
  await new Promise<void>((resolve) =>
    res.once('data', (piece: Buffer) => {
      res.pause();
      hash.update(piece);
      size += piece.length;
      resolve();
    }),
  );
  return {
    finish: () =>
      new Promise((resolve, reject) => {
        res.on('data', (piece: Buffer) => {
          hash.update(piece);
          size += piece.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, size, sha256: hash.digest('hex') }));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`the download was cut after ${size} bytes`)));
        res.resume();
      }),
  };
}

for (const kind of storageKinds) {
  describe(`gc and downloads of deleted versions (${kind})`, { timeout: 300_000 }, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer(kind);
    });
    after(async () => {
      await srv?.stop();
    });
    const blobRow = (digest: string) => srv.cairn.db.first<{ digest: string }>('SELECT digest FROM blobs WHERE digest = ?', [digest]);
    // released once the download is over (the server's stream closes just after the client saw its end)
    const untilNotRead = (digest: string) => waitFor(`blob ${digest} released`, () => !srv.cairn.chunks.blobsBeingRead().includes(digest), 2_000, 10);

    test('a download that started before its version was deleted completes byte-exact through gc with grace 0', async () => {
      const data = randomBytesFor(`slow-${kind}`, 64 * MiB); // ~32 chunks: far more than the server reads ahead
      assert.equal((await publishForm(srv.url, 'slow', { version: '1.0.0' }, [{ path: 'w.bin', data }])).status, 201);
      const chunkKeys = srv.cairn.db
        .all<{ chunk_digest: string }>('SELECT DISTINCT chunk_digest FROM blob_chunks WHERE blob_digest = ?', [digestOf(data)])
        .map((r) => chunkKey(r.chunk_digest));
      assert.ok(chunkKeys.length >= 16, `${chunkKeys.length} chunks`);
      const stored = async () => (await Promise.all(chunkKeys.map((k) => srv.cairn.driver.stat(k)))).filter(Boolean).length;
      // the first bytes are in and the client reads no more: the server is mid-file, held by backpressure
      const download = await slowGet(srv.url + filePath('slow', '1.0.0', 'w.bin'));
      assert.equal((await call(srv.url, 'DELETE', '/v1/models/slow/versions/1.0.0')).status, 204);
      const report = (await call(srv.url, 'POST', '/v1/admin/gc', { grace_seconds: 0 })).body;
      assert.equal(report.blobs_deleted, 0, 'the blob being read is kept');
      assert.ok(blobRow(digestOf(data)));
      assert.equal(await stored(), chunkKeys.length, 'every chunk object is still there');
      const got = await download.finish();
      assert.deepEqual(got, { status: 200, size: data.length, sha256: sha256hex(data) });
      await untilNotRead(digestOf(data));
      const later = (await call(srv.url, 'POST', '/v1/admin/gc', { grace_seconds: 0 })).body;
      assert.equal(later.blobs_deleted, 1, 'collected once nobody reads it');
      assert.equal(later.chunks_deleted, chunkKeys.length);
      assert.equal(await stored(), 0);
      assert.equal(blobRow(digestOf(data)), undefined);
    });

    test('an archive download in progress keeps every file of its version, also those it has not opened yet', async () => {
      const files = [
        { path: 'a.bin', data: randomBytesFor(`arch-a-${kind}`, 24 * MiB) },
        { path: 'b.bin', data: randomBytesFor(`arch-b-${kind}`, 24 * MiB) },
      ];
      assert.equal((await publishForm(srv.url, 'archived', { version: '1.0.0' }, files)).status, 201);
      const archiveUrl = `${srv.url}/v1/models/archived/versions/1.0.0/archive`;
      const whole = await (await slowGet(archiveUrl)).finish();
      const download = await slowGet(archiveUrl); // mid-archive, held by backpressure
      assert.equal((await call(srv.url, 'DELETE', '/v1/models/archived/versions/1.0.0')).status, 204);
      assert.equal((await call(srv.url, 'POST', '/v1/admin/gc', { grace_seconds: 0 })).body.blobs_deleted, 0);
      assert.deepEqual(await download.finish(), whole);
      for (const f of files) await untilNotRead(digestOf(f.data));
      assert.equal((await call(srv.url, 'POST', '/v1/admin/gc', { grace_seconds: 0 })).body.blobs_deleted, 2);
    });

    test('the grace period counts from the deletion: a version deleted just now keeps an old blob past the default grace', async () => {
      const data = randomBytesFor(`aged-${kind}`, 5 * MiB);
      assert.equal((await publishForm(srv.url, 'aged', { version: '1.0.0' }, [{ path: 'w.bin', data }])).status, 201);
      const longAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
      srv.cairn.db.run('UPDATE blobs SET created_at = ? WHERE digest = ?', [longAgo, digestOf(data)]);
      srv.cairn.db.run('UPDATE chunks SET created_at = ? WHERE digest IN (SELECT chunk_digest FROM blob_chunks WHERE blob_digest = ?)', [longAgo, digestOf(data)]);
      assert.equal((await call(srv.url, 'DELETE', '/v1/models/aged/versions/1.0.0')).status, 204);
      const now = await srv.cairn.gc.run({}); // the default grace: 1 h
      assert.equal(now.blobs_deleted, 0, 'deleted a moment ago: kept for the grace period');
      assert.ok(blobRow(digestOf(data)));
      const soon = await srv.cairn.gc.run({ now: () => new Date(Date.now() + 30 * 60_000) });
      assert.equal(soon.blobs_deleted, 0);
      const later = await srv.cairn.gc.run({ now: () => new Date(Date.now() + 61 * 60_000) });
      assert.equal(later.blobs_deleted, 1, 'an hour after the deletion it goes');
      assert.ok(later.chunks_deleted >= 1);
      assert.equal(blobRow(digestOf(data)), undefined);
    });
  });
}
