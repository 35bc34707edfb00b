// The blob layer on its own, in-process and fast (what it may import is held
// by test/unit/layers.test.ts): the storage key layout and its parser, the one place driver failures become
// domain errors, and the chunk store over the in-memory driver with its index
// in an in-memory SQLite database — it records chunks, never blobs (the
// registry does).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChunkStore } from '../../src/blobs/chunk-store.ts';
import { CodecPool } from '../../src/codecs/codec-pool.ts';
import { codecOf, encodeChunk, sha256 } from '../../src/codecs/codec.ts';
import { DriverError, isDriverError } from '../../src/blobs/driver.ts';
import { MemoryDriver } from '../../src/blobs/memory-driver.ts';
import { chunkDigestOfKey, chunkKey, CHUNKS_PREFIX } from '../../src/blobs/layout.ts';
import { withStorageErrors } from '../../src/blobs/storage-errors.ts';
import { isCairnError } from '../../src/errors.ts';
import { BlobIndex } from '../../src/metadata/blobs.ts';
import { Database } from '../../src/metadata/db.ts';
import { MiB, randomBytesFor } from '../support/bytes.ts';
import { SwitchableDriver } from '../support/switchable-driver.ts';

async function* piecesOf(data: Buffer, size = 100_000): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

describe('storage key layout', () => {
  test('chunk keys are built and parsed in one place, each the inverse of the other', () => {
    const digest = sha256(Buffer.from('layout'));
    const key = chunkKey(digest);
    assert.ok(key.startsWith(CHUNKS_PREFIX));
    assert.equal(key, `chunks/${digest.slice(7, 9)}/${digest.slice(7)}`);
    assert.equal(chunkDigestOfKey(key), digest);
    assert.throws(() => chunkKey('sha256:xyz'), /not a sha256 digest/);
  });

  test('keys that are not a chunk of ours parse to nothing (gc leaves them alone)', () => {
    const hex = sha256(Buffer.from('x')).slice(7);
    for (const key of [`chunks/00/${hex}`, `chunks/${hex.slice(0, 2)}/${hex}.tmp`, `chunks/${hex.slice(0, 2)}/${hex.toUpperCase()}`, `other/${hex.slice(0, 2)}/${hex}`, 'chunks/', '']) {
      assert.equal(chunkDigestOfKey(key), undefined, key);
    }
  });
});

describe('storage errors', () => {
  test("'unavailable' becomes STORAGE_UNAVAILABLE for every operation; 'not_found', 'exists' and caller errors pass through", async () => {
    const raw = new SwitchableDriver();
    const storage = withStorageErrors(raw);
    await storage.put('k/a', Buffer.from('a'));
    await assert.rejects(storage.put('k/a', Buffer.from('b')), (err) => isDriverError(err, 'exists'));
    await assert.rejects(storage.get('k/missing'), (err) => isDriverError(err, 'not_found'));
    await assert.rejects(storage.get('../escape'), (err) => !isDriverError(err) && !isCairnError(err), 'an unsafe key stays a programming error');
    raw.down = true;
    const ops: Array<[string, () => Promise<unknown>]> = [
      ['get', () => storage.get('k/a')],
      ['put', () => storage.put('k/b', Buffer.from('b'))],
      ['reader', () => storage.reader('k/a')],
      ['stat', () => storage.stat('k/a')],
      ['delete', () => storage.delete('k/a')],
      ['ping', () => storage.ping()],
      ['list', async () => {
        for await (const _ of storage.list('k/')) void _;
      }],
    ];
    for (const [op, run] of ops) {
      await assert.rejects(run(), (err) => isCairnError(err, 'STORAGE_UNAVAILABLE') && /backend down/.test(String(err.details?.cause)), op);
    }
    assert.equal(storage.name, 'memory');
  });

  test('presigning passes through (S3 hands out URLs: direct pulls and pushes need both), failing as STORAGE_UNAVAILABLE', async () => {
    const raw = new PresigningDriver();
    const storage = withStorageErrors(raw);
    assert.equal(await storage.presignGet?.('k/a', 60), 'https://storage.example/k/a?get&60');
    assert.equal(await storage.presignPut?.('k/a', 7, 60), 'https://storage.example/k/a?put&7&60');
    raw.down = true;
    await assert.rejects(storage.presignGet!('k/a', 60), (err) => isCairnError(err, 'STORAGE_UNAVAILABLE'));
    await assert.rejects(storage.presignPut!('k/a', 7, 60), (err) => isCairnError(err, 'STORAGE_UNAVAILABLE'));
    const plain = withStorageErrors(new SwitchableDriver());
    assert.equal(plain.presignGet, undefined, 'a driver that cannot presign gets no presigning from the wrapper');
    assert.equal(plain.presignPut, undefined);
  });
});

/** The memory driver with presigned URLs, as S3's (what withStorageErrors must keep). */
class PresigningDriver extends SwitchableDriver {
  async presignGet(key: string, seconds: number): Promise<string> {
    if (this.down) throw new DriverError('unavailable', key, 'backend down');
    return `https://storage.example/${key}?get&${seconds}`;
  }

  async presignPut(key: string, size: number, seconds: number): Promise<string> {
    if (this.down) throw new DriverError('unavailable', key, 'backend down');
    return `https://storage.example/${key}?put&${size}&${seconds}`;
  }
}

describe('chunk store over the memory driver (index in an in-memory SQLite)', () => {
  let db: Database;
  let index: BlobIndex;
  let pool: CodecPool;
  let raw: SwitchableDriver;
  let store: ChunkStore;
  const chunking = { minSize: 64 * 1024, avgSize: 256 * 1024, maxSize: 1024 * 1024 };

  before(() => {
    db = new Database(':memory:');
    db.migrate();
    index = new BlobIndex(db);
    pool = new CodecPool(2);
    raw = new SwitchableDriver();
    store = new ChunkStore(withStorageErrors(raw), index, pool, { chunking });
  });
  after(async () => {
    await pool.close();
    db.close();
  });

  test('store records each chunk once it is durable, and no blob: the caller records the blob from what it returns', async () => {
    const data = randomBytesFor('memory-store', 3 * MiB + 5);
    const content = await store.store(piecesOf(data));
    assert.equal(content.digest, sha256(data));
    assert.equal(content.size, data.length);
    assert.ok(content.chunks.length > 3);
    let at = 0;
    for (const c of content.chunks) {
      assert.equal(c.offset, at);
      at += c.size;
      assert.ok(index.hasChunk(c.digest), 'chunk recorded');
      assert.ok(await raw.stat(chunkKey(c.digest)), 'and its object stored');
    }
    assert.equal(at, data.length);
    assert.equal(index.getBlob(content.digest), undefined, 'the chunk store writes no blob row');
    await assert.rejects(store.open(content.digest), (err) => isCairnError(err, 'BLOB_NOT_FOUND'));

    index.addBlob(content.digest, content.size, content.chunks);
    const { stream, size } = await store.open(content.digest, { start: 1000, end: 2 * MiB });
    const parts: Buffer[] = [];
    for await (const p of stream) parts.push(p as Buffer);
    assert.equal(size, data.length);
    assert.ok(Buffer.concat(parts).equals(data.subarray(1000, 2 * MiB + 1)));
    const reader = store.blobReader(content.digest);
    assert.equal(reader.size, data.length);
    assert.ok(Buffer.from(await reader.read(MiB - 10, 20)).equals(data.subarray(MiB - 10, MiB + 10)));
  });

  test('a running hash sees a stream stored in several calls; one that missed bytes is lost, until a stream starts again at 0', async () => {
    const data = randomBytesFor('running-hash', 600_000);
    const hash = store.runningHash();
    await store.store(piecesOf(data.subarray(0, 250_000)), { hash });
    await store.store(piecesOf(data.subarray(250_000)), { hash, startOffset: 250_000 });
    assert.deepEqual(await hash.digest(), { digest: sha256(data), size: data.length });
    await store.store(piecesOf(data.subarray(0, 1000)), { hash, startOffset: data.length + 1 });
    assert.equal(await hash.digest(), undefined, 'it had not seen the bytes before this stream: lost');
    await store.store(piecesOf(data.subarray(0, 1000)), { hash });
    assert.deepEqual(await hash.digest(), { digest: sha256(data.subarray(0, 1000)), size: 1000 });
    hash.drop();
    assert.equal(await hash.digest(), undefined, 'dropped');
  });

  test('storage down: the upload fails with STORAGE_UNAVAILABLE and records no chunk it did not write', async () => {
    const data = randomBytesFor('memory-down', 2 * MiB);
    raw.down = true;
    try {
      await assert.rejects(store.store(piecesOf(data)), (err) => isCairnError(err, 'STORAGE_UNAVAILABLE'));
    } finally {
      raw.down = false;
    }
    const recorded = db.all<{ digest: string }>('SELECT digest FROM chunks');
    for (const { digest } of recorded) assert.ok(await raw.stat(chunkKey(digest)), `recorded chunk ${digest} has its object`);
    // and once it is back the same bytes store fine
    const content = await store.store(piecesOf(data));
    assert.equal(content.digest, sha256(data));
  });
});

/** A memory driver that counts the bytes read from it. */
class CountingDriver extends MemoryDriver {
  fetched = 0;
  override async get(key: string) {
    const data = await super.get(key);
    this.fetched += data.length;
    return data;
  }
}

describe('read-ahead of downloads, bounded by bytes', () => {
  const KiB = 1024;
  const chunk = 64 * KiB;
  // every chunk exactly 64 KiB (random data: each stored raw, one codec byte more)
  const chunking = { minSize: chunk, avgSize: chunk, maxSize: chunk };
  const allowance = 1024 * KiB; // per download: 16 chunks
  const total = 1024 * KiB; // the whole store
  const data = randomBytesFor('read-ahead', 64 * chunk);
  let db: Database;
  let index: BlobIndex;
  let pool: CodecPool;
  let driver: CountingDriver;
  let store: ChunkStore;
  let blob: string;

  before(async () => {
    db = new Database(':memory:');
    db.migrate();
    index = new BlobIndex(db);
    pool = new CodecPool(2);
    driver = new CountingDriver();
    store = new ChunkStore(withStorageErrors(driver), index, pool, { chunking, readAheadBytes: allowance, readAheadTotalBytes: total });
    const content = await store.store(piecesOf(data));
    assert.ok(content.chunks.every((c) => c.size === chunk));
    index.addBlob(content.digest, content.size, content.chunks);
    blob = content.digest;
  });
  after(async () => {
    await pool.close();
    db.close();
  });

  /** Waits until no more chunks are being fetched (the driver's count stays put). */
  async function quiet(): Promise<void> {
    let last = -1;
    while (driver.fetched !== last) {
      last = driver.fetched;
      await sleep(30);
    }
  }

  async function readAll(stream: Readable, onPiece: (bytes: number) => void = () => {}): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const p of stream) {
      parts.push(p as Buffer);
      onPiece((p as Buffer).length);
    }
    return Buffer.concat(parts);
  }

  test('one download reads ahead as many chunks as its byte allowance holds, then sends them all', async () => {
    driver.fetched = 0;
    const { stream } = await store.open(blob);
    await quiet();
    // 16 chunks fit the allowance (the stream may have taken one more to buffer)
    const chunksFetched = driver.fetched / (chunk + 1);
    assert.ok(chunksFetched >= allowance / chunk && chunksFetched <= allowance / chunk + 1, `${chunksFetched} chunks fetched ahead`);
    assert.ok(store.readAheadInUse() <= allowance, `${store.readAheadInUse()} bytes counted ahead`);
    assert.ok((await readAll(stream)).equals(data));
    assert.equal(store.readAheadInUse(), 0);
  });

  test('many concurrent downloads share the store-wide budget: what is fetched and not yet sent stays within it', async () => {
    driver.fetched = 0;
    const downloads = 8;
    const streams = await Promise.all(Array.from({ length: downloads }, () => store.open(blob)));
    await quiet();
    // each download may always hold its next chunk; more only within the shared budget
    const bound = total + downloads * chunk;
    assert.ok(store.readAheadInUse() <= bound, `${store.readAheadInUse()} bytes counted ahead`);
    assert.ok(driver.fetched <= bound + downloads * (chunk + 1), `${driver.fetched} bytes fetched before any was read`);
    // read them all at once, a little at a time: fetched minus received stays bounded all along
    // (per download: the chunk it may always take, plus one on its way through the stream)
    let received = 0;
    let worst = 0;
    const bodies = await Promise.all(
      streams.map(({ stream }) =>
        readAll(stream, (n) => {
          received += n;
          worst = Math.max(worst, driver.fetched - received);
          assert.ok(store.readAheadInUse() <= bound, `${store.readAheadInUse()} bytes counted ahead`);
        }),
      ),
    );
    for (const body of bodies) assert.ok(body.equals(data));
    assert.ok(worst <= total + downloads * 2 * (chunk + 1), `${worst} bytes fetched but not yet sent`);
    assert.equal(store.readAheadInUse(), 0, 'every download gave its budget back');
  });

  test('downloads cut short give their read-ahead back', async () => {
    const opened = await Promise.all(Array.from({ length: 4 }, () => store.open(blob)));
    for (const { stream } of opened) {
      await new Promise<void>((resolve) => stream.once('readable', resolve));
      stream.read();
      stream.destroy();
    }
    await quiet();
    await sleep(50);
    assert.equal(store.readAheadInUse(), 0);
  });

  test('a raw chunk that fails its digest is refused before any of its bytes is sent', async () => {
    const victim = 5;
    const ref = index.chunksInRange(blob, victim * chunk, victim * chunk)[0]!;
    const key = chunkKey(ref.digest);
    const stored = await driver.get(key);
    assert.equal(codecOf(stored), 'raw');
    const damaged = Buffer.from(stored);
    damaged[damaged.length >> 1]! ^= 0x01;
    await driver.delete(key);
    await driver.put(key, damaged);
    try {
      const { stream } = await store.open(blob);
      const parts: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const p of stream) parts.push(p as Buffer);
        })(),
        (err) => isCairnError(err, 'CONTENT_CORRUPT'),
      );
      assert.ok(Buffer.concat(parts).equals(data.subarray(0, victim * chunk)), 'exactly the bytes before the damaged chunk');
      await quiet();
      await sleep(50);
      assert.equal(store.readAheadInUse(), 0);
    } finally {
      await driver.delete(key);
      await driver.put(key, stored);
    }
  });

  test('a raw chunk is verified without a copy: decoding hands back a view of the fetched buffer', async () => {
    const raw = data.subarray(0, chunk);
    const stored = encodeChunk(raw).stored;
    assert.equal(codecOf(stored), 'raw');
    const fetched = Buffer.from(stored); // what a driver returns: a buffer of its own
    const decoded = await pool.decode(fetched, sha256(raw));
    assert.equal(decoded.byteOffset, 1, 'past the codec byte');
    assert.equal(decoded.buffer.byteLength, stored.length, 'the same allocation, moved to the worker and back');
    assert.ok(Buffer.from(decoded).equals(raw));
  });
});
