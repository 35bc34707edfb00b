// The HTTP API end to end: a real server (same wiring as `cairn serve`) per
// storage kind, real HTTP through global fetch (and node:http where a client
// must misbehave), generated fixtures only.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { Chunker, DEFAULT_CHUNKING } from '../src/blobs/chunker.ts';
import { canonicalJson } from '../src/canonical-json.ts';
import { compressibleBytes, digestOf, KiB, MiB, randomBytesFor, randomStream } from './support/bytes.ts';
import { modelSpec, safetensorsHeader, safetensorsStream } from './support/tensors.ts';
import {
  assertError,
  bodyOf,
  call,
  type FilePart,
  filePath,
  publishForm,
  publishRawMultipart,
  pull,
  sleep,
  streamedMultipart,
  type JsonResponse,
} from './support/http-client.ts';
import { s3TestConfig, startTestServer, storageKinds, type StorageKind, type TestServer } from './support/server.ts';
import { waitFor } from './support/wait-for.ts';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
/** A deleted version is 404; the server may say so with a distinct code. */
const GONE = ['VERSION_NOT_FOUND', 'VERSION_DELETED'];

interface TarEntry {
  name: string;
  size: number | undefined;
  type: string | null | undefined;
  data: Buffer;
}

async function untar(archive: Buffer): Promise<TarEntry[]> {
  const extract = tar.extract();
  extract.end(archive);
  const out: TarEntry[] = [];
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const piece of entry) parts.push(piece as Buffer);
    out.push({ name: entry.header.name, size: entry.header.size, type: entry.header.type, data: Buffer.concat(parts) });
  }
  return out;
}

/** Every page of a paginated list, following next_cursor. */
async function allPages<T>(base: string, path: string, key: string, limit: number): Promise<{ items: T[]; pages: number[] }> {
  const items: T[] = [];
  const pages: number[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const res: JsonResponse = await call(base, 'GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const page = res.body[key] as T[];
    assert.ok(Array.isArray(page), `${key} is an array`);
    assert.ok(page.length <= limit, 'a page never exceeds the limit');
    items.push(...page);
    pages.push(page.length);
    cursor = res.body.next_cursor;
    if (cursor === null) return { items, pages };
    assert.equal(typeof cursor, 'string');
  }
  assert.fail('pagination does not end');
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** PATCH a body to an upload session with fetch. */
async function patch(base: string, id: string, body: Uint8Array | undefined, range?: [number, number]) {
  const res = await fetch(`${base}/v1/uploads/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', ...(range ? { 'content-range': `bytes ${range[0]}-${range[1]}/*` } : {}) },
    body: body && bodyOf(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * The session's offset once the server is done with the request that was
 * writing to it: an empty PATCH (it appends nothing) is refused with
 * UPLOAD_BUSY while another request holds the session.
 */
function offsetWhenIdle(base: string, id: string, min = 1): Promise<number> {
  return waitFor(`upload ${id} idle at an offset >= ${min}`, async () => {
    const res = await patch(base, id, undefined);
    if (res.status === 409 && res.body?.error?.code === 'UPLOAD_BUSY') return undefined;
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.offset >= min ? (res.body.offset as number) : undefined;
  });
}

describe('streaming and memory (fs)', () => {
  test('a ~300 MiB streamed multipart publish and its pull keep server RSS growth well below the file size', { timeout: 240_000 }, async (t) => {
    const srv = await startTestServer('fs');
    try {
      const base = srv.url;
      // warm up: codec workers, sqlite, allocator
      const warm = randomBytesFor('warm', 16 * MiB);
      assert.equal((await publishForm(base, 'warm', { version: '1' }, [{ path: 'w', data: warm }])).status, 201);
      assert.ok((await pull(base, 'warm', '1', 'w')).bytes.equals(warm));

      const SIZE = 300 * MiB + 12345;
      const baseline = process.memoryUsage().rss;
      const baselineBuffers = process.memoryUsage().arrayBuffers;
      let peak = baseline;
      let peakBuffers = baselineBuffers;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.rss);
        peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
      }, 20);
      try {
        const sent = createHash('sha256');
        async function* source(): AsyncGenerator<Uint8Array> {
          for await (const piece of randomStream('memory-check', SIZE, 256 * KiB)) {
            sent.update(piece);
            yield piece;
          }
        }
        const boundary = `----cairn-stream-${randomBytes(8).toString('hex')}`;
        const started = Date.now();
        // node:http, not fetch: undici's fetch (Node 20) keeps every piece of a
        // streamed request body alive until the request ends, which would put
        // the whole file in this process's RSS and hide what the server does.
        const body = Readable.from(streamedMultipart(boundary, { version: '1', message: 'streamed' }, [{ path: 'huge.bin', source: source() }]));
        const published = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = http.request(`${base}/v1/models/huge/versions`, {
            method: 'POST',
            headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
          });
          req.on('error', reject);
          req.on('response', (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
            res.on('error', reject);
          });
          pipeline(body, req).catch(reject);
        });
        assert.equal(published.status, 201, published.text);
        const doc = JSON.parse(published.text);
        const sentDigest = `sha256:${sent.digest('hex')}`;
        assert.equal(doc.files[0].size, SIZE);
        assert.equal(doc.files[0].digest, sentDigest);
        const publishMs = Date.now() - started;
        const afterPublish = peak;

        const got = createHash('sha256');
        let n = 0;
        const status = await new Promise<number>((resolve, reject) => {
          http
            .get(`${base}/v1/models/huge/versions/1/files/huge.bin`, (res) => {
              res.on('data', (piece: Buffer) => {
                got.update(piece);
                n += piece.length;
              });
              res.on('end', () => resolve(res.statusCode ?? 0));
              res.on('error', reject);
            })
            .on('error', reject);
        });
        assert.equal(status, 200);
        assert.equal(n, SIZE);
        assert.equal(`sha256:${got.digest('hex')}`, sentDigest, 'pulled bytes are identical');
        const growth = peak - baseline;
        t.diagnostic(
          `publish ${publishMs} ms, total ${Date.now() - started} ms; rss baseline ${(baseline / MiB).toFixed(0)} MiB, ` +
            `peak growth during publish ${((afterPublish - baseline) / MiB).toFixed(0)} MiB, overall ${(growth / MiB).toFixed(0)} MiB; ` +
            `ArrayBuffers peak growth ${((peakBuffers - baselineBuffers) / MiB).toFixed(0)} MiB`,
        );
        assert.ok(growth < 150 * MiB, `RSS grew by ${(growth / MiB).toFixed(0)} MiB for a ${(SIZE / MiB).toFixed(0)} MiB file`);
        // RSS can hide growth in memory the allocator had already freed; live Buffers cannot
        assert.ok(peakBuffers - baselineBuffers < 100 * MiB, `ArrayBuffers grew by ${((peakBuffers - baselineBuffers) / MiB).toFixed(0)} MiB`);
      } finally {
        clearInterval(sampler);
      }
    } finally {
      await srv.stop();
    }
  });
});

for (const kind of storageKinds) {
  describe(`HTTP API (${kind})`, () => {
    let srv: TestServer;
    let base: string;
    before(async () => {
      srv = await startTestServer(kind as StorageKind);
      base = srv.url;
    });
    after(async () => {
      await srv?.stop();
    });

    test('healthz and readyz', async () => {
      const h = await call(base, 'GET', '/healthz');
      assert.equal(h.status, 200);
      assert.equal(h.body.status, 'ok');
      const r = await call(base, 'GET', '/readyz');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.status, 'ready');
      assert.equal(r.body.storage, kind);
      assert.equal(r.body.checks.db, 'ok');
      assert.equal(r.body.checks.storage, 'ok');
    });

    test('unknown routes → 404 JSON ROUTE_NOT_FOUND', async () => {
      for (const [method, path] of [
        ['GET', '/nope'], // `/` itself is the web UI (test/ui.test.ts)
        ['GET', '/v1/nope'],
        ['POST', '/v1/models'],
        ['GET', '/v1/models/some-model/nothing/here'],
        ['DELETE', '/v1/models/some-model'],
      ] as const) {
        const res = await call(base, method, path);
        assertError(res, 404, 'ROUTE_NOT_FOUND', `${method} ${path}`);
        assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      }
    });

    describe('publish and read a version', () => {
      const name = 'doc-model';
      const files: FilePart[] = [
        { path: 'weights.bin', data: randomBytesFor(`${kind}-weights`, 1536 * KiB + 7) },
        { path: 'tokenizer/tok.json', data: Buffer.from(JSON.stringify({ vocab: { a: 1, b: 2 }, note: 'tokenizer' })) },
        { path: 'config.json', data: Buffer.from('{"hidden_size":64,"layers":2}\n') },
        { path: 'données/模型 ü.bin', data: randomBytesFor(`${kind}-nonascii`, 70 * KiB) },
        { path: 'tokenizer/vocab/merges.txt', data: compressibleBytes(200 * KiB, 'merges') },
        { path: 'empty.txt', data: new Uint8Array(0) },
        { path: 'odd name #1 ?x=100%.txt', data: Buffer.from('URL-special characters in a path') },
        { path: `${'deep/'.repeat(30)}nested-file.bin`, data: randomBytesFor(`${kind}-deep`, 3 * KiB) }, // > 100 chars: a long tar name
      ];
      const metadata = { lr: 0.001, tags: ['a', 'b'], nested: { k: null, deep: [1, { x: 'ü' }] }, ok: true };
      let doc: any;

      before(async () => {
        const res = await publishForm(base, name, { version: '1.0.0', message: 'first — with ünïcode', aliases: ['staging', 'candidate'], metadata: JSON.stringify(metadata) }, files);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.equal(res.headers.get('location'), `/v1/models/${name}/versions/1.0.0`);
        doc = res.body;
      });

      test('the version document: digest, number, files sorted with size and digest, created_by, message, metadata, aliases', async () => {
        assert.equal(doc.name, name);
        assert.equal(doc.version, '1.0.0');
        assert.equal(doc.number, 1);
        assert.match(doc.digest, DIGEST_RE);
        assert.ok(!Number.isNaN(Date.parse(doc.created_at)), `created_at ${doc.created_at}`);
        assert.equal(typeof doc.created_by, 'string');
        assert.ok(doc.created_by.length > 0);
        assert.equal(doc.message, 'first — with ünïcode');
        assert.deepEqual(doc.metadata, metadata);
        assert.deepEqual(doc.aliases, ['candidate', 'staging']);
        const expected = [...files].sort((a, b) => utf8Compare(a.path, b.path));
        assert.deepEqual(
          doc.files.map((f: any) => f.path),
          expected.map((f) => f.path),
          'files sorted by path',
        );
        for (const f of expected) {
          const got = doc.files.find((x: any) => x.path === f.path);
          assert.equal(got.size, f.data.length, `${f.path}: size`);
          assert.equal(got.digest, digestOf(f.data), `${f.path}: digest`);
        }
        assert.equal(doc.size, files.reduce((n, f) => n + f.data.length, 0), 'version size is the sum of file sizes');
        // GET returns the same document
        const again = await call(base, 'GET', `/v1/models/${name}/versions/1.0.0`);
        assert.equal(again.status, 200);
        assert.deepEqual(again.body, doc);
      });

      test('pull each file byte-identical, with ETag, Accept-Ranges and Content-Length', async () => {
        for (const f of files) {
          const res = await pull(base, name, '1.0.0', f.path);
          assert.equal(res.status, 200, f.path);
          assert.ok(res.bytes.equals(Buffer.from(f.data)), `${f.path}: bytes`);
          assert.equal(res.headers.get('etag'), `"${digestOf(f.data)}"`, `${f.path}: ETag`);
          assert.equal(res.headers.get('accept-ranges'), 'bytes');
          assert.equal(res.headers.get('content-length'), String(f.data.length));
        }
      });

      test('If-None-Match with the ETag → 304 without a body', async () => {
        const f = files[0]!;
        const etag = `"${digestOf(f.data)}"`;
        const res = await pull(base, name, '1.0.0', f.path, { 'if-none-match': etag });
        assert.equal(res.status, 304);
        assert.equal(res.bytes.length, 0);
        assert.equal(res.headers.get('etag'), etag);
        const listed = await pull(base, name, '1.0.0', f.path, { 'if-none-match': `"sha256:${'0'.repeat(64)}", ${etag}` });
        assert.equal(listed.status, 304, 'one of a list of ETags');
        const other = await pull(base, name, '1.0.0', f.path, { 'if-none-match': `"sha256:${'0'.repeat(64)}"` });
        assert.equal(other.status, 200, 'a different ETag → the full body');
        assert.ok(other.bytes.equals(Buffer.from(f.data)));
      });

      test('If-None-Match: * and a weak ETag also match (RFC 9110 §13.1.2)', async () => {
        const f = files[0]!;
        const star = await pull(base, name, '1.0.0', f.path, { 'if-none-match': '*' });
        const weak = await pull(base, name, '1.0.0', f.path, { 'if-none-match': `W/"${digestOf(f.data)}"` });
        assert.deepEqual(
          { '*': star.status, 'W/"…"': weak.status },
          { '*': 304, 'W/"…"': 304 },
          '* matches any current representation; If-None-Match uses the weak comparison',
        );
      });

      test('HEAD on a file: headers only', async () => {
        const f = files[0]!;
        const res = await fetch(base + filePath(name, '1.0.0', f.path), { method: 'HEAD' });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-length'), String(f.data.length));
        assert.equal(res.headers.get('etag'), `"${digestOf(f.data)}"`);
        assert.equal((await res.arrayBuffer()).byteLength, 0);
      });

      test('refs: version, latest, alias, manifest digest; unknown → 404 with an error body', async () => {
        for (const ref of ['1.0.0', 'latest', 'staging', 'candidate', doc.digest]) {
          const res = await call(base, 'GET', `/v1/models/${name}/versions/${encodeURIComponent(ref)}`);
          assert.equal(res.status, 200, `${ref}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.version, '1.0.0', ref);
          assert.equal(res.body.digest, doc.digest, ref);
          const file = await pull(base, name, ref, 'config.json');
          assert.equal(file.status, 200, `file via ${ref}`);
          assert.ok(file.bytes.equals(Buffer.from(files[2]!.data)));
        }
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/9.9.9`), 404, 'VERSION_NOT_FOUND', 'unknown version');
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/production`), 404, 'VERSION_NOT_FOUND', 'unknown alias');
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/sha256:${'ab'.repeat(32)}`), 404, 'VERSION_NOT_FOUND', 'unknown digest');
        assertError(await call(base, 'GET', `/v1/models/no-such-model/versions/1.0.0`), 404, 'MODEL_NOT_FOUND', 'unknown model');
        assertError(await call(base, 'GET', `/v1/models/no-such-model`), 404, 'MODEL_NOT_FOUND', 'unknown model doc');
        const missingFile = await call(base, 'GET', filePath(name, '1.0.0', 'not/there.bin'));
        assertError(missingFile, 404, 'FILE_NOT_FOUND', 'unknown file');
        assertError(await call(base, 'GET', filePath(name, '7.7.7', 'config.json')), 404, 'VERSION_NOT_FOUND', 'file of unknown version');
      });

      test('the model document: aliases, latest, counts', async () => {
        const res = await call(base, 'GET', `/v1/models/${name}`);
        assert.equal(res.status, 200);
        assert.equal(res.body.name, name);
        assert.deepEqual(res.body.aliases, { candidate: '1.0.0', staging: '1.0.0' });
        assert.equal(res.body.latest.version, '1.0.0');
        assert.equal(res.body.latest.digest, doc.digest);
        assert.equal(res.body.counts.versions, 1);
      });

      test('archive: a tar of every file, byte-identical, in document order', async () => {
        const res = await fetch(`${base}/v1/models/${name}/versions/latest/archive`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/x-tar/);
        assert.equal(res.headers.get('etag'), `"${doc.digest}"`);
        const entries = await untar(Buffer.from(await res.arrayBuffer()));
        assert.deepEqual(
          entries.map((e) => e.name),
          doc.files.map((f: any) => f.path),
        );
        for (const f of files) {
          const e = entries.find((x) => x.name === f.path)!;
          assert.equal(e.type, 'file');
          assert.equal(e.size, f.data.length, `${f.path}: size`);
          assert.ok(e.data.equals(Buffer.from(f.data)), `${f.path}: bytes`);
        }
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/9.9.9/archive`), 404, 'VERSION_NOT_FOUND', 'archive of unknown version');
      });

      test('blobs of a multipart publish are known to HEAD /v1/blobs (clients can skip them)', async () => {
        for (const f of files) {
          const res = await fetch(`${base}/v1/blobs/${digestOf(f.data)}`, { method: 'HEAD' });
          assert.equal(res.status, 200, f.path);
          assert.equal(res.headers.get('content-length'), String(f.data.length));
        }
      });

      test('republish → 409 VERSION_EXISTS; the stored bytes do not change', async () => {
        const other = files.map((f) => ({ path: f.path, data: randomBytesFor(`${kind}-other-${f.path}`, 1000) }));
        assertError(await publishForm(base, name, { version: '1.0.0' }, other), 409, 'VERSION_EXISTS', 'fields first');
        assertError(await publishForm(base, name, { version: '1.0.0' }, other, { fieldsAfterFiles: true }), 409, 'VERSION_EXISTS', 'fields after the files');
        const json = await call(base, 'POST', `/v1/models/${name}/versions`, { version: '1.0.0', files: [{ path: 'config.json', digest: digestOf(files[2]!.data) }] });
        assertError(json, 409, 'VERSION_EXISTS', 'JSON');
        const again = await call(base, 'GET', `/v1/models/${name}/versions/1.0.0`);
        assert.deepEqual(again.body, doc);
        for (const f of files) {
          const res = await pull(base, name, '1.0.0', f.path);
          assert.ok(res.bytes.equals(Buffer.from(f.data)), `${f.path} unchanged`);
        }
      });

      test('numbers 1, 2, 3 in publish order; latest follows the newest', async () => {
        const r2 = await publishForm(base, name, { version: '1.0.1' }, [{ path: 'a.txt', data: Buffer.from('two') }]);
        assert.equal(r2.status, 201, JSON.stringify(r2.body));
        assert.equal(r2.body.number, 2);
        assert.deepEqual(r2.body.aliases, []);
        assert.deepEqual(r2.body.metadata, {});
        assert.equal(r2.body.message, '');
        const r3 = await publishForm(base, name, { version: '0.9.0' }, [{ path: 'a.txt', data: Buffer.from('three') }]);
        assert.equal(r3.status, 201, JSON.stringify(r3.body));
        assert.equal(r3.body.number, 3);
        assert.notEqual(r3.body.digest, r2.body.digest);
        const latest = await call(base, 'GET', `/v1/models/${name}/versions/latest`);
        assert.equal(latest.body.version, '0.9.0', 'latest is the most recently published, not the highest semver');
      });

      test('a 1024-byte path is accepted; 1025 bytes is not', async () => {
        const digest = digestOf(files[2]!.data);
        const ok = `${'p'.repeat(500)}/${'q'.repeat(523)}`;
        assert.equal(Buffer.byteLength(ok), 1024);
        const res = await call(base, 'POST', `/v1/models/${name}/versions`, { version: 'long-path', files: [{ path: ok, digest }] });
        assert.equal(res.status, 201, JSON.stringify(res.body).slice(0, 300));
        assert.ok((await pull(base, name, 'long-path', ok)).bytes.equals(Buffer.from(files[2]!.data)));
        assertError(await call(base, 'POST', `/v1/models/${name}/versions`, { version: 'longer-path', files: [{ path: `${ok}q`, digest }] }), 400, 'INVALID_PATH');
      });
    });

    describe('the manifest digest', () => {
      /** DESIGN: the version digest is the sha256 of the canonical manifest (sorted keys, files sorted by path). */
      const manifestDigest = (doc: any) =>
        `sha256:${createHash('sha256')
          .update(
            canonicalJson({
              name: doc.name,
              version: doc.version,
              files: doc.files.map((f: any) => ({ path: f.path, size: f.size, digest: f.digest })),
              parents: doc.parents,
              metadata: doc.metadata,
            }),
          )
          .digest('hex')}`;

      test('is the sha256 of the canonical manifest of the version document', async () => {
        const res = await publishForm(base, 'manifest-model', { version: '1', metadata: '{"b":1,"a":{"d":2,"c":3}}' }, [
          { path: 'z.bin', data: Buffer.from('z') },
          { path: 'a/b.txt', data: Buffer.from('ab') },
          { path: 'é.txt', data: Buffer.from('e') },
        ]);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.equal(res.body.digest, manifestDigest(res.body));
      });

      test('files are sorted the same way for the digest and in the document (paths beyond the BMP)', async () => {
        // UTF-16 order puts U+1F600 (a surrogate pair, 0xD83D…) before U+FF01; UTF-8/code point order puts it after
        const res = await publishForm(base, 'manifest-model', { version: '2' }, [
          { path: '\u{1F600}.bin', data: Buffer.from('emoji') },
          { path: '\uFF01.bin', data: Buffer.from('fullwidth') },
        ]);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        const docOrder = res.body.files.map((f: any) => f.path);
        assert.equal(res.body.digest, manifestDigest(res.body), `the digest must cover the files in the order the document lists them (${docOrder.join(', ')})`);
      });
    });

    describe('concurrent publishes', () => {
      test('the same new version 5 times at once: exactly one 201, the others 409 VERSION_EXISTS', async () => {
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) => publishForm(base, 'race-model', { version: '1' }, [{ path: 'w.bin', data: randomBytesFor(`${kind}-race-${i}`, 600 * KiB) }], { fieldsAfterFiles: true })),
        );
        const statuses = results.map((r) => r.status).sort();
        assert.deepEqual(statuses, [201, 409, 409, 409, 409], JSON.stringify(results.map((r) => r.body?.error?.code ?? r.status)));
        for (const r of results.filter((x) => x.status === 409)) assert.equal(r.body.error.code, 'VERSION_EXISTS');
        const winner = results.find((r) => r.status === 201)!.body;
        const now = await call(base, 'GET', '/v1/models/race-model/versions/1');
        assert.equal(now.body.digest, winner.digest);
        assert.equal((await call(base, 'GET', '/v1/models/race-model')).body.counts.versions, 1);
      });

      test('different versions of one new model at once: all 201, numbers 1..n without duplicates', async () => {
        const n = 5;
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) => publishForm(base, 'parallel-model', { version: `0.${i}` }, [{ path: 'w.bin', data: randomBytesFor(`${kind}-par-${i}`, 300 * KiB) }])),
        );
        assert.deepEqual(results.map((r) => r.status), Array(n).fill(201), JSON.stringify(results.map((r) => r.body?.error)));
        assert.deepEqual(results.map((r) => r.body.number).sort(), [1, 2, 3, 4, 5]);
        const listed = await allPages<any>(base, '/v1/models/parallel-model/versions', 'versions', 100);
        assert.equal(listed.items.length, n);
      });
    });

    describe('ranges on a multi-chunk file', () => {
      const name = 'ranges-model';
      const big = randomBytesFor(`${kind}-multi-chunk`, 12 * MiB + 321);
      const size = big.length;
      let cuts: number[] = [];

      before(async () => {
        // where the server cuts this file (the chunker is deterministic)
        const chunker = new Chunker(DEFAULT_CHUNKING);
        let at = 0;
        for (const c of [...chunker.push(big), ...chunker.finish()]) cuts.push((at += c.length));
        cuts = cuts.slice(0, -1);
        assert.ok(cuts.length >= 2, `at least 3 chunks (${cuts.length + 1})`);
        const res = await publishForm(base, name, { version: '1' }, [{ path: 'big.bin', data: big }, { path: 'empty.bin', data: new Uint8Array(0) }]);
        assert.equal(res.status, 201, JSON.stringify(res.body));
      });

      test('whole file without Range', async () => {
        const res = await pull(base, name, '1', 'big.bin');
        assert.equal(res.status, 200);
        assert.ok(res.bytes.equals(big));
      });

      test('bytes=a-b, bytes=a-, bytes=-n, within and across chunk boundaries', async () => {
        const c0 = cuts[0]!;
        const c1 = cuts[1]!;
        const cases: Array<[string, number, number]> = [
          ['bytes=0-0', 0, 0],
          ['bytes=0-99', 0, 99],
          [`bytes=${c0 - 1}-${c0}`, c0 - 1, c0], // the last byte of chunk 0 and the first of chunk 1
          [`bytes=${c0}-${c0}`, c0, c0],
          [`bytes=${c0 - 100}-${c1 + 100}`, c0 - 100, c1 + 100], // three chunks
          [`bytes=1-${size - 2}`, 1, size - 2], // every chunk, trimmed at both ends
          [`bytes=${c1}-`, c1, size - 1],
          [`bytes=${size - 1}-`, size - 1, size - 1],
          [`bytes=0-`, 0, size - 1],
          [`bytes=${c0 + 5}-${size + 1000}`, c0 + 5, size - 1], // end past the end is clamped
          ['bytes=-1', size - 1, size - 1],
          ['bytes=-1000', size - 1000, size - 1],
          [`bytes=-${size - c0 + 1}`, c0 - 1, size - 1],
          [`bytes=-${size + 5}`, 0, size - 1],
        ];
        for (const [header, start, end] of cases) {
          const res = await pull(base, name, '1', 'big.bin', { range: header });
          assert.equal(res.status, 206, header);
          assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${size}`, header);
          assert.equal(res.headers.get('content-length'), String(end - start + 1), header);
          assert.equal(res.bytes.length, end - start + 1, `${header}: length`);
          assert.ok(res.bytes.equals(big.subarray(start, end + 1)), `${header}: bytes`);
        }
      });

      test('If-Range: the current ETag → 206; another → the whole file', async () => {
        const etag = `"${digestOf(big)}"`;
        const hit = await pull(base, name, '1', 'big.bin', { range: 'bytes=10-19', 'if-range': etag });
        assert.equal(hit.status, 206);
        assert.ok(hit.bytes.equals(big.subarray(10, 20)));
        const miss = await pull(base, name, '1', 'big.bin', { range: 'bytes=10-19', 'if-range': `"sha256:${'1'.repeat(64)}"` });
        assert.equal(miss.status, 200);
        assert.equal(miss.bytes.length, size);
      });

      test('unsatisfiable → 416 with Content-Range: bytes */size and an error body', async () => {
        for (const header of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
          const res = await call(base, 'GET', filePath(name, '1', 'big.bin'), undefined, { range: header });
          assertError(res, 416, 'RANGE_NOT_SATISFIABLE', header);
          assert.equal(res.headers.get('content-range'), `bytes */${size}`, header);
        }
        const empty = await call(base, 'GET', filePath(name, '1', 'empty.bin'), undefined, { range: 'bytes=0-' });
        assertError(empty, 416, 'RANGE_NOT_SATISFIABLE', 'empty file');
        assert.equal(empty.headers.get('content-range'), 'bytes */0');
      });

      test('an error on a file route is served as JSON, not as the file (Content-Type, Content-Disposition)', async () => {
        const res = await fetch(base + filePath(name, '1', 'big.bin'), { headers: { range: `bytes=${size}-` } });
        assert.equal(res.status, 416);
        const text = await res.text();
        assert.equal(JSON.parse(text).error.code, 'RANGE_NOT_SATISFIABLE');
        assert.deepEqual(
          { 'content-type': (res.headers.get('content-type') ?? '').split(';')[0], 'content-disposition': res.headers.get('content-disposition') },
          { 'content-type': 'application/json', 'content-disposition': null },
          'the JSON error body is labelled as JSON, and is not an attachment named like the file',
        );
      });

      test('an empty file: publish and pull', async () => {
        const res = await pull(base, name, '1', 'empty.bin');
        assert.equal(res.status, 200);
        assert.equal(res.bytes.length, 0);
        assert.equal(res.headers.get('content-length'), '0');
        assert.equal(res.headers.get('etag'), `"${digestOf(new Uint8Array(0))}"`);
        const only = await publishForm(base, 'empty-only', { version: '1' }, [{ path: 'nothing', data: new Uint8Array(0) }]);
        assert.equal(only.status, 201, JSON.stringify(only.body));
        assert.deepEqual(only.body.files, [{ ...only.body.files[0], path: 'nothing', size: 0, digest: digestOf(new Uint8Array(0)) }]);
        assert.equal(only.body.size, 0);
        const back = await pull(base, 'empty-only', 'latest', 'nothing');
        assert.equal(back.status, 200);
        assert.equal(back.bytes.length, 0);
        const archive = await fetch(`${base}/v1/models/empty-only/versions/1/archive`);
        const entries = await untar(Buffer.from(await archive.arrayBuffer()));
        assert.deepEqual(entries.map((e) => [e.name, e.data.length]), [['nothing', 0]]);
      });

      test('archive with a multi-chunk file', async () => {
        const res = await fetch(`${base}/v1/models/${name}/versions/1/archive`);
        assert.equal(res.status, 200);
        const entries = await untar(Buffer.from(await res.arrayBuffer()));
        assert.deepEqual(entries.map((e) => e.name), ['big.bin', 'empty.bin']);
        assert.ok(entries[0]!.data.equals(big));
        assert.equal(entries[1]!.data.length, 0);
      });
    });

    describe('validation', () => {
      let modelsBefore: string[];
      const listNames = async () => (await allPages<{ name: string }>(base, '/v1/models', 'models', 1000)).items.map((m) => m.name);
      const tiny: FilePart[] = [{ path: 'f.txt', data: Buffer.from('tiny') }];

      before(async () => {
        modelsBefore = await listNames();
      });

      test('bad model names → 400 INVALID_NAME', async () => {
        for (const bad of ['Bad_Name', 'a..b', '-lead', 'x'.repeat(129), 'sp%20ace']) {
          assertError(await publishForm(base, bad, { version: '1' }, tiny), 400, 'INVALID_NAME', `multipart ${bad}`);
          assertError(await call(base, 'POST', `/v1/models/${bad}/versions`, { version: '1', files: [{ path: 'f.txt', digest: digestOf(Buffer.from('tiny')) }] }), 400, 'INVALID_NAME', `JSON ${bad}`);
          assertError(await call(base, 'GET', `/v1/models/${bad}`), 400, 'INVALID_NAME', `GET ${bad}`);
        }
      });

      test('bad versions → 400 INVALID_VERSION (../x, empty, too long, reserved, missing)', async () => {
        for (const bad of ['../x', '', 'v'.repeat(129), '.hidden', 'a b', 'latest', `sha256:${'a'.repeat(64)}`]) {
          assertError(await publishForm(base, 'valid-name', { version: bad }, tiny), 400, 'INVALID_VERSION', `multipart ${JSON.stringify(bad)}`);
          assertError(await call(base, 'POST', '/v1/models/valid-name/versions', { version: bad, files: [{ path: 'f.txt', digest: digestOf(Buffer.from('tiny')) }] }), 400, 'INVALID_VERSION', `JSON ${JSON.stringify(bad)}`);
        }
        assertError(await publishForm(base, 'valid-name', {}, tiny), 400, 'INVALID_VERSION', 'multipart without a version field');
        assertError(await call(base, 'POST', '/v1/models/valid-name/versions', { files: [] }), 400, 'INVALID_VERSION', 'JSON without a version');
        const longest = publishForm(base, 'valid-name', { version: 'v'.repeat(128) }, tiny);
        assert.equal((await longest).status, 201, '128 characters is allowed');
      });

      test('bad file paths → 400 INVALID_PATH (multipart and JSON)', async () => {
        const bad = ['../../etc/x', '/abs', 'a//b', './a', 'a/./b', 'a/..', 'a/', '..'];
        for (const p of bad) {
          assertError(await publishForm(base, 'path-model', { version: '1' }, [{ path: 'ok.txt', data: Buffer.from('ok') }, { path: p, data: Buffer.from('x') }]), 400, 'INVALID_PATH', `multipart ${p}`);
        }
        for (const disposition of [`filename*=UTF-8''a%01b`, `filename*=UTF-8''a%7Fb`, `filename="a\tb"`, `filename*=UTF-8''a%5Cb`, `filename="dir\\\\file"`]) {
          assertError(await publishRawMultipart(base, 'path-model', { version: '1' }, [{ disposition, data: Buffer.from('x') }]), 400, 'INVALID_PATH', `raw multipart ${disposition}`);
        }
        const digest = digestOf(Buffer.from('tiny'));
        for (const p of [...bad, 'a\u0001b', 'a\nb', 'a\u0000b', 'a\\b', 'x'.repeat(1025), 'é'.repeat(513), '']) {
          assertError(await call(base, 'POST', '/v1/models/path-model/versions', { version: '1', files: [{ path: p, digest }] }), 400, 'INVALID_PATH', `JSON ${JSON.stringify(p).slice(0, 40)}`);
        }
      });

      test('duplicate path in one version → 400 DUPLICATE_PATH (multipart and JSON)', async () => {
        assertError(
          await publishForm(base, 'dup-model', { version: '1' }, [
            { path: 'same.bin', data: Buffer.from('one') },
            { path: 'other.bin', data: Buffer.from('two') },
            { path: 'same.bin', data: Buffer.from('three') },
          ]),
          400,
          'DUPLICATE_PATH',
          'multipart',
        );
        const upload = await publishForm(base, 'dup-source', { version: '1' }, [{ path: 'x', data: Buffer.from('dup-bytes') }]);
        assert.equal(upload.status, 201);
        const digest = digestOf(Buffer.from('dup-bytes'));
        assertError(await call(base, 'POST', '/v1/models/dup-model/versions', { version: '1', files: [{ path: 'a', digest }, { path: 'a', digest }] }), 400, 'DUPLICATE_PATH', 'JSON');
      });

      test('invalid metadata → 400 INVALID_ARGUMENT', async () => {
        for (const metadata of ['{not json', '[1,2]', '"a string"', '42', 'null ']) {
          assertError(await publishForm(base, 'meta-model', { version: '1', metadata }, tiny), 400, 'INVALID_ARGUMENT', `metadata ${metadata}`);
        }
        const digest = digestOf(Buffer.from('tiny'));
        assertError(await call(base, 'POST', '/v1/models/meta-model/versions', { version: '1', metadata: [1], files: [{ path: 'f', digest }] }), 400, 'INVALID_ARGUMENT', 'JSON metadata array');
      });

      test('JSON publish: unknown blob → 400 UNKNOWN_BLOB; malformed digest, no files, malformed JSON → 400', async () => {
        assertError(await call(base, 'POST', '/v1/models/json-bad/versions', { version: '1', files: [{ path: 'w.bin', digest: `sha256:${'c'.repeat(64)}` }] }), 400, 'UNKNOWN_BLOB');
        assertError(await call(base, 'POST', '/v1/models/json-bad/versions', { version: '1', files: [{ path: 'w.bin', digest: 'sha256:XYZ' }] }), 400, 'INVALID_DIGEST');
        assertError(await call(base, 'POST', '/v1/models/json-bad/versions', { version: '1', files: [] }), 400, 'INVALID_ARGUMENT', 'no files');
        const res = await fetch(`${base}/v1/models/json-bad/versions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version": "1", files: ' });
        const body = await res.json();
        assertError({ status: res.status, body }, 400, 'INVALID_ARGUMENT', 'malformed JSON');
      });

      test('415 for a publish body that is neither multipart nor JSON', async () => {
        const res = await fetch(`${base}/v1/models/plain-model/versions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'version=1' });
        assertError({ status: res.status, body: await res.json() }, 415, 'UNSUPPORTED_MEDIA_TYPE');
        const octet = await fetch(`${base}/v1/models/plain-model/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bodyOf(randomBytesFor('octet', 1000)) });
        assertError({ status: octet.status, body: await octet.json() }, 415, 'UNSUPPORTED_MEDIA_TYPE');
      });

      test('bad cursor and bad limit → 400 INVALID_ARGUMENT', async () => {
        assert.equal((await publishForm(base, 'cursor-model', { version: '1' }, tiny)).status, 201);
        for (const q of ['cursor=!!!', 'cursor=bm90LWpzb24', `cursor=${Buffer.from('42').toString('base64url')}`]) {
          assertError(await call(base, 'GET', `/v1/models?${q}`), 400, 'INVALID_ARGUMENT', `models ${q}`);
        }
        for (const q of ['cursor=!!!', `cursor=${Buffer.from('"name"').toString('base64url')}`]) {
          assertError(await call(base, 'GET', `/v1/models/cursor-model/versions?${q}`), 400, 'INVALID_ARGUMENT', `versions ${q}`);
        }
        for (const limit of ['0', '-1', '1.5', 'abc', '1001', '1e9']) {
          assertError(await call(base, 'GET', `/v1/models?limit=${limit}`), 400, 'INVALID_ARGUMENT', `models limit=${limit}`);
          assertError(await call(base, 'GET', `/v1/models/cursor-model/versions?limit=${limit}`), 400, 'INVALID_ARGUMENT', `versions limit=${limit}`);
        }
      });

      test('nothing half-written is visible after failed publishes', async () => {
        const now = await listNames();
        const created = ['valid-name', 'dup-source', 'cursor-model'];
        assert.deepEqual(now.filter((n) => !modelsBefore.includes(n)).sort(), created.sort(), 'only the successful publishes created models');
        for (const n of ['path-model', 'dup-model', 'meta-model', 'json-bad', 'plain-model']) {
          assertError(await call(base, 'GET', `/v1/models/${n}`), 404, 'MODEL_NOT_FOUND', n);
          assertError(await call(base, 'GET', `/v1/models/${n}/versions/1`), 404, 'MODEL_NOT_FOUND', n);
        }
      });

      test('a publish failing after a large file was streamed leaves nothing visible', async () => {
        const big = randomBytesFor(`${kind}-half`, 3 * MiB);
        const fresh = await publishForm(base, 'half-written', { version: '1' }, [{ path: 'big.bin', data: big }, { path: '../evil', data: Buffer.from('x') }]);
        assertError(fresh, 400, 'INVALID_PATH');
        assertError(await call(base, 'GET', '/v1/models/half-written'), 404, 'MODEL_NOT_FOUND');
        // an existing model: a failed new version changes nothing
        assert.equal((await publishForm(base, 'half-existing', { version: '1' }, tiny)).status, 201);
        const before = await call(base, 'GET', '/v1/models/half-existing');
        const failed = await publishForm(base, 'half-existing', { version: '2', metadata: '{bad' }, [{ path: 'big.bin', data: big }]);
        assertError(failed, 400, 'INVALID_ARGUMENT');
        const dup = await publishForm(base, 'half-existing', { version: '2' }, [{ path: 'big.bin', data: big }, { path: 'big.bin', data: big }]);
        assertError(dup, 400, 'DUPLICATE_PATH');
        assertError(await call(base, 'GET', '/v1/models/half-existing/versions/2'), 404, 'VERSION_NOT_FOUND');
        const afterDoc = await call(base, 'GET', '/v1/models/half-existing');
        assert.deepEqual(afterDoc.body.counts, before.body.counts);
        assert.equal(afterDoc.body.latest.version, '1');
        const listed = await call(base, 'GET', '/v1/models/half-existing/versions');
        assert.deepEqual(listed.body.versions.map((v: any) => v.version), ['1']);
        // and the version string is still free
        const ok = await publishForm(base, 'half-existing', { version: '2' }, [{ path: 'big.bin', data: big }]);
        assert.equal(ok.status, 201, JSON.stringify(ok.body));
        assert.ok((await pull(base, 'half-existing', '2', 'big.bin')).bytes.equals(big));
      });
    });

    test('a publish whose client goes away mid-file leaves nothing visible; the version can be published later', async () => {
      const boundary = `----cairn-abort-${randomBytes(6).toString('hex')}`;
      const head = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n1\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      );
      const big = randomBytesFor(`${kind}-aborted-publish`, 6 * MiB);
      await new Promise<void>((resolve) => {
        const req = http.request(`${base}/v1/models/aborted-model/versions`, {
          method: 'POST',
          agent: false,
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + big.length + 100) },
        });
        req.on('error', () => resolve());
        req.on('response', (res) => {
          res.resume();
          resolve();
        });
        req.write(head);
        req.write(big.subarray(0, 3 * MiB), () => {
          // the client stalls mid-file, then goes away (the scenario, not a wait)
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 300);
        });
      });
      // A negative check: nothing the aborted request left behind may become
      // visible later either; there is no event to await for "nothing happens".
      await sleep(300);
      assertError(await call(base, 'GET', '/v1/models/aborted-model'), 404, 'MODEL_NOT_FOUND');
      assert.equal((await call(base, 'GET', '/healthz')).status, 200);
      const ok = await publishForm(base, 'aborted-model', { version: '1' }, [{ path: 'big.bin', data: big }]);
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.ok((await pull(base, 'aborted-model', '1', 'big.bin')).bytes.equals(big));
    });

    describe('aliases', () => {
      const name = 'alias-model';
      before(async () => {
        for (const v of ['1', '2', '3']) {
          const res = await publishForm(base, name, { version: v }, [{ path: 'v.txt', data: Buffer.from(`version ${v}`) }]);
          assert.equal(res.status, 201, JSON.stringify(res.body));
        }
      });

      test('set, resolve, move (previous), delete', async () => {
        const set = await call(base, 'PUT', `/v1/models/${name}/aliases/production`, { version: '1' });
        assert.equal(set.status, 200, JSON.stringify(set.body));
        assert.deepEqual(set.body, { alias: 'production', version: '1', previous: null });
        assert.equal((await call(base, 'GET', `/v1/models/${name}/versions/production`)).body.version, '1');
        assert.ok((await pull(base, name, 'production', 'v.txt')).bytes.equals(Buffer.from('version 1')));

        const moved = await call(base, 'PUT', `/v1/models/${name}/aliases/production`, { version: '2' });
        assert.equal(moved.status, 200);
        assert.deepEqual(moved.body, { alias: 'production', version: '2', previous: '1' });
        assert.equal((await call(base, 'GET', `/v1/models/${name}/versions/production`)).body.version, '2');
        assert.deepEqual((await call(base, 'GET', `/v1/models/${name}/versions/2`)).body.aliases, ['production']);
        assert.deepEqual((await call(base, 'GET', `/v1/models/${name}/versions/1`)).body.aliases, []);
        assert.deepEqual((await call(base, 'GET', `/v1/models/${name}`)).body.aliases, { production: '2' });

        const same = await call(base, 'PUT', `/v1/models/${name}/aliases/production`, { version: '2' });
        assert.deepEqual(same.body, { alias: 'production', version: '2', previous: '2' });

        const del = await fetch(`${base}/v1/models/${name}/aliases/production`, { method: 'DELETE' });
        assert.equal(del.status, 204);
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/production`), 404, 'VERSION_NOT_FOUND');
        assert.deepEqual((await call(base, 'GET', `/v1/models/${name}`)).body.aliases, {});
      });

      test('errors: delete unknown → 404, latest reserved → 400, unknown version → 404, unknown model → 404, bad alias → 400', async () => {
        assertError(await call(base, 'DELETE', `/v1/models/${name}/aliases/never-set`), 404, 'ALIAS_NOT_FOUND');
        assertError(await call(base, 'PUT', `/v1/models/${name}/aliases/latest`, { version: '1' }), 400, 'INVALID_ALIAS', 'PUT latest');
        assertError(await call(base, 'DELETE', `/v1/models/${name}/aliases/latest`), 400, 'INVALID_ALIAS', 'DELETE latest');
        assertError(await call(base, 'PUT', `/v1/models/${name}/aliases/staging`, { version: '42' }), 404, 'VERSION_NOT_FOUND');
        assertError(await call(base, 'PUT', `/v1/models/no-model-here/aliases/staging`, { version: '1' }), 404, 'MODEL_NOT_FOUND');
        assertError(await call(base, 'PUT', `/v1/models/${name}/aliases/Bad_Alias`, { version: '1' }), 400, 'INVALID_ALIAS');
        assertError(await call(base, 'PUT', `/v1/models/${name}/aliases/staging`, {}), 400, 'INVALID_VERSION', 'no version in the body');
        assertError(await publishForm(base, name, { version: '4', aliases: ['latest'] }, [{ path: 'v.txt', data: Buffer.from('4') }]), 400, 'INVALID_ALIAS', 'publish with alias latest');
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/4`), 404, 'VERSION_NOT_FOUND');
        assert.deepEqual((await call(base, 'GET', `/v1/models/${name}`)).body.aliases, {});
      });

      test('an alias cannot be shadowed by a version of the same name (either way round)', async () => {
        assertError(await call(base, 'PUT', `/v1/models/${name}/aliases/2`, { version: '1' }), 400, 'INVALID_ALIAS', 'alias named like a version');
        assert.equal((await call(base, 'PUT', `/v1/models/${name}/aliases/champion`, { version: '1' })).status, 200);
        const res = await publishForm(base, name, { version: 'champion' }, [{ path: 'v.txt', data: Buffer.from('shadow') }]);
        const stillAlias = await call(base, 'GET', `/v1/models/${name}/versions/champion`);
        assert.ok(
          res.status === 400 || res.status === 409,
          `publishing version "champion" while alias champion -> 1 exists must be refused (got ${res.status}); ` +
            `otherwise @champion silently stops resolving to the alias (now resolves to ${stillAlias.body?.version})`,
        );
        assert.equal(stillAlias.body.version, '1');
      });
    });

    describe('deleting a version', () => {
      const name = 'del-model';
      let v2digest: string;
      before(async () => {
        assert.equal((await publishForm(base, name, { version: '1' }, [{ path: 'w', data: Buffer.from('one') }])).status, 201);
        const r2 = await publishForm(base, name, { version: '2', aliases: ['prod'] }, [{ path: 'w', data: Buffer.from('two') }]);
        assert.equal(r2.status, 201);
        assert.deepEqual(r2.body.aliases, ['prod']);
        v2digest = r2.body.digest;
      });

      test('409 VERSION_HAS_ALIASES while aliased; 204 after the alias moved; then gone', async () => {
        const refused = await call(base, 'DELETE', `/v1/models/${name}/versions/2`);
        assertError(refused, 409, 'VERSION_HAS_ALIASES');
        assert.equal((await call(base, 'GET', `/v1/models/${name}/versions/2`)).status, 200, 'still there');

        assert.equal((await call(base, 'PUT', `/v1/models/${name}/aliases/prod`, { version: '1' })).status, 200);
        const del = await fetch(`${base}/v1/models/${name}/versions/2`, { method: 'DELETE' });
        assert.equal(del.status, 204);

        assertError(await call(base, 'GET', `/v1/models/${name}/versions/2`), 404, GONE);
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/${v2digest}`), 404, 'VERSION_NOT_FOUND', 'by digest');
        assertError(await call(base, 'GET', filePath(name, '2', 'w')), 404, GONE, 'its files');
        assertError(await call(base, 'GET', `/v1/models/${name}/versions/2/archive`), 404, GONE, 'its archive');
        assertError(await call(base, 'DELETE', `/v1/models/${name}/versions/2`), 404, GONE, 'delete again');
        assertError(await call(base, 'DELETE', `/v1/models/${name}/versions/77`), 404, 'VERSION_NOT_FOUND', 'delete unknown');
        assertError(await call(base, 'PUT', `/v1/models/${name}/aliases/prod`, { version: '2' }), 404, GONE, 'alias to a deleted version');
      });

      test('latest moves back; the version string stays taken; numbers keep increasing', async () => {
        const latest = await call(base, 'GET', `/v1/models/${name}/versions/latest`);
        assert.equal(latest.body.version, '1');
        const model = await call(base, 'GET', `/v1/models/${name}`);
        assert.equal(model.body.latest.version, '1');
        assert.equal(model.body.counts.versions, 1);
        const listed = await call(base, 'GET', `/v1/models/${name}/versions`);
        assert.deepEqual(listed.body.versions.map((v: any) => v.version), ['1']);
        const inList = await call(base, 'GET', `/v1/models?q=${name}`);
        assert.equal(inList.body.models.find((m: any) => m.name === name)?.latest_version, '1');

        assertError(await publishForm(base, name, { version: '2' }, [{ path: 'w', data: Buffer.from('two again') }]), 409, 'VERSION_EXISTS', 'republish a deleted version');
        assertError(await publishForm(base, name, { version: '2' }, [{ path: 'w', data: Buffer.from('two again') }], { fieldsAfterFiles: true }), 409, 'VERSION_EXISTS', 'republish a deleted version (fields last)');

        const r3 = await publishForm(base, name, { version: '3' }, [{ path: 'w', data: Buffer.from('three') }]);
        assert.equal(r3.status, 201);
        assert.equal(r3.body.number, 3, 'numbers are never reused');
        assert.equal((await call(base, 'GET', `/v1/models/${name}/versions/latest`)).body.version, '3');
      });

      test('deleting the only version: the model stays, without a latest', async () => {
        assert.equal((await publishForm(base, 'solo-model', { version: '1' }, [{ path: 'w', data: Buffer.from('solo') }])).status, 201);
        assert.equal((await fetch(`${base}/v1/models/solo-model/versions/1`, { method: 'DELETE' })).status, 204);
        assertError(await call(base, 'GET', '/v1/models/solo-model/versions/latest'), 404, 'VERSION_NOT_FOUND');
        const model = await call(base, 'GET', '/v1/models/solo-model');
        assert.equal(model.status, 200);
        assert.equal(model.body.latest, null);
        assert.equal(model.body.counts.versions, 0);
        assert.deepEqual((await call(base, 'GET', '/v1/models/solo-model/versions')).body, { versions: [], next_cursor: null });
        assertError(await call(base, 'DELETE', '/v1/models/no-such-model/versions/1'), 404, 'MODEL_NOT_FOUND');
        const next = await publishForm(base, 'solo-model', { version: '2' }, [{ path: 'w', data: Buffer.from('solo 2') }]);
        assert.equal(next.body.number, 2);
      });
    });

    describe('listing and pagination', () => {
      const names = Array.from({ length: 7 }, (_, i) => `pg-m-${String(i + 1).padStart(2, '0')}`);
      before(async () => {
        for (const n of [...names].reverse()) {
          const res = await publishForm(base, n, { version: '1' }, [{ path: 'x', data: Buffer.from(n) }]);
          assert.equal(res.status, 201, JSON.stringify(res.body));
        }
        assert.equal((await publishForm(base, 'other-unrelated', { version: '1' }, [{ path: 'x', data: Buffer.from('o') }])).status, 201);
        for (let v = 2; v <= 5; v++) {
          assert.equal((await publishForm(base, 'pg-m-03', { version: `${v}.0` }, [{ path: 'x', data: Buffer.from(`v${v}`) }])).status, 201);
        }
      });

      test('search with q, paged by limit 3: every model exactly once, in name order', async () => {
        const { items, pages } = await allPages<any>(base, '/v1/models?q=pg-m-', 'models', 3);
        assert.deepEqual(pages, [3, 3, 1]);
        assert.deepEqual(items.map((m) => m.name), names);
        const m3 = items.find((m) => m.name === 'pg-m-03');
        assert.equal(m3.latest_version, '5.0');
        assert.equal(m3.versions, 5);
        const exact = await allPages<any>(base, '/v1/models?q=pg-m-', 'models', 7);
        assert.deepEqual(exact.pages, [7], 'a full last page has no next cursor');
        const one = await allPages<any>(base, '/v1/models?q=pg-m-', 'models', 1);
        assert.deepEqual(one.items.map((m) => m.name), names);
      });

      test('q that matches nothing; q with LIKE wildcards is literal; no q lists everything', async () => {
        const none = await call(base, 'GET', '/v1/models?q=zzz-nothing');
        assert.deepEqual(none.body, { models: [], next_cursor: null });
        for (const q of ['%', '_', 'pg_m']) {
          const res = await call(base, 'GET', `/v1/models?q=${encodeURIComponent(q)}`);
          assert.deepEqual(res.body.models, [], `q=${q} is not a wildcard`);
        }
        const all = await allPages<any>(base, '/v1/models', 'models', 4);
        const allNames = all.items.map((m) => m.name);
        assert.equal(new Set(allNames).size, allNames.length, 'no duplicates');
        for (const n of [...names, 'other-unrelated']) assert.ok(allNames.includes(n), n);
        assert.deepEqual(allNames, [...allNames].sort(), 'name order');
      });

      test('versions newest first, paginated', async () => {
        const { items, pages } = await allPages<any>(base, '/v1/models/pg-m-03/versions', 'versions', 2);
        assert.deepEqual(pages, [2, 2, 1]);
        assert.deepEqual(items.map((v) => v.version), ['5.0', '4.0', '3.0', '2.0', '1']);
        assert.deepEqual(items.map((v) => v.number), [5, 4, 3, 2, 1]);
        for (const v of items) assert.match(v.digest, DIGEST_RE);
        assertError(await call(base, 'GET', '/v1/models/no-such-model/versions'), 404, 'MODEL_NOT_FOUND');
      });
    });

    describe('lineage, history and the git mirror (smoke; test/lineage.test.ts goes deeper)', () => {
      let baseDoc: any;
      before(async () => {
        const res = await publishForm(base, 'base-lm', { version: '1', message: 'the base' }, [{ path: 'w', data: Buffer.from('base weights') }]);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        baseDoc = res.body;
      });

      test('parents from multipart fields and from JSON; the lineage graph', async () => {
        const form = new FormData();
        form.append('version', '1');
        form.append('parent', 'base-lm@latest');
        form.append('relation', 'fine-tuned-from');
        form.append('recipe', JSON.stringify({ epochs: 3 }));
        form.append('file', new Blob([bodyOf(Buffer.from('tuned weights'))]), 'w');
        const tunedRes = await fetch(`${base}/v1/models/tuned-lm/versions`, { method: 'POST', body: form });
        const tuned = await tunedRes.json();
        assert.equal(tunedRes.status, 201, JSON.stringify(tuned));
        assert.deepEqual(tuned.parents, [{ name: 'base-lm', version: '1', digest: baseDoc.digest, relation: 'fine-tuned-from', recipe: { epochs: 3 } }]);

        const q = await call(base, 'POST', '/v1/models/tuned-lm-q4/versions', {
          version: '1',
          files: [{ path: 'w', digest: digestOf(Buffer.from('base weights')) }],
          parents: [{ ref: `tuned-lm@${tuned.digest}`, relation: 'quantized-from', recipe: { bits: 4 } }],
        });
        assert.equal(q.status, 201, JSON.stringify(q.body));
        assert.equal(q.body.parents[0].name, 'tuned-lm');

        const graph = await call(base, 'GET', '/v1/models/tuned-lm/versions/1/lineage');
        assert.equal(graph.status, 200, JSON.stringify(graph.body));
        assert.deepEqual(graph.body.nodes.map((n: any) => `${n.name}@${n.version}`).sort(), ['base-lm@1', 'tuned-lm-q4@1', 'tuned-lm@1']);
        assert.deepEqual(graph.body.edges.map((e: any) => `${e.from} ${e.relation} ${e.to}`).sort(), [
          'tuned-lm-q4@1 quantized-from tuned-lm@1',
          'tuned-lm@1 fine-tuned-from base-lm@1',
        ]);
        assertError(await call(base, 'GET', '/v1/models/tuned-lm/versions/9/lineage'), 404, 'VERSION_NOT_FOUND');
        assertError(await call(base, 'GET', '/v1/models/nope-lm/versions/1/lineage'), 404, 'MODEL_NOT_FOUND');
      });

      test('bad parents → 400 and nothing published', async () => {
        const form = new FormData();
        form.append('version', '1');
        form.append('parent', 'base-lm@9');
        form.append('file', new Blob([bodyOf(Buffer.from('x'))]), 'w');
        const res = await fetch(`${base}/v1/models/orphan-lm/versions`, { method: 'POST', body: form });
        assertError({ status: res.status, body: await res.json() }, 400, 'INVALID_PARENT', 'unknown parent version');
        assertError(await call(base, 'GET', '/v1/models/orphan-lm'), 404, 'MODEL_NOT_FOUND');
        const digest = digestOf(Buffer.from('base weights'));
        assertError(await call(base, 'POST', '/v1/models/orphan-lm2/versions', { version: '1', files: [{ path: 'w', digest }], parents: ['no-such-model@1'] }), 400, 'INVALID_PARENT');
        assertError(await call(base, 'POST', '/v1/models/orphan-lm2/versions', { version: '1', files: [{ path: 'w', digest }], parents: ['not a ref'] }), 400, 'INVALID_PARENT');
        assertError(await call(base, 'POST', '/v1/models/orphan-lm2/versions', { version: '1', files: [{ path: 'w', digest }], parents: [{ ref: 'base-lm@1', relation: 'copied-from' }] }), 400, 'INVALID_ARGUMENT');
        assertError(await call(base, 'GET', '/v1/models/orphan-lm2'), 404, 'MODEL_NOT_FOUND');
      });

      test('history: newest first, paginated; errors', async () => {
        assert.equal((await call(base, 'PUT', '/v1/models/base-lm/aliases/stable', { version: '1' })).status, 200);
        assert.equal((await call(base, 'DELETE', '/v1/models/base-lm/aliases/stable')).status, 204);
        const { items, pages } = await allPages<any>(base, '/v1/models/base-lm/history', 'events', 2);
        assert.deepEqual(pages, [2, 1]);
        assert.deepEqual(items.map((e) => e.subject), ['unalias base-lm@stable', 'alias base-lm@stable -> 1', 'publish base-lm@1']);
        assert.deepEqual(items.map((e) => e.event), ['unalias', 'alias', 'publish']);
        assert.equal(items[2].message, 'the base');
        for (const e of items) {
          assert.equal(typeof e.author, 'string');
          assert.ok(!Number.isNaN(Date.parse(e.time)));
          assert.ok(e.commit === null || /^[0-9a-f]{40}$/.test(e.commit), `commit ${e.commit}`);
        }
        assertError(await call(base, 'GET', '/v1/models/nope-lm/history'), 404, 'MODEL_NOT_FOUND');
        assertError(await call(base, 'GET', '/v1/models/base-lm/history?cursor=!!!'), 400, 'INVALID_ARGUMENT');
        assertError(await call(base, 'GET', '/v1/models/base-lm/history?limit=0'), 400, 'INVALID_ARGUMENT');
      });

      test('git smart HTTP: ref advertisement served, pushes refused; readyz reports the mirror', async () => {
        const refs = await fetch(`${base}/git/lineage.git/info/refs?service=git-upload-pack`);
        assert.equal(refs.status, 200);
        assert.equal(refs.headers.get('content-type'), 'application/x-git-upload-pack-advertisement');
        assert.match(await refs.text(), /^001e# service=git-upload-pack\n/);
        const push = await call(base, 'GET', '/git/lineage.git/info/refs?service=git-receive-pack');
        assertError(push, 403, 'FORBIDDEN');
        const post = await call(base, 'POST', '/git/lineage.git/git-receive-pack');
        assertError(post, 403, 'FORBIDDEN');
        const ready = await call(base, 'GET', '/readyz');
        assert.equal(ready.status, 200);
        assert.equal(typeof ready.body.mirror?.pending, 'number');
      });
    });

    describe('upload sessions', () => {
      const data = randomBytesFor(`${kind}-upload`, 5 * MiB + 4321);
      const digest = digestOf(data);

      test('start, append in parts, read offset, offset mismatch, wrong digest, finish, HEAD blob, JSON publish, pull', async () => {
        const created = await call(base, 'POST', '/v1/uploads');
        assert.equal(created.status, 201);
        const id = created.body.id as string;
        assert.equal(typeof id, 'string');
        assert.equal(created.body.offset, 0);
        assert.equal(created.headers.get('location'), `/v1/uploads/${id}`);
        assert.equal((await call(base, 'GET', `/v1/uploads/${id}`)).body.offset, 0);

        const a = 2 * MiB + 1;
        const b = 4 * MiB + 3;
        const p1 = await patch(base, id, data.subarray(0, a), [0, a - 1]);
        assert.equal(p1.status, 202, JSON.stringify(p1.body));
        assert.equal(p1.body.offset, a);
        const p2 = await patch(base, id, data.subarray(a, b), [a, b - 1]);
        assert.equal(p2.status, 202, JSON.stringify(p2.body));
        assert.equal(p2.body.offset, b);
        const got = await call(base, 'GET', `/v1/uploads/${id}`);
        assert.equal(got.status, 200);
        assert.equal(got.body.offset, b);

        const wrong = await patch(base, id, data.subarray(0, 100), [0, 99]);
        assertError(wrong, 409, 'UPLOAD_OFFSET_MISMATCH');
        const ahead = await patch(base, id, data.subarray(b + 10, b + 20), [b + 10, b + 19]);
        assertError(ahead, 409, 'UPLOAD_OFFSET_MISMATCH', 'a gap');
        assert.equal((await call(base, 'GET', `/v1/uploads/${id}`)).body.offset, b, 'mismatches change nothing');

        const p3 = await patch(base, id, data.subarray(b), undefined); // no Content-Range: appended at the end
        assert.equal(p3.status, 202, JSON.stringify(p3.body));
        assert.equal(p3.body.offset, data.length);

        const bad = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(Buffer.from('not it'))}`);
        assertError(bad, 400, 'DIGEST_MISMATCH');
        const still = await call(base, 'GET', `/v1/uploads/${id}`);
        assert.equal(still.status, 200, 'the session is still open');
        assert.equal(still.body.offset, data.length);
        assertError(await call(base, 'PUT', `/v1/uploads/${id}?digest=nonsense`), 400, 'INVALID_DIGEST');

        assert.equal((await fetch(`${base}/v1/blobs/${digest}`, { method: 'HEAD' })).status, 404, 'not a blob before finishing');

        const done = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digest}`);
        assert.equal(done.status, 201, JSON.stringify(done.body));
        assert.deepEqual(done.body, { digest, size: data.length });
        assertError(await call(base, 'GET', `/v1/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND', 'a finished session is gone');

        const head = await fetch(`${base}/v1/blobs/${digest}`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), String(data.length));
        const unknown = await fetch(`${base}/v1/blobs/sha256:${'d'.repeat(64)}`, { method: 'HEAD' });
        assert.equal(unknown.status, 404);
        const malformed = await fetch(`${base}/v1/blobs/sha256:nothex`, { method: 'HEAD' });
        assert.equal(malformed.status, 400);

        const pub = await call(base, 'POST', '/v1/models/uploaded-model/versions', {
          version: '1.0',
          message: 'from an upload',
          aliases: ['prod'],
          metadata: { source: 'upload', n: 1 },
          files: [
            { path: 'weights/model.bin', digest },
            { path: 'copy.bin', digest },
          ],
        });
        assert.equal(pub.status, 201, JSON.stringify(pub.body));
        assert.deepEqual(pub.body.files.map((f: any) => [f.path, f.size, f.digest]), [
          ['copy.bin', data.length, digest],
          ['weights/model.bin', data.length, digest],
        ]);
        assert.deepEqual(pub.body.aliases, ['prod']);
        assert.deepEqual(pub.body.metadata, { source: 'upload', n: 1 });
        assert.equal(pub.body.message, 'from an upload');
        for (const p of ['weights/model.bin', 'copy.bin']) {
          const res = await pull(base, 'uploaded-model', 'prod', p);
          assert.equal(res.status, 200);
          assert.ok(res.bytes.equals(data), `${p} byte-identical`);
        }
        // a range across the boundaries between the PATCHed parts
        const ranged = await pull(base, 'uploaded-model', '1.0', 'copy.bin', { range: `bytes=${a - 5}-${b + 5}` });
        assert.equal(ranged.status, 206);
        assert.ok(ranged.bytes.equals(data.subarray(a - 5, b + 6)));
      });

      test('PUT can carry the last part as its body', async () => {
        const small = randomBytesFor(`${kind}-put-body`, 300 * KiB);
        const id = (await call(base, 'POST', '/v1/uploads')).body.id as string;
        assert.equal((await patch(base, id, small.subarray(0, 1000), [0, 999])).status, 202);
        const res = await fetch(`${base}/v1/uploads/${id}?digest=${digestOf(small)}`, { method: 'PUT', body: bodyOf(small.subarray(1000)) });
        assert.equal(res.status, 201, await res.clone().text());
        assert.deepEqual(await res.json(), { digest: digestOf(small), size: small.length });
      });

      test('an interrupted PATCH keeps what the server received; the upload resumes to completion', async () => {
        const payload = randomBytesFor(`${kind}-interrupted`, 6 * MiB + 99);
        const id = (await call(base, 'POST', '/v1/uploads')).body.id as string;
        const first = 1000;
        assert.equal((await patch(base, id, payload.subarray(0, first), [0, first - 1])).status, 202);

        const written = 3 * MiB;
        await new Promise<void>((resolve) => {
          const url = new URL(`${base}/v1/uploads/${id}`);
          const req = http.request({
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'PATCH',
            agent: false,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(payload.length - first),
              'content-range': `bytes ${first}-${payload.length - 1}/*`,
            },
          });
          req.on('error', () => resolve());
          req.on('response', (res) => {
            res.resume();
            resolve();
          });
          req.write(payload.subarray(first, first + written), () => {
            // the client stalls mid-part, then goes away (the scenario, not a wait)
            setTimeout(() => {
              req.destroy();
              resolve();
            }, 400);
          });
        });

        const offset = await offsetWhenIdle(base, id, first + 1);
        assert.ok(offset > first, `the server kept bytes of the interrupted PATCH (offset ${offset})`);
        assert.ok(offset <= first + written, `no more than was sent (offset ${offset}, sent ${first + written})`);

        // resume from exactly where the server is
        const resumed = await patch(base, id, payload.subarray(offset), [offset, payload.length - 1]);
        assert.equal(resumed.status, 202, JSON.stringify(resumed.body));
        assert.equal(resumed.body.offset, payload.length);
        const done = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(payload)}`);
        assert.equal(done.status, 201, JSON.stringify(done.body));
        assert.equal(done.body.size, payload.length);

        const pub = await call(base, 'POST', '/v1/models/resumed-model/versions', { version: '1', files: [{ path: 'w.bin', digest: digestOf(payload) }] });
        assert.equal(pub.status, 201, JSON.stringify(pub.body));
        const back = await pull(base, 'resumed-model', '1', 'w.bin');
        assert.ok(back.bytes.equals(payload), 'the resumed upload is byte-identical');
      });

      test('concurrent PATCH on one session → 409 UPLOAD_BUSY', async () => {
        const payload = randomBytesFor(`${kind}-busy`, 2 * MiB);
        const id = (await call(base, 'POST', '/v1/uploads')).body.id as string;
        const url = new URL(`${base}/v1/uploads/${id}`);
        const req = http.request({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'PATCH',
          agent: false,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(payload.length), 'content-range': `bytes 0-${payload.length - 1}/*` },
        });
        const response = new Promise<{ status: number; body: any }>((resolve, reject) => {
          req.on('error', reject);
          req.on('response', (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || 'null') }));
          });
        });
        await new Promise<void>((resolve) => req.write(payload.subarray(0, MiB), () => resolve()));

        // an empty PATCH without Content-Range is harmless if it ever gets in first
        const busy = await waitFor('the session held by the first PATCH', async () => {
          const res = await patch(base, id, undefined);
          return res.status === 409 && res;
        });
        assertError(busy, 409, 'UPLOAD_BUSY');
        assertError(await patch(base, id, payload.subarray(0, 10), [0, 9]), 409, 'UPLOAD_BUSY', 'a second writer with data');
        assertError(await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(payload)}`), 409, 'UPLOAD_BUSY', 'finishing while busy');

        req.end(payload.subarray(MiB));
        const first = await response;
        assert.equal(first.status, 202, JSON.stringify(first.body));
        assert.equal(first.body.offset, payload.length);
        const done = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(payload)}`);
        assert.equal(done.status, 201, JSON.stringify(done.body));
      });

      test('unknown session → 404 UPLOAD_NOT_FOUND; DELETE → 204 and the session is gone', async () => {
        for (const id of ['nope', 'A'.repeat(22), 'bad!id']) {
          assertError(await call(base, 'GET', `/v1/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND', `GET ${id}`);
          assertError(await patch(base, id, Buffer.from('x'), [0, 0]), 404, 'UPLOAD_NOT_FOUND', `PATCH ${id}`);
          assertError(await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(Buffer.from('x'))}`), 404, 'UPLOAD_NOT_FOUND', `PUT ${id}`);
          assertError(await call(base, 'DELETE', `/v1/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND', `DELETE ${id}`);
        }
        const id = (await call(base, 'POST', '/v1/uploads')).body.id as string;
        assert.equal((await patch(base, id, Buffer.from('some bytes'), [0, 9])).status, 202);
        const del = await fetch(`${base}/v1/uploads/${id}`, { method: 'DELETE' });
        assert.equal(del.status, 204);
        assertError(await call(base, 'GET', `/v1/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND', 'after DELETE');
        assertError(await patch(base, id, Buffer.from('more'), [10, 13]), 404, 'UPLOAD_NOT_FOUND', 'PATCH after DELETE');
      });
    });
  });
}

for (const kind of storageKinds) {
  describe(`a server restart (${kind})`, () => {
    let dataDir: string;
    let srv: TestServer | undefined;
    let published: any;
    const weights = randomBytesFor(`${kind}-restart-weights`, 3 * MiB);
    const payload = randomBytesFor(`${kind}-restart-upload`, 5 * MiB + 3);
    const part = 3 * MiB + 1;
    const sessions: Record<'plain' | 'appendAfterMismatch' | 'finishAfterMismatch', string> = { plain: '', appendAfterMismatch: '', finishAfterMismatch: '' };

    before(async () => {
      dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-restart-'));
      const overrides = { dataDir, s3: kind === 's3' ? s3TestConfig() : undefined };
      srv = await startTestServer(kind, overrides);
      const pub = await publishForm(srv.url, 'restart-model', { version: '1', aliases: ['prod'] }, [{ path: 'w.bin', data: weights }]);
      assert.equal(pub.status, 201, JSON.stringify(pub.body));
      published = pub.body;
      for (const key of Object.keys(sessions) as Array<keyof typeof sessions>) {
        const id = (await call(srv.url, 'POST', '/v1/uploads')).body.id as string;
        assert.equal((await patch(srv.url, id, payload.subarray(0, part), [0, part - 1])).status, 202);
        sessions[key] = id;
      }
      await srv.close(); // stop without removing the data dir
      srv = await startTestServer(kind, overrides);
    });
    after(async () => {
      await srv?.stop();
      if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    });

    test('published versions and aliases survive', async () => {
      const doc = await call(srv!.url, 'GET', '/v1/models/restart-model/versions/prod');
      assert.equal(doc.status, 200, JSON.stringify(doc.body));
      assert.deepEqual(doc.body, published);
      assert.ok((await pull(srv!.url, 'restart-model', 'latest', 'w.bin')).bytes.equals(weights));
    });

    test('an open upload session keeps its offset and finishes after the restart', async () => {
      const base = srv!.url;
      const id = sessions.plain;
      assert.equal((await call(base, 'GET', `/v1/uploads/${id}`)).body.offset, part, 'the session kept its offset');
      assert.equal((await patch(base, id, payload.subarray(part), [part, payload.length - 1])).status, 202);
      // this process has not seen the first bytes: finishing reads them back
      const done = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(payload)}`);
      assert.equal(done.status, 201, JSON.stringify(done.body));
      assert.equal((await fetch(`${base}/v1/blobs/${digestOf(payload)}`, { method: 'HEAD' })).status, 200);
    });

    test('after a restart, a DIGEST_MISMATCH does not break appending to the session', async () => {
      const base = srv!.url;
      const id = sessions.appendAfterMismatch;
      assertError(await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(payload)}`), 400, 'DIGEST_MISMATCH', 'only part of the bytes are there yet');
      const rest = await patch(base, id, payload.subarray(part), [part, payload.length - 1]);
      assert.equal(rest.status, 202, `appending after a DIGEST_MISMATCH must work: ${JSON.stringify(rest.body)}`);
    });

    test('after a restart, a DIGEST_MISMATCH does not break finishing with the right digest', async () => {
      const base = srv!.url;
      const id = sessions.finishAfterMismatch;
      assert.equal((await patch(base, id, payload.subarray(part), [part, payload.length - 1])).status, 202);
      assertError(await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(Buffer.from('wrong'))}`), 400, 'DIGEST_MISMATCH');
      const done = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(payload)}`);
      assert.equal(done.status, 201, `finishing with the right digest after a DIGEST_MISMATCH must work: ${JSON.stringify(done.body)}`);
    });
  });
}

for (const kind of storageKinds) {
  // The CLI pushes large files as many PATCHes of one session: each request
  // continues the chunking of the one before, so dedup and tensor-boundary
  // cuts are those of a single upload — across a server restart too.
  describe(`upload sessions are chunked like one upload, whatever the parts (${kind})`, () => {
    let dataDir: string;
    let overrides: { dataDir: string; s3: ReturnType<typeof s3TestConfig> };
    let srv: TestServer | undefined;
    before(async () => {
      dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-parts-'));
      overrides = { dataDir, s3: kind === 's3' ? s3TestConfig() : undefined };
      srv = await startTestServer(kind, overrides);
    });
    after(async () => {
      await srv?.stop();
      if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    });

    type Row = { offset: number; size: number; digest: string };
    const sessionChunks = (id: string) =>
      srv!.cairn.db.all<Row>('SELECT offset, size, chunk_digest AS digest FROM upload_chunks WHERE upload_id = ? ORDER BY seq', [id]);
    const blobChunks = (digest: string) =>
      srv!.cairn.db.all<Row>('SELECT offset, size, chunk_digest AS digest FROM blob_chunks WHERE blob_digest = ? ORDER BY seq', [digest]);

    /** One-shot publish first (the reference chunking), then the same bytes as a session in `ends` parts. */
    async function compare(model: string, data: Buffer, ends: number[], afterPart?: (i: number) => Promise<void>) {
      const pub = await publishForm(srv!.url, model, { version: '1' }, [{ path: 'f.bin', data }]);
      assert.equal(pub.status, 201, JSON.stringify(pub.body));
      const reference = blobChunks(digestOf(data));
      const id = (await call(srv!.url, 'POST', '/v1/uploads')).body.id as string;
      let at = 0;
      for (const [i, end] of ends.entries()) {
        const res = await patch(srv!.url, id, data.subarray(at, end), [at, end - 1]);
        assert.equal(res.status, 202, JSON.stringify(res.body));
        assert.equal(res.body.offset, end);
        at = end;
        await afterPart?.(i);
      }
      const parts = sessionChunks(id);
      assert.deepEqual(parts, reference, 'the session holds exactly the chunks of the one-shot upload');
      const done = await call(srv!.url, 'PUT', `/v1/uploads/${id}?digest=${digestOf(data)}`);
      assert.equal(done.status, 201, JSON.stringify(done.body));
      return parts;
    }

    test('random bytes in odd-sized parts', async () => {
      const data = randomBytesFor(`${kind}-parts-random`, 21 * MiB + 5);
      const parts = await compare('parts-random', data, [MiB + 7, 6 * MiB + 3, 6 * MiB + 4, 15 * MiB, data.length]);
      assert.ok(parts.length >= 6, `${parts.length} chunks`);
    });

    test('a safetensors file: first part inside the header, a restart between parts; tensor cuts hold', async () => {
      const specs = modelSpec(20 * MiB, 'BF16', { matrixBytes: 3 * MiB, seed: `${kind}-parts` });
      const file = Buffer.concat([...safetensorsStream(specs)]);
      const header = safetensorsHeader(specs).length;
      const parts = await compare('parts-st', file, [100, 7 * MiB + 1, 13 * MiB + 9, file.length], async (i) => {
        if (i !== 1) return;
        await srv!.close(); // keeps the data dir: the layout and the last chunk come from storage
        srv = await startTestServer(kind, overrides);
      });
      assert.equal(parts[0]!.size, header, 'the header is a chunk of its own');
      const starts = new Set(parts.map((c) => c.offset));
      let at = header;
      for (const t of specs) {
        if (t.elements * 2 >= DEFAULT_CHUNKING.minSize) assert.ok(starts.has(at), `${t.name} starts a chunk`);
        at += t.elements * 2;
      }
      const back = await pull(srv!.url, 'parts-st', '1', 'f.bin');
      assert.ok(back.bytes.equals(file));
    });
  });
}

describe('damaged stored content is never served (fs)', () => {
  let srv: TestServer;
  const data = randomBytesFor('corrupt-me', 10 * MiB + 11);
  const cuts: number[] = [];
  const chunkDigests: string[] = [];
  before(async () => {
    srv = await startTestServer('fs');
    const chunker = new Chunker(DEFAULT_CHUNKING);
    let at = 0;
    for (const c of [...chunker.push(data), ...chunker.finish()]) {
      chunkDigests.push(digestOf(c));
      cuts.push((at += c.length));
    }
    assert.ok(chunkDigests.length >= 3);
    const res = await publishForm(srv.url, 'damaged', { version: '1' }, [
      { path: 'big.bin', data },
      { path: 'fine.txt', data: Buffer.from('unaffected') },
    ]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    // flip one byte in the middle of the second chunk's stored object
    const hex = chunkDigests[1]!.slice(7);
    const file = path.join(srv.dataDir, 'blobs', 'chunks', hex.slice(0, 2), hex);
    const stored = await fs.readFile(file);
    stored[stored.length >> 1] = stored[stored.length >> 1]! ^ 0x40;
    await fs.writeFile(file, stored);
  });
  after(async () => {
    await srv?.stop();
  });

  test('a range in an intact chunk is served', async () => {
    const res = await pull(srv.url, 'damaged', '1', 'big.bin', { range: 'bytes=0-999' });
    assert.equal(res.status, 206);
    assert.ok(res.bytes.equals(data.subarray(0, 1000)));
  });

  test('a range starting in the damaged chunk → 500 CONTENT_CORRUPT before any byte', async () => {
    const res = await call(srv.url, 'GET', filePath('damaged', '1', 'big.bin'), undefined, { range: `bytes=${cuts[0]! + 10}-${cuts[0]! + 20}` });
    assertError(res, 500, 'CONTENT_CORRUPT');
  });

  test('a whole-file GET that reaches the damaged chunk is cut, never completed', async () => {
    const res = await fetch(srv.url + filePath('damaged', '1', 'big.bin'));
    let outcome: string;
    try {
      const body = Buffer.from(await res.arrayBuffer());
      outcome = `completed with ${body.length} bytes, status ${res.status}`;
    } catch {
      outcome = 'cut';
    }
    assert.equal(outcome, 'cut');
  });

  test('an archive that reaches the damaged chunk is cut, never completed', async () => {
    const res = await fetch(`${srv.url}/v1/models/damaged/versions/1/archive`);
    let outcome: string;
    try {
      const body = Buffer.from(await res.arrayBuffer());
      outcome = `completed with ${body.length} bytes, status ${res.status}`;
    } catch {
      outcome = 'cut';
    }
    assert.equal(outcome, 'cut');
  });

  test('the server keeps serving everything else', async () => {
    assert.equal((await call(srv.url, 'GET', '/healthz')).status, 200);
    const fine = await pull(srv.url, 'damaged', '1', 'fine.txt');
    assert.equal(fine.status, 200);
    assert.equal(fine.bytes.toString(), 'unaffected');
  });
});
