// The image form's layer (src/registry/image-layer.ts): a tar laid out from
// the file list alone, read back by tar-stream and by GNU tar, the same bytes
// whatever the order the files come in, and any byte range cut from the
// layout equal to that range of the whole; and the image form's build when a
// client asks before it is done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { layerLayout, layoutFingerprint, segmentsInRange, type LayerLayout } from '../src/registry/image-layer.ts';
import { digestOf, randomBytesFor } from './support/bytes.ts';
import { startTestServer } from './support/server.ts';
import { ModelQueries } from '../src/metadata/models.ts';

const longName = `deep/${'n'.repeat(120)}/weights.bin`;
const contents: Record<string, Buffer> = {
  'model.safetensors': randomBytesFor('layer-model', 70_001),
  'config.json': Buffer.from('{"a":1}\n'),
  'empty.txt': Buffer.alloc(0),
  'tokenizer/vocab.txt': randomBytesFor('layer-vocab', 512),
  'tokenizer/merges/part-1.txt': randomBytesFor('layer-merges', 1025),
  [longName]: randomBytesFor('layer-long', 3000),
  'ünïcode/名前.bin': randomBytesFor('layer-unicode', 10),
};
const files = Object.entries(contents).map(([p, b]) => ({ path: p, size: b.length, digest: digestOf(b) }));
const MTIME = 1_700_000_000;

function bytesOf(layout: LayerLayout, start = 0, end = layout.size - 1): Buffer {
  const byDigest = new Map(Object.values(contents).map((b) => [digestOf(b), b]));
  return Buffer.concat(
    segmentsInRange(layout, start, end).map((p) => ('bytes' in p.segment ? p.segment.bytes.subarray(p.from, p.to) : byDigest.get(p.segment.file.digest)!.subarray(p.from, p.to))),
  );
}

test('the layer is a tar of the files under models/: directories first, paths in byte order, uid/gid 0, fixed modes and mtime, long names through PAX', async () => {
  const layout = layerLayout(files, MTIME);
  const whole = bytesOf(layout);
  assert.equal(whole.length, layout.size);
  assert.equal(whole.length % 512, 0);
  const entries: Array<{ name: string; type: string; mode: number; uid: number; gid: number; mtime: number; data: Buffer }> = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: unknown) => parts.push(d as Buffer));
      stream.on('end', () => {
        entries.push({ name: header.name, type: header.type ?? '', mode: header.mode ?? -1, uid: header.uid ?? -1, gid: header.gid ?? -1, mtime: header.mtime!.getTime() / 1000, data: Buffer.concat(parts) });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from([whole]).pipe(extract);
  await done;
  const fileEntries = entries.filter((e) => e.type === 'file');
  assert.deepEqual(
    fileEntries.map((e) => e.name),
    Object.keys(contents).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((p) => `models/${p}`),
  );
  for (const e of fileEntries) {
    assert.ok(e.data.equals(contents[e.name.slice('models/'.length)]!), e.name);
    assert.equal(e.mode, 0o644);
  }
  for (const e of entries) {
    assert.equal(e.uid, 0);
    assert.equal(e.gid, 0);
    assert.equal(e.mtime, MTIME);
  }
  const dirs = entries.filter((e) => e.type === 'directory');
  assert.deepEqual(dirs.map((d) => d.name), ['models/', 'models/deep/', `models/deep/${'n'.repeat(120)}/`, 'models/tokenizer/', 'models/tokenizer/merges/', 'models/ünïcode/']);
  for (const d of dirs) assert.equal(d.mode, 0o755);
  // each directory comes before what it holds
  for (const e of entries) {
    const parent = e.name.replace(/[^/]+\/?$/, '');
    if (parent !== '') assert.ok(entries.findIndex((x) => x.name === parent) < entries.indexOf(e), `${parent} before ${e.name}`);
  }
});

test('GNU tar lists and extracts the layer to the same bytes', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-layer-'));
  try {
    const layout = layerLayout(files, MTIME);
    await fs.writeFile(path.join(dir, 'layer.tar'), bytesOf(layout));
    execFileSync('tar', ['-xf', 'layer.tar'], { cwd: dir });
    for (const [p, b] of Object.entries(contents)) assert.ok((await fs.readFile(path.join(dir, 'models', p))).equals(b), p);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('the same bytes and fingerprint whatever order the files come in; another mtime or file changes them', () => {
  const a = layerLayout(files, MTIME);
  const b = layerLayout([...files].reverse(), MTIME);
  assert.ok(bytesOf(a).equals(bytesOf(b)));
  assert.equal(layoutFingerprint(a), layoutFingerprint(b));
  assert.notEqual(layoutFingerprint(layerLayout(files, MTIME + 1)), layoutFingerprint(a));
  const changed = files.map((f) => (f.path === 'config.json' ? { ...f, digest: digestOf(Buffer.from('{"a":2}\n')) } : f));
  assert.notEqual(layoutFingerprint(layerLayout(changed, MTIME)), layoutFingerprint(a));
});

test('any byte range cut from the layout is that range of the whole layer (headers, file bytes, padding, the end)', () => {
  const layout = layerLayout(files, MTIME);
  const whole = bytesOf(layout);
  const edges = layout.segments.flatMap((s) => [s.offset - 1, s.offset, s.offset + s.length - 1]).filter((x) => x >= 0 && x < layout.size);
  const points = [...edges, 0, layout.size - 1, 511, 512, 513];
  for (const start of points) {
    for (const end of [start, start + 1, start + 700, layout.size - 1]) {
      if (end >= layout.size || end < start) continue;
      assert.ok(bytesOf(layout, start, end).equals(whole.subarray(start, end + 1)), `${start}-${end}`);
    }
  }
});

test('a file of 8 GiB or more gets its size in a PAX record (USTAR holds 11 octal digits)', () => {
  const huge = 8 * 1024 ** 3 + 3;
  const layout = layerLayout([{ path: 'big.bin', size: huge, digest: `sha256:${'a'.repeat(64)}` }], MTIME);
  const head = layout.segments[0]!;
  assert.ok('bytes' in head);
  const text = head.bytes.toString('latin1');
  assert.match(text, new RegExp(`\\d+ size=${huge}\\n`));
  // headers, the file, its padding to 512, two zero blocks
  assert.equal(layout.size, head.length + huge + (512 - (huge % 512)) + 1024);
});

test('an image form asked for before it is built: IMAGE_PENDING (with retry_after) past the wait, then the same manifest once built', async () => {
  const srv = await startTestServer('fs');
  try {
    const form = new FormData();
    form.append('version', '1.0.0');
    form.append('file', new Blob([new Uint8Array(randomBytesFor('pending', 4 * 1024 * 1024))]), 'w.bin');
    assert.equal((await fetch(`${srv.url}/v1/models/pending/versions`, { method: 'POST', body: form })).status, 201);
    const models = new ModelQueries(srv.cairn.db);
    const row = models.versionByString(models.model('pending')!.id, '1.0.0')!;
    await assert.rejects(srv.cairn.services.oci.images.manifestOf(row, 'pending', 1), (err: any) => err.code === 'IMAGE_PENDING' && err.details.retry_after > 0);
    const built = await srv.cairn.services.oci.images.manifestOf(row, 'pending');
    const served = await fetch(`${srv.url}/v2/pending/manifests/1.0.0-image`);
    assert.equal(served.headers.get('docker-content-digest'), built.digest);
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(built.content));
  } finally {
    await srv.stop();
  }
});
