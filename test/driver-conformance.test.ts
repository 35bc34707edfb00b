// One conformance suite for every StorageDriver (src/blobs/driver.ts), run
// against FsDriver (a temp dir), MemoryDriver, and S3Driver (the real S3
// server, a unique key prefix per run). Anything a driver does differently
// from the interface's contract fails here, for every driver alike.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { DriverError, isDriverError, type StorageDriver } from '../src/blobs/driver.ts';
import { FsDriver } from '../src/blobs/fs-driver.ts';
import { MemoryDriver } from '../src/blobs/memory-driver.ts';
import { createS3Client, ensureBucket, S3Driver } from '../src/blobs/s3-driver.ts';
import { MiB, randomBytesFor } from './support/bytes.ts';
import { s3TestConfig, storageKinds } from './support/server.ts';

interface DriverFixture {
  driver: StorageDriver;
  /** removes whatever the fixture created */
  cleanup(): Promise<void>;
  /** fs only: the directory that contains the driver's root (to detect escapes) */
  outside?: string;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const piece of stream) parts.push(Buffer.from(piece as Uint8Array));
  return Buffer.concat(parts);
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of iterable) out.push(key);
  return out;
}

async function expectDriverError(p: Promise<unknown>, kind: DriverError['kind'], what: string): Promise<DriverError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DriverError, `${what}: expected a DriverError('${kind}'), got ${String(err)}`);
    assert.equal(err.kind, kind, `${what}: kind ${err.kind}, expected ${kind} (${err.message})`);
    assert.ok(isDriverError(err, kind));
    return err;
  }
  assert.fail(`${what}: expected DriverError('${kind}'), but it succeeded`);
}

const UNSAFE_KEYS = ['../x', '/abs', 'a//b', 'a/../../x', './a', 'a/.', ''];

/** The shared conformance suite. `label` names the driver; `make` builds a fresh, empty driver. */
export function driverConformance(label: string, make: () => Promise<DriverFixture>): void {
  describe(`StorageDriver conformance: ${label}`, () => {
    let fx: DriverFixture;
    let d: StorageDriver;
    before(async () => {
      fx = await make();
      d = fx.driver;
    });
    after(async () => {
      await fx?.cleanup();
    });

    test('ping works', async () => {
      await d.ping();
    });

    test('put/get round trip: empty, 1 byte, several MiB', async () => {
      const cases: Array<[string, Buffer]> = [
        ['rt/empty', Buffer.alloc(0)],
        ['rt/one', Buffer.from([0xa5])],
        ['rt/big', randomBytesFor('driver-big', 5 * MiB + 123)],
      ];
      for (const [key, data] of cases) {
        await d.put(key, data);
        const got = await d.get(key);
        assert.ok(Buffer.isBuffer(got), `${key}: get returns a Buffer`);
        assert.equal(got.length, data.length, `${key}: length`);
        assert.ok(got.equals(data), `${key}: bytes`);
        assert.deepEqual(await d.stat(key), { size: data.length }, `${key}: stat`);
        const streamed = await readAll(await d.reader(key));
        assert.ok(streamed.equals(data), `${key}: reader without range`);
      }
    });

    test('put accepts a Uint8Array view into a larger buffer (only the view is stored)', async () => {
      const backing = randomBytesFor('driver-view', 4096);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 1000);
      await d.put('view/key', view);
      const got = await d.get('view/key');
      assert.ok(got.equals(Buffer.from(view)));
    });

    test('put with the sha256 of its data (computed off the event loop by the caller) stores the same bytes', async () => {
      const data = randomBytesFor('driver-sha', 300_000);
      await d.put('sha/key', data, { sha256: createHash('sha256').update(data).digest('hex') });
      assert.ok((await d.get('sha/key')).equals(data));
      await expectDriverError(d.put('sha/key', data, { sha256: createHash('sha256').update(data).digest('hex') }), 'exists', 'second put');
    });

    test("put on an existing key throws 'exists' and leaves the original bytes", async () => {
      const original = randomBytesFor('exists-original', 10_000);
      await d.put('ex/key', original);
      await expectDriverError(d.put('ex/key', randomBytesFor('exists-other', 20_000)), 'exists', 'second put');
      await expectDriverError(d.put('ex/key', Buffer.alloc(0)), 'exists', 'second put (empty)');
      assert.ok((await d.get('ex/key')).equals(original));
      assert.deepEqual(await d.stat('ex/key'), { size: original.length });
    });

    test("get/reader of a missing key: 'not_found'; stat: undefined", async () => {
      await expectDriverError(d.get('missing/key'), 'not_found', 'get');
      await expectDriverError(d.reader('missing/key'), 'not_found', 'reader');
      await expectDriverError(d.reader('missing/key', { start: 0, end: 0 }), 'not_found', 'reader with range');
      assert.equal(await d.stat('missing/key'), undefined);
      const err = await expectDriverError(d.get('missing/other'), 'not_found', 'get');
      assert.equal(err.key, 'missing/other', 'the error names the key');
    });

    test('a key that is only a prefix of other keys is not an object', async () => {
      await d.put('dirlike/child', Buffer.from('child'));
      const wrong: string[] = [];
      const outcome = async (op: string, run: () => Promise<unknown>, expect: 'not_found' | 'ok-undefined' | 'ok') => {
        try {
          const value = await run();
          if (expect === 'not_found') wrong.push(`${op}: resolved`);
          else if (expect === 'ok-undefined' && value !== undefined) wrong.push(`${op}: resolved ${JSON.stringify(value)}`);
        } catch (err) {
          if (expect !== 'not_found' || !isDriverError(err, 'not_found')) {
            wrong.push(`${op}: ${err instanceof DriverError ? `DriverError('${err.kind}')` : String(err)}`);
          }
        }
      };
      await outcome('get', () => d.get('dirlike'), 'not_found');
      await outcome('reader', async () => readAll(await d.reader('dirlike')), 'not_found');
      await outcome('stat', () => d.stat('dirlike'), 'ok-undefined');
      await outcome('delete', () => d.delete('dirlike'), 'ok'); // idempotent: nothing there
      assert.deepEqual(wrong, [], "'dirlike' is not an object: get/reader 'not_found', stat undefined, delete a no-op");
      assert.ok((await d.get('dirlike/child')).equals(Buffer.from('child')));
    });

    test('reader with ranges: first byte, middle, last byte, whole, one-byte object', async () => {
      const data = randomBytesFor('ranges', 3 * MiB + 17);
      await d.put('rg/key', data);
      const last = data.length - 1;
      const ranges: Array<[number, number]> = [
        [0, 0],
        [1, 1],
        [1000, 2 * MiB + 5],
        [MiB - 1, MiB],
        [last, last],
        [last - 9, last],
        [0, last],
      ];
      for (const [start, end] of ranges) {
        const got = await readAll(await d.reader('rg/key', { start, end }));
        assert.equal(got.length, end - start + 1, `range ${start}-${end}: length`);
        assert.ok(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}: bytes`);
      }
      await d.put('rg/one', Buffer.from([7]));
      assert.deepEqual([...(await readAll(await d.reader('rg/one', { start: 0, end: 0 })))], [7]);
    });

    test('stat present and absent', async () => {
      await d.put('st/a', Buffer.alloc(321, 1));
      assert.deepEqual(await d.stat('st/a'), { size: 321 });
      assert.equal(await d.stat('st/b'), undefined);
      assert.equal(await d.stat('nope/at/all'), undefined);
    });

    test('list by prefix: nested keys, partial segments, no match, every key exactly once', async () => {
      const keys = [
        'ls/a/1',
        'ls/a/2',
        'ls/a/deep/er/3',
        'ls/ab/4',
        'ls/b/5',
        'ls/top',
      ];
      for (const k of keys) await d.put(k, Buffer.from(k));
      const sorted = (xs: string[]) => [...xs].sort();
      assert.deepEqual(sorted(await collect(d.list('ls/'))), sorted(keys));
      assert.deepEqual(sorted(await collect(d.list('ls/a/'))), ['ls/a/1', 'ls/a/2', 'ls/a/deep/er/3']);
      // a prefix that ends inside a segment matches by string, like S3
      assert.deepEqual(sorted(await collect(d.list('ls/a'))), ['ls/a/1', 'ls/a/2', 'ls/a/deep/er/3', 'ls/ab/4']);
      assert.deepEqual(sorted(await collect(d.list('ls/t'))), ['ls/top']);
      assert.deepEqual(sorted(await collect(d.list('ls/a/deep/'))), ['ls/a/deep/er/3']);
      assert.deepEqual(await collect(d.list('ls/zzz')), []);
      assert.deepEqual(await collect(d.list('nothing-here/')), []);
      // the whole key space (prefix ''): our keys are all there, and nothing else of the driver's own leaks in
      const all = await collect(d.list(''));
      for (const k of keys) assert.equal(all.filter((x) => x === k).length, 1, `${k} listed once under ''`);
      for (const k of all) assert.ok(!k.startsWith('.tmp') && !k.endsWith('.tmp'), `no temp object listed: ${k}`);
    });

    test('list returns many keys, each exactly once', async () => {
      const count = 150;
      const keys = Array.from({ length: count }, (_, i) => `many/${String(i % 7)}/k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < keys.length; i += 25) {
        await Promise.all(keys.slice(i, i + 25).map((k) => d.put(k, Buffer.from(k))));
      }
      const listed = await collect(d.list('many/'));
      assert.equal(listed.length, count, 'no duplicates, none missing');
      assert.deepEqual([...listed].sort(), [...keys].sort());
    });

    test('delete removes; deleting again (or a missing key) is not an error', async () => {
      await d.put('del/a', Buffer.from('a'));
      await d.delete('del/a');
      assert.equal(await d.stat('del/a'), undefined);
      await expectDriverError(d.get('del/a'), 'not_found', 'get after delete');
      await d.delete('del/a');
      await d.delete('del/never-existed');
      assert.deepEqual(await collect(d.list('del/')), []);
      // a deleted key can be created again
      await d.put('del/a', Buffer.from('again'));
      assert.ok((await d.get('del/a')).equals(Buffer.from('again')));
    });

    test("concurrent puts of one key: exactly one succeeds, the others 'exists', get returns one payload intact", async () => {
      const n = 8;
      const payloads = Array.from({ length: n }, (_, i) => randomBytesFor(`race-${i}`, 256 * 1024 + i));
      const results = await Promise.allSettled(payloads.map((p) => d.put('race/key', p)));
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const exists = results.filter((r) => r.status === 'rejected' && isDriverError(r.reason, 'exists')).length;
      const other = results.filter((r) => r.status === 'rejected' && !isDriverError(r.reason, 'exists'));
      assert.deepEqual(other.map((r) => String((r as PromiseRejectedResult).reason)), [], 'no other failures');
      assert.equal(ok, 1, 'exactly one put succeeds');
      assert.equal(exists, n - 1, "the others fail with 'exists'");
      const got = await d.get('race/key');
      const winner = results.findIndex((r) => r.status === 'fulfilled');
      assert.ok(got.equals(payloads[winner]!), 'the stored bytes are exactly the winning payload');
    });

    test('unsafe keys are refused and nothing is written', async () => {
      for (const key of UNSAFE_KEYS) {
        await assert.rejects(d.put(key, Buffer.from('evil')), `put ${JSON.stringify(key)}`);
        await assert.rejects(d.get(key), `get ${JSON.stringify(key)}`);
        await assert.rejects(d.reader(key), `reader ${JSON.stringify(key)}`);
        await assert.rejects(d.stat(key), `stat ${JSON.stringify(key)}`);
        await assert.rejects(d.delete(key), `delete ${JSON.stringify(key)}`);
      }
      if (fx.outside) {
        const entries = await fs.readdir(fx.outside);
        assert.ok(!entries.includes('x') && !entries.includes('abs'), `nothing written outside the root: ${entries.join(', ')}`);
      }
    });

    test("unsafe keys are refused as caller errors, never reported as a backend condition ('unavailable'/'not_found')", async () => {
      const misreported: string[] = [];
      for (const key of UNSAFE_KEYS) {
        const ops: Array<[string, () => Promise<unknown>]> = [
          ['put', () => d.put(key, Buffer.from('evil'))],
          ['get', () => d.get(key)],
          ['reader', () => d.reader(key)],
          ['stat', () => d.stat(key)],
          ['delete', () => d.delete(key)],
        ];
        for (const [op, run] of ops) {
          try {
            await run();
            misreported.push(`${op} ${JSON.stringify(key)}: accepted`);
          } catch (err) {
            if (err instanceof DriverError) misreported.push(`${op} ${JSON.stringify(key)}: DriverError('${err.kind}')`);
          }
        }
      }
      assert.deepEqual(misreported, [], 'an unsafe key is a programming error, not a storage condition (it would become 503 STORAGE_UNAVAILABLE or CONTENT_CORRUPT)');
    });

    test('list never yields keys outside the driver root (prefix with ..)', async () => {
      let listed: string[] = [];
      try {
        listed = await collect(d.list('../'));
      } catch {
        return; // refusing the prefix is fine
      }
      assert.deepEqual(listed, [], `list('../') must not walk outside the root; got ${listed.slice(0, 5).join(', ')}`);
    });
  });
}

// ---- FsDriver -----------------------------------------------------------

driverConformance('fs', async () => {
  const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-driver-'));
  // something next to the root, so that an escape from the root is visible
  await fs.writeFile(path.join(outside, 'sibling-secret'), 'not yours');
  const driver = new FsDriver(path.join(outside, 'root'));
  return {
    driver,
    outside,
    cleanup: () => fs.rm(outside, { recursive: true, force: true }),
  };
});

// ---- MemoryDriver -------------------------------------------------------

driverConformance('memory', async () => ({ driver: new MemoryDriver(), cleanup: async () => {} }));

// ---- S3Driver -----------------------------------------------------------

if (storageKinds.includes('s3')) {
  const cfg = s3TestConfig(`driver-${randomBytes(6).toString('hex')}/`)!;
  const client = createS3Client(cfg);
  driverConformance('s3', async () => {
    await ensureBucket(client, cfg.bucket);
    const driver = new S3Driver({ bucket: cfg.bucket, prefix: cfg.prefix, client });
    return {
      driver,
      async cleanup() {
        // remove what this run wrote (through a prefix-less driver: keys come back with the prefix)
        const raw = new S3Driver({ bucket: cfg.bucket, client });
        const keys: string[] = [];
        for await (const k of raw.list(cfg.prefix)) keys.push(k);
        for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => raw.delete(k)));
      },
    };
  });

  test('S3Driver: the given sha256 is what S3 checks the body against — a wrong one is refused as a caller error and stores nothing', async () => {
    await ensureBucket(client, cfg.bucket);
    const driver = new S3Driver({ bucket: cfg.bucket, prefix: cfg.prefix, client });
    const data = randomBytesFor('driver-sha-wrong', 100_000);
    const wrong = createHash('sha256').update('something else').digest('hex');
    const err = await driver.put('sha/wrong', data, { sha256: wrong }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error, 'the put is refused');
    assert.ok(!isDriverError(err), `not a backend condition: ${String(err)}`);
    assert.match((err as Error).message, /sha256/i);
    assert.equal(await driver.stat('sha/wrong'), undefined, 'nothing stored');
    await assert.rejects(driver.put('sha/bad', data, { sha256: 'not-hex' }), /64 lowercase hex/);
  });

  describe('S3Driver: backend failures', () => {
    const fast = () =>
      new S3Client({
        endpoint: 'http://127.0.0.1:1',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 1,
        requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 },
      });

    test("a closed port is 'unavailable' for every operation, quickly", async () => {
      const driver = new S3Driver({ bucket: 'cairn-test', client: fast() });
      const started = Date.now();
      await expectDriverError(driver.get('k'), 'unavailable', 'get');
      await expectDriverError(driver.put('k', Buffer.from('x')), 'unavailable', 'put');
      await expectDriverError(driver.reader('k'), 'unavailable', 'reader');
      await expectDriverError(driver.stat('k'), 'unavailable', 'stat');
      await expectDriverError(driver.delete('k'), 'unavailable', 'delete');
      await expectDriverError(driver.ping(), 'unavailable', 'ping');
      await expectDriverError(collect(driver.list('')), 'unavailable', 'list');
      assert.ok(Date.now() - started < 15_000, 'fails fast');
    });

    test("a missing bucket is 'unavailable' (the backend cannot serve us), not 'not_found'", async () => {
      const driver = new S3Driver({ bucket: `cairn-missing-${randomBytes(4).toString('hex')}`, client });
      const seen: string[] = [];
      const ops: Array<[string, () => Promise<unknown>]> = [
        ['put', () => driver.put('k', Buffer.from('x'))],
        ['get', () => driver.get('k')],
        ['reader', () => driver.reader('k')],
        ['stat', () => driver.stat('k')],
        ['ping', () => driver.ping()],
      ];
      for (const [op, run] of ops) {
        try {
          const value = await run();
          seen.push(`${op}: resolved ${JSON.stringify(value)}`);
        } catch (err) {
          if (!isDriverError(err, 'unavailable')) seen.push(`${op}: ${err instanceof DriverError ? `DriverError('${err.kind}')` : String(err)}`);
        }
      }
      assert.deepEqual(seen, [], 'every operation on a missing bucket must fail as unavailable');
    });
  });
}
