// Storage efficiency (issue 6): byte-grouped codecs for float data
// (src/codecs/codec.ts) and tensor-boundary cuts for safetensors / GGUF
// (src/formats/tensor-layout.ts, src/codecs/tensor-layout.ts, src/blobs/chunk-store.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compress } from 'zstd-napi';
import { ChunkStore } from '../src/blobs/chunk-store.ts';
import type { ChunkerOptions } from '../src/codecs/chunker.ts';
import { CodecPool } from '../src/codecs/codec-pool.ts';
import { codecOf, decodeChunk, encodeChunk, groupBytes, sha256, ungroupBytes } from '../src/codecs/codec.ts';
import { FsDriver } from '../src/blobs/fs-driver.ts';
import { chunkKey } from '../src/blobs/layout.ts';
import { forcedCuts, HintCursor, type TensorLayout } from '../src/codecs/tensor-layout.ts';
import type { ChunkRef } from '../src/blobs/chunk-index.ts';
import { BlobIndex } from '../src/metadata/blobs.ts';
import { Database } from '../src/metadata/db.ts';
import { findTensorLayout } from '../src/formats/tensor-layout.ts';
import { compressibleBytes, KiB, MiB, randomBytesFor } from './support/bytes.ts';
import { safetensorsHeader, safetensorsStream, type TensorSpec, tensorBytes } from './support/tensors.ts';

const bytesOf = (gen: Iterable<Buffer>) => Buffer.concat([...gen]);
const floats = (dtype: 'BF16' | 'F32', elements: number, seed = 'f') => bytesOf(tensorBytes({ name: 't', dtype, elements, seed, scale: 0.02 }));
const zstd3 = (b: Uint8Array) => compress(b, { compressionLevel: 3 }).byteLength + 1;

function roundTrip(raw: Uint8Array, hint?: { width?: number; skip?: number }) {
  const enc = encodeChunk(new Uint8Array(raw), hint);
  assert.equal(enc.digest, sha256(raw));
  assert.equal(codecOf(enc.stored), enc.codec);
  assert.ok(Buffer.from(decodeChunk(enc.stored, enc.digest)).equals(Buffer.from(raw)), `exact round trip (${enc.codec}, ${raw.length} bytes)`);
  return enc;
}

describe('byte-grouped codecs (zstd-bg2 / zstd-bg4)', () => {
  test('groupBytes / ungroupBytes are exact inverses for every width, skip, rotation and odd length', () => {
    for (const len of [0, 1, 2, 3, 5, 8, 17, 1000, 4099]) {
      const raw = randomBytesFor(`g${len}`, len);
      for (const width of [2, 4]) {
        for (let skip = 0; skip < width; skip++) {
          for (const rot of [false, true]) {
            const g = groupBytes(raw, width, skip, rot);
            assert.equal(g.length, raw.length);
            assert.ok(Buffer.from(ungroupBytes(g, width, skip, rot)).equals(raw), `len ${len} w ${width} skip ${skip} rot ${rot}`);
          }
        }
      }
    }
  });

  test('bf16 and f32 weights: byte-grouped, exact, well below plain zstd', () => {
    const bf16 = floats('BF16', 512 * 1024);
    const e2 = roundTrip(bf16, { width: 2 });
    assert.equal(e2.codec, 'zstd-bg2');
    assert.ok(e2.stored.length < 0.92 * zstd3(bf16), `bf16: ${e2.stored.length} vs zstd ${zstd3(bf16)}`);
    assert.ok(e2.stored.length / bf16.length < 0.8, `bf16 ratio ${e2.stored.length / bf16.length}`);
    const f32 = floats('F32', 256 * 1024);
    const e4 = roundTrip(f32, { width: 4 });
    assert.equal(e4.codec, 'zstd-bg4');
    assert.ok(e4.stored.length < 0.95 * zstd3(f32), `f32: ${e4.stored.length} vs zstd ${zstd3(f32)}`);
  });

  test('without a hint a sample finds the element width (and the alignment)', () => {
    assert.equal(roundTrip(floats('BF16', 256 * 1024)).codec, 'zstd-bg2');
    assert.equal(roundTrip(floats('F32', 128 * 1024)).codec, 'zstd-bg4');
    const shifted = floats('BF16', 256 * 1024).subarray(1); // elements straddle the chunk start
    const e = roundTrip(shifted);
    assert.equal(e.codec, 'zstd-bg2');
    assert.ok(e.stored.length < 0.92 * zstd3(shifted));
  });

  test('a hinted misalignment (skip) round trips and compresses like the aligned data', () => {
    const data = floats('BF16', 256 * 1024);
    const aligned = roundTrip(data, { width: 2, skip: 0 }).stored.length;
    for (const cut of [1, 3]) {
      const e = roundTrip(data.subarray(cut), { width: 2, skip: cut % 2 });
      assert.ok(Math.abs(e.stored.length - aligned) < aligned * 0.01, `skip ${cut % 2}: ${e.stored.length} vs ${aligned}`);
    }
    const f = floats('F32', 64 * 1024);
    for (let cut = 0; cut < 4; cut++) roundTrip(f.subarray(cut), { width: 4, skip: (4 - cut) % 4 });
  });

  test('the per-chunk choice is never worse than plain zstd (text, random, zeros, floats, mixed), raw when nothing shrinks', () => {
    const cases: Array<[string, Uint8Array, { width?: number }?]> = [
      ['text', compressibleBytes(300 * KiB)],
      ['text hinted as bf16', compressibleBytes(300 * KiB), { width: 2 }],
      ['zeros hinted as f32', new Uint8Array(200 * KiB), { width: 4 }],
      ['bf16', floats('BF16', 100 * 1024)],
      ['f32 hinted as bf16', floats('F32', 100 * 1024), { width: 2 }],
      ['mixed', Buffer.concat([compressibleBytes(50 * KiB), floats('BF16', 50 * 1024), randomBytesFor('mix', 50 * KiB)])],
    ];
    for (const [what, raw, hint] of cases) {
      const e = roundTrip(raw, hint);
      assert.ok(e.stored.length <= zstd3(raw), `${what}: ${e.codec} ${e.stored.length} <= zstd ${zstd3(raw)}`);
    }
    for (const hint of [undefined, { width: 2 }, { width: 4 }]) {
      const random = randomBytesFor('rnd', 300 * KiB);
      const e = roundTrip(random, hint);
      assert.equal(e.codec, 'raw');
      assert.equal(e.stored.length, random.length + 1);
    }
  });

  test('a width-1 hint (int8, fp8, headers) means plain zstd only', () => {
    assert.equal(roundTrip(floats('BF16', 64 * 1024), { width: 1 }).codec, 'zstd');
  });

  test('corrupt byte-grouped objects are rejected: flipped payload byte, bad parameter byte, truncated', () => {
    const e = encodeChunk(floats('BF16', 64 * 1024), { width: 2 });
    assert.equal(e.codec, 'zstd-bg2');
    const flip = e.stored.slice();
    flip[flip.length - 10]! ^= 0x40;
    assert.throws(() => decodeChunk(flip, e.digest), { name: 'ChunkCorruptError' });
    const badParam = e.stored.slice();
    badParam[1] = 0xf0;
    assert.throws(() => decodeChunk(badParam, e.digest), { name: 'ChunkCorruptError' });
    assert.throws(() => decodeChunk(e.stored.subarray(0, 5), e.digest), { name: 'ChunkCorruptError' });
    const asBg4 = e.stored.slice();
    asBg4[0] = 3;
    assert.throws(() => decodeChunk(asBg4, e.digest), { name: 'ChunkCorruptError' });
  });

  test('objects stored before byte grouping (codec 0 raw, 1 zstd) still decode', () => {
    const text = compressibleBytes(100 * KiB, 'old');
    // built by hand the way the previous codec wrote them: codec byte + payload
    const zstdObject = Buffer.concat([Buffer.from([1]), compress(text, { compressionLevel: 3 })]);
    assert.ok(Buffer.from(decodeChunk(zstdObject, sha256(text))).equals(text));
    const random = randomBytesFor('old-raw', 10 * KiB);
    const rawObject = Buffer.concat([Buffer.from([0]), random]);
    assert.ok(Buffer.from(decodeChunk(rawObject, sha256(random))).equals(random));
  });

  test('the worker pool passes hints and round trips byte-grouped chunks', async () => {
    const pool = new CodecPool(2);
    try {
      const data = floats('F32', 64 * 1024);
      const e = await pool.encode(new Uint8Array(data), { width: 4 });
      assert.equal(e.codec, 'zstd-bg4');
      assert.ok(Buffer.from(await pool.decode(e.stored, e.digest)).equals(data));
    } finally {
      await pool.close();
    }
  });
});

describe('tensor layout', () => {
  const specs: TensorSpec[] = [
    { name: 'a', dtype: 'BF16', elements: 1000, seed: 'a', scale: 1 },
    { name: 'b', dtype: 'F32', elements: 300, seed: 'b', scale: 1 },
  ];

  test('safetensors: header parsed from the first bytes, asks for more until complete', async () => {
    const file = bytesOf(safetensorsStream(specs, { note: 'x' }));
    const head = safetensorsHeader(specs, { note: 'x' });
    const need = await findTensorLayout(file.subarray(0, 20), false);
    assert.deepEqual(need, { state: 'need', bytes: head.length });
    const found = await findTensorLayout(file.subarray(0, head.length), false);
    assert.equal(found.state, 'found');
    if (found.state !== 'found') return;
    assert.equal(found.layout.dataStart, head.length);
    assert.deepEqual(found.layout.tensors, [
      { begin: head.length, end: head.length + 2000, width: 2 },
      { begin: head.length + 2000, end: head.length + 3200, width: 4 },
    ]);
    assert.deepEqual(await findTensorLayout(file.subarray(0, 20), true), { state: 'none' });
    assert.deepEqual(await findTensorLayout(compressibleBytes(100), false), { state: 'none' });
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(BigInt(200 * MiB));
    huge[8] = 0x7b;
    assert.deepEqual(await findTensorLayout(huge, false), { state: 'none' }, 'headers above the bound are not buffered');
  });

  test('GGUF: tensor starts and float widths from the header', async () => {
    const parts: Buffer[] = [Buffer.from('GGUF')];
    const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
    const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
    const str = (s: string) => { u64(Buffer.byteLength(s)); parts.push(Buffer.from(s)); };
    u32(3); u64(2); u64(2);
    str('general.alignment'); u32(4); u32(64);
    str('tokenizer.tokens'); u32(9); u32(8); u64(2); str('ab'); str('cd');
    str('w0'); u32(1); u64(100); u32(30); u64(0); // BF16, 200 bytes
    str('w1'); u32(1); u64(32); u32(2); u64(256); // Q4_0
    const header = Buffer.concat(parts);
    const found = await findTensorLayout(Buffer.concat([header, Buffer.alloc(1000)]), false);
    assert.equal(found.state, 'found');
    if (found.state !== 'found') return;
    const start = Math.ceil(header.length / 64) * 64;
    assert.equal(found.layout.dataStart, start);
    assert.deepEqual(found.layout.tensors.map((t) => [t.begin, t.width]), [[start, 2], [start + 256, 1]]);
    assert.equal((await findTensorLayout(header.subarray(0, 40), false)).state, 'need');
  });

  test('forced cuts: header end, every boundary of a large tensor, tiny tensors grouped up to minSize (no tensorGroupSize given)', () => {
    const layout = {
      format: 'safetensors' as const,
      dataStart: 100,
      tensors: [
        { begin: 100, end: 1100, width: 2 }, // big
        { begin: 1100, end: 1110, width: 2 }, // tiny ×4
        { begin: 1110, end: 1150, width: 2 },
        { begin: 1150, end: 1160, width: 2 },
        { begin: 1160, end: 1170, width: 2 },
        { begin: 1170, end: 2170, width: 4 }, // big
      ],
    };
    assert.deepEqual(forcedCuts(layout, { minSize: 50, avgSize: 64, maxSize: 128 }), [100, 1100, 1150, 1170, 2170]);
    const cursor = new HintCursor(layout);
    assert.deepEqual(cursor.hint(0, 100), { width: 1 });
    assert.deepEqual(cursor.hint(100, 501), { width: 2, skip: 0 });
    assert.deepEqual(cursor.hint(601, 499), { width: 2, skip: 1 });
    assert.deepEqual(cursor.hint(1100, 50), { width: 2, skip: 0 });
    assert.equal(cursor.hint(1160, 20), undefined, 'mixed widths: let the codec guess');
    assert.deepEqual(cursor.hint(1170, 1000), { width: 4, skip: 0 });
  });
});

describe('ChunkStore: tensor-boundary cuts and dedup', () => {
  const SMALL: ChunkerOptions = { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB };
  let dir: string;
  let db: Database;
  let pool: CodecPool;
  let store: ChunkStore;
  let index: BlobIndex;
  let driver: FsDriver;
  /** stores a stream and records it as a blob, as the registry does */
  const storeBlob = async (source: AsyncIterable<Uint8Array>) => {
    const content = await store.store(source);
    index.addBlob(content.digest, content.size, content.chunks);
    return content;
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-storage-eff-'));
    db = new Database(path.join(dir, 'registry.db'));
    db.migrate();
    pool = new CodecPool(2);
    driver = new FsDriver(path.join(dir, 'blobs'));
    index = new BlobIndex(db);
    store = new ChunkStore(driver, index, pool, { chunking: SMALL, findLayout: findTensorLayout });
  });
  after(async () => {
    await pool.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // big tensors (several chunks each) and runs of tiny ones (grouped)
  const model: TensorSpec[] = [];
  for (let i = 0; i < 8; i++) {
    model.push({ name: `l${i}.norm`, dtype: 'BF16', elements: 700 + i, seed: `n${i}`, scale: 1 });
    model.push({ name: `l${i}.bias`, dtype: 'F32', elements: 300, seed: `b${i}`, scale: 0.1 });
    model.push({ name: `l${i}.w`, dtype: i % 3 === 0 ? 'F32' : 'BF16', elements: 150_000 + 4099 * i, seed: `w${i}`, scale: 0.02 });
  }

  async function* pieces(gen: Iterable<Buffer>, size = 77_777): AsyncGenerator<Buffer> {
    // re-slice into odd-sized pieces, as a network would deliver them
    let pending = Buffer.alloc(0);
    for (const b of gen) {
      pending = Buffer.concat([pending, b]);
      while (pending.length >= size) {
        yield pending.subarray(0, size);
        pending = pending.subarray(size);
      }
    }
    if (pending.length) yield pending;
  }

  const rangeOf = (specs: TensorSpec[], name: string, meta?: Record<string, string>) => {
    let at = safetensorsHeader(specs, meta).length;
    for (const t of specs) {
      const len = t.elements * (t.dtype === 'F32' ? 4 : 2);
      if (t.name === name) return [at, at + len] as const;
      at += len;
    }
    throw new Error(name);
  };

  test('a changed header (extra metadata, shifted offsets) re-uses every tensor chunk; a changed tensor changes only its own chunks', async () => {
    const v1 = await storeBlob(pieces(safetensorsStream(model, { format: 'pt' })));
    const file1 = bytesOf(safetensorsStream(model, { format: 'pt' }));
    assert.equal(v1.digest, sha256(file1));
    assert.equal(v1.size, file1.length);
    // the header is its own chunk; every large tensor starts a chunk
    const starts = new Set(v1.chunks.map((c) => c.offset));
    const header1 = safetensorsHeader(model, { format: 'pt' }).length;
    assert.equal(v1.chunks[0]!.size, header1);
    for (const t of model.filter((s) => s.name.endsWith('.w'))) assert.ok(starts.has(rangeOf(model, t.name, { format: 'pt' })[0]), `${t.name} starts a chunk`);

    const meta2 = { format: 'pt', note: 'an extra metadata entry that shifts every data offset by a few bytes' };
    const v2 = await storeBlob(pieces(safetensorsStream(model, meta2), 65_536));
    const old = new Set(v1.chunks.map((c) => c.digest));
    const fresh2 = v2.chunks.filter((c) => !old.has(c.digest));
    assert.equal(fresh2.length, 1, `only the header chunk is new (${fresh2.length} new of ${v2.chunks.length})`);
    assert.equal(fresh2[0]!.offset, 0);

    const changed = model.map((t) => (t.name === 'l4.w' ? { ...t, seed: 'changed' } : t));
    const v3 = await storeBlob(pieces(safetensorsStream(changed, meta2)));
    const [b, e] = rangeOf(changed, 'l4.w', meta2);
    const seen = new Set([...old, ...v2.chunks.map((c) => c.digest)]);
    const fresh3 = v3.chunks.filter((c) => !seen.has(c.digest));
    assert.ok(fresh3.length >= 1);
    for (const c of fresh3) assert.ok(c.offset >= b && c.offset + c.size <= e, `new chunk [${c.offset}, ${c.offset + c.size}) lies inside the changed tensor [${b}, ${e})`);
    const inside = v3.chunks.filter((c) => c.offset >= b && c.offset < e);
    assert.equal(fresh3.length, inside.length, 'every chunk of the changed tensor is new');

    // and it all reads back exactly, through the codecs chosen per chunk
    const { stream } = await store.open(v3.digest);
    const back: Buffer[] = [];
    for await (const piece of stream) back.push(piece as Buffer);
    assert.equal(sha256(Buffer.concat(back)), v3.digest);
  });

  test('float chunks are stored byte-grouped, the header zstd; a stored object carries its codec', async () => {
    const specs = model.slice(0, 6);
    const content = await storeBlob(pieces(safetensorsStream(specs, { seed: 'codecs' })));
    const codecs = await Promise.all(content.chunks.map(async (c) => codecOf(await driver.get(chunkKey(c.digest)))));
    assert.equal(codecs[0], 'zstd', 'header');
    assert.ok(codecs.includes('zstd-bg2') && codecs.includes('zstd-bg4'), codecs.join(','));
  });

  test('a stream continued from its last chunk: same chunks as one stream; the session hash sees each byte once', async () => {
    const specs = model.slice(0, 9);
    const file = bytesOf(safetensorsStream(specs, { seed: 'resume' }));
    const whole = await store.store(pieces([file]));
    // three calls, as three requests of an upload session would make them
    let layout: TensorLayout | undefined;
    let held: ChunkRef[] = [];
    let at = 0;
    const hash = store.runningHash();
    for (const end of [5000, 300 * KiB + 1, file.length]) {
      const replay = held[held.length - 1];
      const part = await store.store(pieces([file.subarray(at, end)]), {
        startOffset: at,
        hash,
        resume: { replay, layout },
        onLayout: (found) => (layout = found),
      });
      held = [...held.filter((c) => c.offset < (replay?.offset ?? at)), ...part.chunks];
      at = end;
    }
    assert.ok(layout, 'the layout was found from the replayed first chunk and the bytes after it');
    assert.deepEqual(held, whole.chunks);
    assert.deepEqual(await hash.digest(), { digest: sha256(file), size: file.length });
    hash.drop();
    assert.equal(await hash.digest(), undefined, 'dropped');
  });

  test('files that are not tensor files, and resumed streams, are chunked by content as before', async () => {
    const data = randomBytesFor('plain', 2 * MiB);
    const content = await store.store(pieces([data]));
    assert.equal(content.digest, sha256(data));
    for (const c of content.chunks.slice(0, -1)) assert.ok(c.size >= SMALL.minSize);
    const tiny = await store.store(pieces([Buffer.from('hi')]));
    assert.equal(tiny.size, 2);
    const empty = await store.store(pieces([]));
    assert.equal(empty.size, 0);
  });
});
