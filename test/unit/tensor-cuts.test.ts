// Where tensor files are cut (forcedCuts in src/blobs/tensor-layout.ts, with
// DEFAULT_CHUNKING's tensorGroupSize): a changed tensor re-stores little
// besides itself, the number of chunks stays bounded, and a header that
// changes length moves no group. Pure functions: layouts and bytes are built
// here and cut with the real Chunker, no storage.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { forcedCuts, type TensorLayout, type TensorSpan } from '../../src/codecs/tensor-layout.ts';
import { Chunker, DEFAULT_CHUNKING } from '../../src/codecs/chunker.ts';
import { KiB, MiB, randomBytesFor } from '../support/bytes.ts';

const GROUP = DEFAULT_CHUNKING.tensorGroupSize!;

/** A layout of tensors of these sizes from `dataStart` on, each followed by `padding` bytes (GGUF-style alignment) except the last. */
function layoutOf(sizes: number[], dataStart: number, padding = 0): TensorLayout {
  let at = dataStart;
  const tensors: TensorSpan[] = sizes.map((n, i) => {
    const t = { begin: at, end: at + n, width: 2 };
    at += n + (i < sizes.length - 1 ? padding : 0);
    return t;
  });
  return { format: 'safetensors', dataStart, tensors };
}

/** Reproducible sizes of a small vision/encoder model: tiny vectors, small and mid-size kernels, a few large matrices. */
function mixedSizes(seed: string, count: number): number[] {
  const rnd = randomBytesFor(seed, count * 4);
  return Array.from({ length: count }, (_, i) => {
    const r = rnd.readUInt32LE(i * 4);
    const kind = r % 10;
    const x = (r >>> 8) / 2 ** 24;
    if (kind < 4) return 2 * (32 + Math.floor(x * 2000)); // biases, norms: 64 B .. 4 KiB
    if (kind < 7) return 2 * (2048 + Math.floor(x * 28_000)); // small kernels: 4 KiB .. 60 KiB
    if (kind < 9) return 2 * (32_768 + Math.floor(x * 200_000)); // mid-size: 64 KiB .. 460 KiB
    return 2 * (300_000 + Math.floor(x * 1_000_000)); // large: 600 KiB .. 2.5 MiB
  });
}

/** The region between forced cuts that holds tensor i: what a change of it re-stores. */
function regionOf(cuts: number[], t: TensorSpan, fileEnd: number): [number, number] {
  const begin = Math.max(0, ...cuts.filter((c) => c <= t.begin));
  const end = Math.min(fileEnd, ...cuts.filter((c) => c >= t.end));
  return [begin, end];
}

const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Cuts a whole file as the chunk store does (its layout's forced cuts, then content-defined cuts between them). */
function chunk(file: Buffer, layout: TensorLayout): { at: number; size: number; digest: string }[] {
  const chunker = new Chunker(DEFAULT_CHUNKING);
  chunker.setForcedCuts(forcedCuts(layout, DEFAULT_CHUNKING));
  const out: { at: number; size: number; digest: string }[] = [];
  let at = 0;
  for (let off = 0; off < file.length; off += 100_003) {
    for (const c of chunker.push(file.subarray(off, off + 100_003))) out.push({ at, size: c.length, digest: digest(c) }), (at += c.length);
  }
  for (const c of chunker.finish()) out.push({ at, size: c.length, digest: digest(c) }), (at += c.length);
  return out;
}

/** A file for a layout: `header` bytes, then the tensor bytes (and padding) from one random stream. */
function fileOf(layout: TensorLayout, header: Buffer, body: Buffer): Buffer {
  assert.equal(header.length, layout.dataStart);
  return Buffer.concat([header, body.subarray(0, layout.tensors.at(-1)!.end - layout.dataStart)]);
}

describe('tensor cuts', () => {
  test('the group size sits below the content-defined minimum (it is what makes small tensors chunks of their own)', () => {
    assert.ok(GROUP > 0 && GROUP < DEFAULT_CHUNKING.minSize, `${GROUP} < ${DEFAULT_CHUNKING.minSize}`);
  });

  test('a changed tensor re-stores at most its group: < 2 × tensorGroupSize for a small one, exactly itself for one of at least tensorGroupSize', () => {
    for (const padding of [0, 32]) {
      const layout = layoutOf(mixedSizes(`drag-${padding}`, 400), 4096, padding);
      const end = layout.tensors.at(-1)!.end;
      const cuts = forcedCuts(layout, DEFAULT_CHUNKING);
      layout.tensors.forEach((t, i) => {
        const extent = (layout.tensors[i + 1]?.begin ?? t.end) - t.begin;
        const [b, e] = regionOf(cuts, t, end);
        if (extent >= GROUP) assert.deepEqual([b, e], [t.begin, t.begin + extent], `tensor ${i} (${extent} B) is a region of its own`);
        else assert.ok(e - b < 2 * GROUP, `tensor ${i} (${extent} B, padding ${padding}): its group is ${e - b} B`);
      });
    }
  });

  test('with real bytes: changing one small tensor makes new chunks only inside its group', () => {
    const layout = layoutOf(mixedSizes('bytes', 60), 1000);
    const header = randomBytesFor('header', 1000);
    const body = randomBytesFor('body', layout.tensors.at(-1)!.end);
    const v1 = fileOf(layout, header, body);
    const old = new Set(chunk(v1, layout).map((c) => c.digest));
    const cuts = forcedCuts(layout, DEFAULT_CHUNKING);
    const small = layout.tensors.filter((t) => t.end - t.begin < GROUP);
    assert.ok(small.length >= 20, `${small.length} small tensors`);
    for (const t of small.filter((_, i) => i % 5 === 0)) {
      const v2 = Buffer.from(v1);
      for (let at = t.begin; at < t.end; at += 2) v2[at]! ^= 7; // low bits of every element, as a fine-tune would
      const fresh = chunk(v2, layout).filter((c) => !old.has(c.digest));
      const [b, e] = regionOf(cuts, t, v1.length);
      assert.ok(fresh.length >= 1, 'the changed tensor is stored again');
      for (const c of fresh) assert.ok(c.at >= b && c.at + c.size <= e, `new chunk [${c.at}, ${c.at + c.size}) lies in the group [${b}, ${e}) of [${t.begin}, ${t.end})`);
      const dragged = fresh.reduce((n, c) => n + c.size, 0) - (t.end - t.begin);
      assert.ok(dragged < 2 * GROUP - (t.end - t.begin), `re-stored ${dragged} B of unchanged neighbours`);
    }
  });

  test('chunk count: groups of small tensors reach tensorGroupSize (bounded number of regions); an LLM layout cuts exactly as grouping by minSize did', () => {
    const layout = layoutOf(mixedSizes('count', 2000), 8);
    const cuts = forcedCuts(layout, DEFAULT_CHUNKING);
    const extents = layout.tensors.map((t, i) => (layout.tensors[i + 1]?.begin ?? t.end) - t.begin);
    const big = extents.filter((n) => n >= GROUP).length;
    const smallBytes = extents.filter((n) => n < GROUP).reduce((a, b) => a + b, 0);
    // every group but the last of each run (runs are separated by big tensors) reaches GROUP
    const regions = cuts.length - 1;
    assert.ok(regions <= big + (big + 1) + Math.floor(smallBytes / GROUP), `${regions} regions for ${big} big tensors and ${smallBytes} B of small ones`);

    // a LLaMA-like model: matrices far above minSize, norm vectors far below GROUP
    const sizes: number[] = [32_000 * 1024 * 2];
    for (let l = 0; l < 16; l++) sizes.push(2048, 1024 * 1024 * 2, 1024 * 2816 * 2, 1024 * 2816 * 2, 2048, 1024 * 256 * 2 * 4, 1024 * 1024 * 2, 1024 * 1024 * 2, 1024 * 256 * 2 * 4);
    const llm = layoutOf(sizes, 20_000);
    assert.deepEqual(forcedCuts(llm, DEFAULT_CHUNKING), forcedCuts(llm, { ...DEFAULT_CHUNKING, tensorGroupSize: DEFAULT_CHUNKING.minSize }));
    assert.equal(forcedCuts(llm, DEFAULT_CHUNKING).length, sizes.length + 1, 'every tensor (a norm between two matrices included) is a region');
  });

  test('a header that changes length shifts every cut by the same amount; with real bytes only the header chunk is new', () => {
    const sizes = mixedSizes('header', 80);
    const a = layoutOf(sizes, 3000);
    const b = layoutOf(sizes, 3000 + 136);
    assert.deepEqual(forcedCuts(b, DEFAULT_CHUNKING), forcedCuts(a, DEFAULT_CHUNKING).map((c) => c + 136));

    const body = randomBytesFor('header-body', a.tensors.at(-1)!.end);
    const v1 = chunk(fileOf(a, randomBytesFor('h1', 3000), body), a);
    const v2 = chunk(fileOf(b, randomBytesFor('h2', 3136), body), b);
    const old = new Set(v1.map((c) => c.digest));
    const fresh = v2.filter((c) => !old.has(c.digest));
    assert.deepEqual(fresh.map((c) => [c.at, c.size]), [[0, 3136]], 'only the header is stored again');
    assert.equal(v2.length, v1.length);
  });

  test('a tensor added inside a run of small ones regroups that run only: cuts after the next large tensor are the old ones, shifted', () => {
    const sizes = [200 * KiB, ...Array.from({ length: 30 }, (_, i) => 3000 + 977 * i), 3 * MiB, ...Array.from({ length: 30 }, (_, i) => 5000 + 501 * i), 300 * KiB];
    const a = layoutOf(sizes, 64);
    const inserted = [...sizes.slice(0, 10), 1234, ...sizes.slice(10)];
    const b = layoutOf(inserted, 64);
    const cutsA = forcedCuts(a, DEFAULT_CHUNKING);
    const cutsB = forcedCuts(b, DEFAULT_CHUNKING);
    const largeA = a.tensors[31]!.begin;
    assert.equal(a.tensors[31]!.end - largeA, 3 * MiB);
    assert.deepEqual(cutsB.filter((c) => c >= largeA + 1234), cutsA.filter((c) => c >= largeA).map((c) => c + 1234));
    assert.deepEqual(cutsB.filter((c) => c <= a.tensors[10]!.begin), cutsA.filter((c) => c <= a.tensors[10]!.begin), 'groups before it stay');
  });

  test('without a tensorGroupSize, small tensors are grouped up to minSize (custom chunking options keep their cuts)', () => {
    const layout = layoutOf([1000, 10, 40, 10, 10, 1000], 100);
    assert.deepEqual(forcedCuts(layout, { minSize: 50, avgSize: 64, maxSize: 128 }), [100, 1100, 1150, 1170, 2170]);
    assert.deepEqual(forcedCuts(layout, { minSize: 50, avgSize: 64, maxSize: 128, tensorGroupSize: 20 }), [100, 1100, 1110, 1150, 1170, 2170]);
  });
});
