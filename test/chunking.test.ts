// Content-defined chunking (src/codecs/chunker.ts), chunk codecs
// (src/codecs/codec.ts) and the worker-thread codec pool (src/codecs/codec-pool.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Chunker, DEFAULT_CHUNKING, type ChunkerOptions } from '../src/codecs/chunker.ts';
import { CodecPool } from '../src/codecs/codec-pool.ts';
import type { Worker } from 'node:worker_threads';
import { ChunkCorruptError, codecOf, decodeChunk, encodeChunk, sha256 } from '../src/codecs/codec.ts';
import { compressibleBytes, KiB, MiB, randomBytesFor } from './support/bytes.ts';

/** Chunks `data`, pushed in pieces of `piece` bytes (or pieces from `sizes`, cycling), with optional forced cuts. */
function chunkAll(data: Uint8Array, options: ChunkerOptions, piece: number | number[], cuts?: number[]): Buffer[] {
  const chunker = new Chunker(options);
  if (cuts) chunker.setForcedCuts(cuts);
  const out: Buffer[] = [];
  const sizes = Array.isArray(piece) ? piece : [piece];
  let i = 0;
  for (let off = 0; off < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    for (const c of chunker.push(data.subarray(off, off + n))) out.push(c);
    off += n;
  }
  for (const c of chunker.finish()) out.push(c);
  return out;
}

function cutPoints(chunks: Uint8Array[]): number[] {
  const cuts: number[] = [];
  let at = 0;
  for (const c of chunks) cuts.push((at += c.length));
  return cuts;
}

function assertSizes(chunks: Uint8Array[], options: ChunkerOptions, total: number, what: string): void {
  assert.equal(chunks.reduce((n, c) => n + c.length, 0), total, `${what}: sizes add up`);
  chunks.forEach((c, i) => {
    const last = i === chunks.length - 1;
    assert.ok(c.length > 0, `${what}: chunk ${i} is not empty`);
    assert.ok(c.length <= options.maxSize, `${what}: chunk ${i} (${c.length}) <= max ${options.maxSize}`);
    if (!last) assert.ok(c.length >= options.minSize, `${what}: chunk ${i} (${c.length}) >= min ${options.minSize}`);
  });
}

function assertConcat(chunks: Uint8Array[], data: Uint8Array, what: string): void {
  assert.ok(Buffer.concat(chunks).equals(Buffer.from(data)), `${what}: the chunks concatenate to the input`);
}

const SMALL: ChunkerOptions = { minSize: 2 * KiB, avgSize: 8 * KiB, maxSize: 32 * KiB };

describe('Chunker', () => {
  test('rejects inconsistent options', () => {
    assert.throws(() => new Chunker({ minSize: 0, avgSize: 8, maxSize: 16 }));
    assert.throws(() => new Chunker({ minSize: 16, avgSize: 8, maxSize: 32 }));
    assert.throws(() => new Chunker({ minSize: 4, avgSize: 64, maxSize: 32 }));
  });

  test('empty input gives no chunks; input below min gives one chunk', () => {
    assert.deepEqual(chunkAll(new Uint8Array(0), DEFAULT_CHUNKING, 1024), []);
    const small = randomBytesFor('tiny', 1000);
    const chunks = chunkAll(small, DEFAULT_CHUNKING, 1000);
    assert.equal(chunks.length, 1);
    assert.ok(chunks[0]!.equals(small));
  });

  test('default options: sizes within min/max, concatenation equals input, cuts are content-defined (not fixed)', () => {
    const data = randomBytesFor('chunk-default', 20 * MiB + 12345);
    const chunks = chunkAll(data, DEFAULT_CHUNKING, data.length);
    assertSizes(chunks, DEFAULT_CHUNKING, data.length, 'default');
    assertConcat(chunks, data, 'default');
    assert.ok(chunks.length >= 4, `20 MiB makes several chunks (${chunks.length})`);
    const sizes = new Set(chunks.slice(0, -1).map((c) => c.length));
    assert.ok(sizes.size > 1, 'chunk sizes vary with content');
    // each chunk is its own exactly-sized buffer (safe to transfer to a worker)
    for (const c of chunks) assert.equal(c.byteLength, c.buffer.byteLength);
  });

  test('small options on many chunks: sizes within min/max and the average is near avgSize', () => {
    const data = randomBytesFor('chunk-small', 4 * MiB);
    const chunks = chunkAll(data, SMALL, 64 * KiB);
    assertSizes(chunks, SMALL, data.length, 'small');
    assertConcat(chunks, data, 'small');
    const mean = data.length / chunks.length;
    assert.ok(mean > SMALL.minSize && mean < SMALL.maxSize, `mean chunk size ${mean}`);
  });

  test('input without cut points (zeros) is cut at maxSize', () => {
    const data = new Uint8Array(20 * MiB + 5);
    const chunks = chunkAll(data, DEFAULT_CHUNKING, 3 * MiB);
    assertSizes(chunks, DEFAULT_CHUNKING, data.length, 'zeros');
    for (const c of chunks.slice(0, -1)) assert.equal(c.length, DEFAULT_CHUNKING.maxSize);
  });

  test('the same cut points however the input is split into pushes (1 byte, 7 bytes, 64 KiB, irregular, whole)', () => {
    for (const [options, size, label] of [
      [SMALL, 1 * MiB + 77, 'small options'],
      [DEFAULT_CHUNKING, 10 * MiB + 3, 'default options'],
    ] as const) {
      const data = randomBytesFor(`split-${label}`, size);
      const whole = cutPoints(chunkAll(data, options, data.length));
      assert.ok(whole.length >= 3, `${label}: several chunks`);
      for (const piece of [1, 7, 64 * KiB, [1, 4093, 65537, 3, 1 << 20, 999_999]]) {
        const chunks = chunkAll(data, options, piece);
        assert.deepEqual(cutPoints(chunks), whole, `${label}, pushes of ${JSON.stringify(piece)}`);
        assertConcat(chunks, data, `${label}, pushes of ${JSON.stringify(piece)}`);
      }
    }
  });

  test('pushing more than maxSize at once still respects maxSize', () => {
    const data = new Uint8Array(3 * SMALL.maxSize + 10).fill(0x42);
    const chunks = chunkAll(data, SMALL, data.length);
    assertSizes(chunks, SMALL, data.length, 'big push');
  });

  test('dedup survives an insertion near the start of a ~24 MiB buffer', () => {
    const original = randomBytesFor('dedup', 24 * MiB);
    const inserted = Buffer.concat([original.subarray(0, 5000), Buffer.from('HELLO'), original.subarray(5000)]);
    const digests = (data: Uint8Array) => chunkAll(data, DEFAULT_CHUNKING, MiB).map((c) => sha256(c));
    const a = digests(original);
    const b = digests(inserted);
    const setA = new Set(a);
    const shared = b.filter((x) => setA.has(x)).length;
    assert.ok(a.length >= 6, `enough chunks to mean something (${a.length})`);
    assert.ok(shared >= b.length - 2, `only the chunks around the insertion differ: ${shared} of ${b.length} shared`);
    assert.ok(shared / b.length >= 0.75, 'most chunks are shared');
  });

  test('dedup survives an insertion and a deletion in the middle', () => {
    const original = randomBytesFor('dedup-mid', 16 * MiB);
    const mid = 8 * MiB + 1234;
    const changed = Buffer.concat([original.subarray(0, mid), Buffer.alloc(333, 1), original.subarray(mid + 100)]);
    const a = chunkAll(original, DEFAULT_CHUNKING, MiB).map((c) => sha256(c));
    const b = chunkAll(changed, DEFAULT_CHUNKING, MiB).map((c) => sha256(c));
    const setA = new Set(a);
    const shared = b.filter((x) => setA.has(x)).length;
    assert.ok(shared >= b.length - 2, `${shared} of ${b.length} shared`);
  });
});

describe('codec', () => {
  test('compressible data: zstd, smaller, round trip', () => {
    const raw = compressibleBytes(MiB);
    const enc = encodeChunk(raw);
    assert.equal(enc.codec, 'zstd');
    assert.equal(enc.rawSize, raw.length);
    assert.equal(enc.digest, sha256(raw));
    assert.match(enc.digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(enc.stored.length < raw.length / 10, `stored ${enc.stored.length} bytes`);
    assert.equal(codecOf(enc.stored), 'zstd');
    assert.ok(Buffer.from(decodeChunk(enc.stored, enc.digest)).equals(raw));
  });

  test('incompressible data: raw fallback (codec byte + the bytes), round trip', () => {
    const raw = randomBytesFor('incompressible', 256 * KiB);
    const enc = encodeChunk(raw);
    assert.equal(enc.codec, 'raw');
    assert.equal(enc.stored.length, raw.length + 1);
    assert.equal(codecOf(enc.stored), 'raw');
    assert.ok(Buffer.from(enc.stored.subarray(1)).equals(raw));
    assert.ok(Buffer.from(decodeChunk(enc.stored, enc.digest)).equals(raw));
  });

  test('tiny and empty chunks do not grow beyond one codec byte', () => {
    for (const raw of [new Uint8Array(0), new Uint8Array([1]), Buffer.from('abc')]) {
      const enc = encodeChunk(raw);
      assert.equal(enc.codec, 'raw');
      assert.equal(enc.stored.length, raw.length + 1);
      assert.ok(Buffer.from(decodeChunk(enc.stored, enc.digest)).equals(Buffer.from(raw)));
    }
  });

  test('decodeChunk rejects a flipped byte (zstd and raw), a wrong digest, an unknown codec byte', () => {
    for (const raw of [compressibleBytes(200 * KiB), randomBytesFor('flip', 200 * KiB)]) {
      const enc = encodeChunk(raw);
      for (const at of [1, Math.floor(enc.stored.length / 2), enc.stored.length - 1]) {
        const bad = new Uint8Array(enc.stored);
        bad[at] = bad[at]! ^ 0x01;
        assert.throws(() => decodeChunk(bad, enc.digest), ChunkCorruptError, `${enc.codec}: flipped byte at ${at}`);
      }
      assert.throws(() => decodeChunk(enc.stored, sha256(Buffer.from('something else'))), ChunkCorruptError, `${enc.codec}: wrong digest`);
      const unknown = new Uint8Array(enc.stored);
      unknown[0] = 0x7f;
      assert.throws(() => decodeChunk(unknown, enc.digest), ChunkCorruptError, 'unknown codec byte');
      assert.throws(() => decodeChunk(enc.stored.subarray(0, enc.stored.length - 10), enc.digest), ChunkCorruptError, `${enc.codec}: truncated`);
    }
    assert.throws(() => decodeChunk(new Uint8Array(0), sha256(new Uint8Array(0))), ChunkCorruptError, 'an empty object has no codec byte');
  });

  test('the codec byte of a zstd chunk flipped to raw is caught by the digest', () => {
    const raw = compressibleBytes(100 * KiB);
    const enc = encodeChunk(raw);
    const asRaw = new Uint8Array(enc.stored);
    asRaw[0] = 0;
    assert.throws(() => decodeChunk(asRaw, enc.digest), ChunkCorruptError);
  });
});

describe('CodecPool (worker threads)', () => {
  let pool: CodecPool;
  before(() => {
    pool = new CodecPool(2);
  });
  after(async () => {
    await pool.close();
  });

  test('encode gives the same result as encodeChunk; decode round trips', async () => {
    for (const raw of [compressibleBytes(MiB + 3), randomBytesFor('pool', MiB + 5), new Uint8Array(0)]) {
      const expected = encodeChunk(raw);
      const enc = await pool.encode(new Uint8Array(raw)); // a copy: the pool may transfer its input away
      assert.equal(enc.digest, expected.digest);
      assert.equal(enc.codec, expected.codec);
      assert.equal(enc.rawSize, raw.length);
      assert.ok(Buffer.from(enc.stored).equals(Buffer.from(expected.stored)));
      const back = await pool.decode(new Uint8Array(enc.stored), enc.digest);
      assert.ok(Buffer.from(back).equals(Buffer.from(raw)));
    }
  });

  test('a view into a shared buffer is not detached or changed by encode', async () => {
    const backing = randomBytesFor('pool-view', 64 * KiB);
    const copy = Buffer.from(backing);
    const view = backing.subarray(1000, 5000);
    const enc = await pool.encode(view);
    assert.equal(enc.digest, sha256(copy.subarray(1000, 5000)));
    assert.equal(backing.length, 64 * KiB, 'the backing buffer is still usable');
    assert.ok(backing.equals(copy));
  });

  test('many concurrent jobs complete, each with its own result', async () => {
    const inputs = Array.from({ length: 24 }, (_, i) => (i % 2 ? compressibleBytes(100 * KiB + i, `job${i}`) : randomBytesFor(`job${i}`, 100 * KiB + i)));
    const results = await Promise.all(inputs.map((raw) => pool.encode(new Uint8Array(raw))));
    results.forEach((r, i) => assert.equal(r.digest, sha256(inputs[i]!), `job ${i}`));
    const decoded = await Promise.all(results.map((r) => pool.decode(r.stored, r.digest)));
    decoded.forEach((d, i) => assert.ok(Buffer.from(d).equals(Buffer.from(inputs[i]!)), `decode ${i}`));
  });

  test('a corrupt chunk is rejected with ChunkCorruptError, and the pool keeps working', async () => {
    const raw = compressibleBytes(300 * KiB, 'corrupt');
    const enc = encodeChunk(raw);
    const flipped = new Uint8Array(enc.stored);
    flipped[flipped.length >> 1] = flipped[flipped.length >> 1]! ^ 0xff;
    await assert.rejects(pool.decode(flipped, enc.digest), ChunkCorruptError);
    await assert.rejects(pool.decode(new Uint8Array(enc.stored), sha256(Buffer.from('other'))), ChunkCorruptError);
    const rawEnc = encodeChunk(randomBytesFor('corrupt-raw', 10 * KiB));
    const rawFlipped = new Uint8Array(rawEnc.stored);
    rawFlipped[5] = rawFlipped[5]! ^ 1;
    await assert.rejects(pool.decode(rawFlipped, rawEnc.digest), ChunkCorruptError);
    const ok = await pool.decode(new Uint8Array(enc.stored), enc.digest);
    assert.ok(Buffer.from(ok).equals(raw));
  });

  test('a closed pool rejects new work', async () => {
    const other = new CodecPool(1);
    await other.encode(new Uint8Array([1, 2, 3]));
    await other.close();
    await assert.rejects(other.encode(new Uint8Array([1])));
  });

  test('closing while a reply is already queued still waits for the workers to exit', async () => {
    // A fire-and-forget request (e.g. dropping a running hash) whose reply is
    // handled after close() started. Its reply used to unref the worker that
    // close() had just ref'd, and the process could end with close() pending:
    // node:test then fails this test ("Promise resolution is still pending but
    // the event loop has already resolved"). Which comes first, the worker's
    // reply or terminate(), is up to the threads; so the late reply is handed
    // to the pool's handler here, right after close() began — every time.
    const other = new CodecPool(1);
    await other.encode(new Uint8Array([1, 2, 3])); // the worker is up, and idle (unref'd)
    const [slot] = (other as unknown as { slots: Array<{ worker: Worker }> }).slots;
    let exited = false;
    slot!.worker.once('exit', () => (exited = true));
    const closing = other.close();
    slot!.worker.emit('message', { id: -1, ok: true, op: 'hash-drop' }); // a fire-and-forget reply, late
    await closing;
    assert.ok(exited, 'close() resolves once the worker has exited');
  });
});

describe('Chunker: forced cuts (tensor boundaries)', () => {
  const chunkWithCuts = (data: Uint8Array, cuts: number[], piece: number | number[]) => chunkAll(data, SMALL, piece, cuts);

  test('every forced cut is a cut point (also below minSize), whatever the push sizes; max still holds', () => {
    const data = randomBytesFor('forced', 400 * KiB);
    const cuts = [100, 1000, 50 * KiB + 3, 50 * KiB + 10, 300 * KiB];
    const ref = chunkWithCuts(data, cuts, data.length);
    assertConcat(ref, data, 'forced');
    const points = cutPoints(ref);
    for (const c of cuts) assert.ok(points.includes(c), `cut at ${c}`);
    for (const c of ref) assert.ok(c.length <= SMALL.maxSize);
    for (const piece of [1000, [7, 65536, 333], 4096]) {
      assert.deepEqual(cutPoints(chunkWithCuts(data, cuts, piece)), points, `same cuts for pieces ${piece}`);
    }
  });

  test('cuts between two forced cuts depend only on the bytes between them (a segment moved by a header change chunks the same)', () => {
    const segment = randomBytesFor('segment', 300 * KiB);
    const a = Buffer.concat([randomBytesFor('hdr-a', 1000), segment]);
    const b = Buffer.concat([randomBytesFor('hdr-b', 1777), segment]);
    const ca = chunkWithCuts(a, [1000], 64 * KiB).slice(1);
    const cb = chunkWithCuts(b, [1777], 64 * KiB).slice(1);
    assert.deepEqual(ca.map((c) => sha256(c)), cb.map((c) => sha256(c)));
    // without the forced cut the first chunks differ
    assert.notEqual(sha256(chunkAll(a, SMALL, a.length)[0]!), sha256(chunkAll(b, SMALL, b.length)[0]!));
  });

  test('forced cuts beyond the end, or already passed, are ignored', () => {
    const data = randomBytesFor('beyond', 100 * KiB);
    const chunks = chunkWithCuts(data, [0, 10 * MiB], 4096);
    assertConcat(chunks, data, 'beyond');
    assert.deepEqual(cutPoints(chunks), cutPoints(chunkAll(data, SMALL, 4096)));
  });
});
