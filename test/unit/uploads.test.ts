// Resumable upload sessions, in-process on the in-memory driver and SQLite:
// the REST flow (start, append with Content-Range, offset, finish with the
// digest checked, publish by digest), and the upload service itself where
// that is clearer: one writer at a time, sessions belong to whoever started
// them, and a session's chunks are those of one upload whatever the parts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Caller } from '../../src/access.ts';
import { isCairnError } from '../../src/errors.ts';
import { digestOf, KiB, MiB, randomBytesFor } from '../support/bytes.ts';
import { assertError, bodyOf, call, publishForm, pull } from '../support/http-client.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer('memory');
});
after(async () => {
  await srv?.stop();
});

async function patch(id: string, body: Uint8Array, range?: [number, number]) {
  const res = await fetch(`${srv.url}/v1/uploads/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', ...(range ? { 'content-range': `bytes ${range[0]}-${range[1]}/*` } : {}) },
    body: bodyOf(body),
  });
  return { status: res.status, body: await res.json() };
}

/** A request body of one piece: a copy, since the chunk store may hand the pieces it is given to a worker thread (transferred, not copied). */
async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield Buffer.from(data);
}

describe('upload sessions over REST', () => {
  const data = randomBytesFor('unit-upload', 5 * MiB + 321);
  const digest = digestOf(data);
  const [a, b] = [2 * MiB + 1, 4 * MiB + 3];

  test('start, append in parts, offsets, mismatches, a wrong digest, finish, publish by digest, pull across the parts', async () => {
    const created = await call(srv.url, 'POST', '/v1/uploads');
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    assert.equal(created.headers.get('location'), `/v1/uploads/${id}`);
    assert.equal(created.body.offset, 0);
    assert.deepEqual((await patch(id, data.subarray(0, a), [0, a - 1])).body.offset, a);
    assert.deepEqual((await patch(id, data.subarray(a, b), [a, b - 1])).body.offset, b);
    assert.equal((await call(srv.url, 'GET', `/v1/uploads/${id}`)).body.offset, b);
    assertError(await patch(id, data.subarray(0, 100), [0, 99]), 409, 'UPLOAD_OFFSET_MISMATCH', 'a part again');
    assertError(await patch(id, data.subarray(b + 10, b + 20), [b + 10, b + 19]), 409, 'UPLOAD_OFFSET_MISMATCH', 'a gap');
    assert.equal((await patch(id, data.subarray(b))).body.offset, data.length, 'no Content-Range: appended at the end');

    assertError(await call(srv.url, 'PUT', `/v1/uploads/${id}?digest=${digestOf(Buffer.from('not it'))}`), 400, 'DIGEST_MISMATCH');
    assertError(await call(srv.url, 'PUT', `/v1/uploads/${id}?digest=nonsense`), 400, 'INVALID_DIGEST');
    assert.equal((await fetch(`${srv.url}/v1/blobs/${digest}`, { method: 'HEAD' })).status, 404, 'no blob before it is finished');
    const done = await call(srv.url, 'PUT', `/v1/uploads/${id}?digest=${digest}`);
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.deepEqual(done.body, { digest, size: data.length });
    assertError(await call(srv.url, 'GET', `/v1/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND', 'a finished session is gone');
    const head = await fetch(`${srv.url}/v1/blobs/${digest}`, { method: 'HEAD' });
    assert.deepEqual([head.status, head.headers.get('content-length')], [200, String(data.length)]);

    const pub = await call(srv.url, 'POST', '/v1/models/uploaded/versions', { version: '1', files: [{ path: 'model.bin', digest }] });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    const ranged = await pull(srv.url, 'uploaded', '1', 'model.bin', { range: `bytes=${a - 5}-${b + 5}` });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.bytes.equals(data.subarray(a - 5, b + 6)));
    assert.ok((await pull(srv.url, 'uploaded', '1', 'model.bin')).bytes.equals(data));
  });

  test('PUT may carry the last part; DELETE ends a session; unknown sessions are 404', async () => {
    const small = randomBytesFor('unit-put-body', 300 * KiB);
    const id = (await call(srv.url, 'POST', '/v1/uploads')).body.id as string;
    assert.equal((await patch(id, small.subarray(0, 1000), [0, 999])).status, 202);
    const res = await fetch(`${srv.url}/v1/uploads/${id}?digest=${digestOf(small)}`, { method: 'PUT', body: bodyOf(small.subarray(1000)) });
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json(), { digest: digestOf(small), size: small.length });

    const other = (await call(srv.url, 'POST', '/v1/uploads')).body.id as string;
    assert.equal((await call(srv.url, 'DELETE', `/v1/uploads/${other}`)).status, 204);
    for (const gone of [other, 'nope', 'bad!id']) {
      assertError(await call(srv.url, 'GET', `/v1/uploads/${gone}`), 404, 'UPLOAD_NOT_FOUND', gone);
      assertError(await patch(gone, Buffer.from('x'), [0, 0]), 404, 'UPLOAD_NOT_FOUND', gone);
    }
  });
});

describe('the upload service', () => {
  const anyone: Caller = { principal: undefined, models: [] };

  test('one request at a time writes to a session: a second one, or finishing, is UPLOAD_BUSY until the first is done', async () => {
    const { uploads } = srv.cairn.services;
    const id = uploads.create(anyone).id;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reading!: () => void;
    const started = new Promise<void>((resolve) => (reading = resolve));
    const part = randomBytesFor('unit-busy', 100_000);
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield part.subarray(0, 50_000);
      reading();
      await held; // the request body has not arrived yet
      yield part.subarray(50_000);
    }
    const first = uploads.append(id, 0, slow(), anyone);
    await started;
    await assert.rejects(uploads.append(id, undefined, once(Buffer.from('x')), anyone), (err) => isCairnError(err, 'UPLOAD_BUSY'));
    await assert.rejects(uploads.finish(id, digestOf(part), undefined, anyone), (err) => isCairnError(err, 'UPLOAD_BUSY'));
    release();
    assert.equal((await first).offset, part.length);
    assert.deepEqual(await uploads.finish(id, digestOf(part), undefined, anyone), { digest: digestOf(part), size: part.length });
  });

  test("a session is its starter's: to another token it does not exist, and neither does the content until it is published", async () => {
    const { uploads } = srv.cairn.services;
    // tokens limited to some models: one that reads every model may name any stored content
    const alice: Caller = { principal: 'token:1', models: ['team-a-*'] };
    const bob: Caller = { principal: 'token:2', models: ['team-b-*'] };
    const data = randomBytesFor('unit-owner', 70_000);
    const id = uploads.create(alice).id;
    await assert.rejects(uploads.append(id, 0, once(data), bob), (err) => isCairnError(err, 'UPLOAD_NOT_FOUND'));
    await uploads.append(id, 0, once(data), alice);
    assert.throws(() => uploads.get(id, bob), (err) => isCairnError(err, 'UPLOAD_NOT_FOUND'));
    await uploads.finish(id, digestOf(data), undefined, alice);
    assert.deepEqual(uploads.hasBlob(digestOf(data), alice), { size: data.length });
    assert.equal(uploads.hasBlob(digestOf(data), bob), undefined, 'uploaded content is not named by another token');
  });

  test("a session's chunks are those of a single upload of the same bytes, whatever the sizes of the parts", async () => {
    const { uploads } = srv.cairn.services;
    const data = randomBytesFor('unit-parts', 9 * MiB + 5);
    assert.equal((await publishForm(srv.url, 'one-shot', { version: '1' }, [{ path: 'f.bin', data }])).status, 201);
    type Row = { offset: number; size: number; digest: string };
    const reference = srv.cairn.db.all<Row>('SELECT offset, size, chunk_digest AS digest FROM blob_chunks WHERE blob_digest = ? ORDER BY seq', [digestOf(data)]);
    assert.ok(reference.length >= 3, `${reference.length} chunks`);
    const id = uploads.create(anyone).id;
    let at = 0;
    for (const end of [MiB + 7, 3 * MiB + 3, 3 * MiB + 4, 8 * MiB, data.length]) {
      await uploads.append(id, at, once(data.subarray(at, end)), anyone);
      at = end;
    }
    const parts = srv.cairn.db.all<Row>('SELECT offset, size, chunk_digest AS digest FROM upload_chunks WHERE upload_id = ? ORDER BY seq', [id]);
    assert.deepEqual(parts, reference);
    assert.deepEqual(await uploads.finish(id, digestOf(data), undefined, anyone), { digest: digestOf(data), size: data.length });
  });
});
