// What the server answers when things go wrong, in-process on an in-memory
// driver that can be switched off or have an object damaged: storage down is
// 503 STORAGE_UNAVAILABLE (and readiness says so) with nothing half-written
// visible, damaged content is never served, limits are 413, and unknown
// routes and malformed bodies are JSON errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chunkKey } from '../../src/blobs/layout.ts';
import { digestOf, MiB, randomBytesFor } from '../support/bytes.ts';
import { assertError, call, filePath, publishForm, pull } from '../support/http-client.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { SwitchableDriver } from '../support/switchable-driver.ts';

const LIMIT = 8 * MiB;
let srv: TestServer;
let driver: SwitchableDriver;
before(async () => {
  driver = new SwitchableDriver();
  srv = await startTestServer('memory', { maxUploadBytes: LIMIT }, { driver });
});
after(async () => {
  await srv?.stop();
});

describe('storage down', () => {
  before(async () => {
    assert.equal((await publishForm(srv.url, 'stored', { version: '1' }, [{ path: 'f.bin', data: randomBytesFor('unit-down', 300_000) }])).status, 201);
  });

  test('publish and read are 503 STORAGE_UNAVAILABLE, readiness is 503 naming storage, liveness stays 200; nothing half-published', async () => {
    driver.down = true;
    try {
      assertError(await publishForm(srv.url, 'half', { version: '1' }, [{ path: 'f.bin', data: randomBytesFor('unit-half', 300_000) }]), 503, 'STORAGE_UNAVAILABLE');
      assertError(await call(srv.url, 'GET', filePath('stored', '1', 'f.bin')), 503, 'STORAGE_UNAVAILABLE');
      const ready = await call(srv.url, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, 'not ready');
      assert.match(ready.body.checks.storage, /^error: .*backend down/);
      assert.equal(ready.body.checks.db, 'ok');
      assert.equal((await call(srv.url, 'GET', '/healthz')).status, 200);
    } finally {
      driver.down = false;
    }
    assertError(await call(srv.url, 'GET', '/v1/models/half'), 404, 'MODEL_NOT_FOUND');
    assert.equal((await call(srv.url, 'GET', '/readyz')).status, 200);
    const again = await publishForm(srv.url, 'half', { version: '1' }, [{ path: 'f.bin', data: randomBytesFor('unit-half', 300_000) }]);
    assert.equal(again.status, 201, 'the same publish succeeds once storage is back');
  });
});

describe('damaged content is never served', () => {
  const data = randomBytesFor('unit-damaged', 6 * MiB + 11);
  let chunks: Array<{ offset: number; size: number; digest: string }>;
  before(async () => {
    assert.equal((await publishForm(srv.url, 'damaged', { version: '1' }, [{ path: 'big.bin', data }, { path: 'fine.txt', data: Buffer.from('unaffected') }])).status, 201);
    chunks = srv.cairn.db.all('SELECT offset, size, chunk_digest AS digest FROM blob_chunks WHERE blob_digest = ? ORDER BY seq', [digestOf(data)]);
    assert.ok(chunks.length >= 2, `${chunks.length} chunks`);
    // one byte flipped in the middle of the second chunk's stored object
    const key = chunkKey(chunks[1]!.digest);
    const stored = await driver.get(key);
    stored[stored.length >> 1] = stored[stored.length >> 1]! ^ 0x40;
    await driver.delete(key);
    await driver.put(key, stored);
  });

  test('a range in an intact chunk is served; one starting in the damaged chunk is 500 CONTENT_CORRUPT before any byte', async () => {
    const intact = await pull(srv.url, 'damaged', '1', 'big.bin', { range: 'bytes=0-999' });
    assert.equal(intact.status, 206);
    assert.ok(intact.bytes.equals(data.subarray(0, 1000)));
    const at = chunks[1]!.offset + 10;
    assertError(await call(srv.url, 'GET', filePath('damaged', '1', 'big.bin'), undefined, { range: `bytes=${at}-${at + 10}` }), 500, 'CONTENT_CORRUPT');
  });

  test('a whole-file read reaching the damaged chunk is cut, never completed; everything else is still served', async () => {
    const res = await fetch(srv.url + filePath('damaged', '1', 'big.bin'));
    await assert.rejects(res.arrayBuffer(), 'the body never completes');
    assert.equal((await pull(srv.url, 'damaged', '1', 'fine.txt')).bytes.toString(), 'unaffected');
  });
});

describe('limits and malformed requests', () => {
  test(`a file over the upload limit (${LIMIT} bytes) is 413 PAYLOAD_TOO_LARGE, in a publish and in an upload session`, async () => {
    assertError(await publishForm(srv.url, 'big', { version: '1' }, [{ path: 'f.bin', data: Buffer.alloc(LIMIT + 1) }]), 413, 'PAYLOAD_TOO_LARGE');
    assertError(await call(srv.url, 'GET', '/v1/models/big'), 404, 'MODEL_NOT_FOUND');
    const id = (await call(srv.url, 'POST', '/v1/uploads')).body.id as string;
    const res = await fetch(`${srv.url}/v1/uploads/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(LIMIT + 1) });
    assertError({ status: res.status, body: await res.json() }, 413, 'PAYLOAD_TOO_LARGE');
  });

  test('an unknown route or method is 404 ROUTE_NOT_FOUND; a malformed JSON body is 400 INVALID_ARGUMENT', async () => {
    assertError(await call(srv.url, 'GET', '/v1/nothing-here'), 404, 'ROUTE_NOT_FOUND');
    assertError(await call(srv.url, 'DELETE', '/v1/models'), 404, 'ROUTE_NOT_FOUND');
    const bad = await fetch(`${srv.url}/v1/models/stored/aliases/prod`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"version":' });
    assertError({ status: bad.status, body: await bad.json() }, 400, 'INVALID_ARGUMENT');
  });
});
