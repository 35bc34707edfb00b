// Storage efficiency (issue 6): what Cairn stores per byte of model, next to
// `zstd -3` of the same file, and how much a new version with a few changed
// tensors and a changed header costs. One run prints everything side by side.
//
//   node --import tsx bench/storage-efficiency.ts [--size 1G] [--models /work/shared/models]
//                                                [--v2-of model.safetensors [--v2-only]]
//
// --v2-of FILE: a real safetensors file as v1, and a v2 made from it the way a
// fine-tune changes a model: every 10th tensor (in file order) gets new values
// (the low 3 bits of every element flipped at random) and the header grows (an
// extra metadata entry: every data offset shifts). It reports what v2 stores
// next to the ideal — the changed tensors and the new header alone, each at
// the codec's own ratio — and the chunk objects of v1. --v2-only: only that
// (no real-weights table, no generated model).
//
// Everything goes through the real ChunkStore (default chunking, worker-thread
// codec pool, fs driver) on a temporary data dir; "stored" is the bytes of the
// chunk objects on disk. Generated files stream from test/support/tensors.ts
// (normal-distributed weights with a per-tensor scale, BF16 by round-to-nearest-
// even); nothing is held in memory as a whole.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCipheriv, createHash } from 'node:crypto';
import { ChunkStore } from '../src/blobs/chunk-store.ts';
import { encodeChunk } from '../src/codecs/codec.ts';
import { DEFAULT_CHUNKING } from '../src/codecs/chunker.ts';
import { CodecPool } from '../src/codecs/codec-pool.ts';
import { FsDriver } from '../src/blobs/fs-driver.ts';
import { BlobIndex } from '../src/metadata/blobs.ts';
import { Database } from '../src/metadata/db.ts';
import { findTensorLayout } from '../src/formats/tensor-layout.ts';
import { modelSpec, safetensorsSize, safetensorsStream, type TensorSpec } from '../test/support/tensors.ts';
import { bytesUnder, option, parseSize } from './support.ts';

const SIZE = parseSize(option('size', '1G'));
const MODELS = option('models', '/work/shared/models');
const V2_OF = option('v2-of', '');
const V2_ONLY = process.argv.includes('--v2-only');
const log = (...a: unknown[]) => console.error('…', ...a);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-storage-bench-'));
const db = new Database(path.join(dir, 'registry.db'));
db.migrate();
const pool = new CodecPool();
const blobsDir = path.join(dir, 'blobs');
const store = new ChunkStore(new FsDriver(blobsDir), new BlobIndex(db), pool, { findLayout: findTensorLayout });

const storedBytes = () => bytesUnder(path.join(blobsDir, 'chunks'));

async function* fromSync(gen: Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* gen;
}

/** Stores a stream; returns its size, the new stored bytes, the wall time and the process CPU time (all threads). */
async function measureStore(source: AsyncIterable<Uint8Array>) {
  const before = storedBytes();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const content = await store.store(source);
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { size: content.size, stored: storedBytes() - before, secs, cpuSecs: (cpu.user + cpu.system) / 1e6, chunks: content.chunks };
}

const hasZstd = spawnSync('zstd', ['--version']).status === 0;
/** `zstd -3` of a file or of a stream (the CLI; the whole file as one stream). */
async function zstdCli(source: string | Iterable<Buffer>): Promise<number | undefined> {
  if (!hasZstd) return undefined;
  const child = spawn('zstd', ['-3', '-q', '-c', ...(typeof source === 'string' ? [source] : [])], { stdio: [typeof source === 'string' ? 'ignore' : 'pipe', 'pipe', 'inherit'] });
  let n = 0;
  child.stdout!.on('data', (b: Buffer) => (n += b.length));
  const done = new Promise<void>((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited ${code}`)))));
  if (typeof source !== 'string') {
    for (const b of source) if (!child.stdin!.write(b)) await new Promise((r) => child.stdin!.once('drain', r));
    child.stdin!.end();
  }
  await done;
  return n;
}

/** CPU seconds this process spends only generating the stream (subtracted from the store's CPU time). */
function generationCpu(gen: Iterable<Buffer>): number {
  const cpu0 = process.cpuUsage();
  for (const _ of gen);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1e6;
}

type Row = { what: string; size: number; cairn: number; zstd?: number; goal?: number; speed?: string };
const rows: Row[] = [];
const verdicts: string[] = [];
const fmt = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(3));
const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;

async function main() {
  console.error(`data dir ${dir}; ${os.availableParallelism()} cores; zstd CLI ${hasZstd ? 'yes' : 'no (baseline column empty)'}`);
  if (V2_ONLY) {
    if (!V2_OF) throw new Error('--v2-only needs --v2-of FILE');
    printRealV2(await realV2(V2_OF));
    console.log('');
    console.log(`verdict: ${verdicts.every((v) => v.endsWith(' met')) ? 'ALL GOALS MET' : 'SOME GOALS NOT MET'}`);
    return;
  }

  // 1. real weights
  const files = fs.existsSync(MODELS) ? fs.readdirSync(MODELS).filter((f) => !f.endsWith('.md')).sort() : [];
  for (const f of files) {
    const p = path.join(MODELS, f);
    log(f);
    const m = await measureStore(fs.createReadStream(p, { highWaterMark: 1 << 20 }));
    const z = await zstdCli(p);
    const goal = /bf16/i.test(f) ? 0.7 : /fp32/i.test(f) ? 0.86 : undefined;
    rows.push({ what: f, size: m.size, cairn: m.stored / m.size, zstd: z === undefined ? undefined : z / m.size, goal });
  }

  // 2. generated BF16 model, v1
  const v1: TensorSpec[] = modelSpec(SIZE, 'BF16');
  const meta1 = { format: 'pt' };
  const size1 = safetensorsSize(v1, meta1);
  log(`generated ${mib(size1)} BF16 safetensors, ${v1.length} tensors: zstd -3 baseline`);
  const z1 = await zstdCli(safetensorsStream(v1, meta1));
  const genCpu = generationCpu(safetensorsStream(v1, meta1));
  log('v1 through the chunk store');
  const m1 = await measureStore(fromSync(safetensorsStream(v1, meta1)));
  rows.push({ what: `generated BF16 safetensors v1 (${v1.length} tensors)`, size: m1.size, cairn: m1.stored / m1.size, zstd: z1 === undefined ? undefined : z1 / m1.size, goal: 0.7 });
  const storeCpu = Math.max(m1.cpuSecs - genCpu, 1e-9);
  const perCore = m1.size / 1e6 / storeCpu;
  const wall = m1.size / 1e6 / m1.secs;

  // 3. v2: every 10th tensor changed (a weight matrix each time), and an extra metadata entry (shifts every data offset)
  const v2 = v1.map((t, i) => (i % 10 === 3 ? { ...t, seed: `${t.seed}-v2`, scale: t.scale * 1.01 } : t));
  const changed = v2.filter((t, i) => t !== v1[i]);
  const changedBytes = changed.reduce((n, t) => n + t.elements * 2, 0);
  const meta2 = { ...meta1, 'cairn.bench': 'v2: fine-tuned, with an extra metadata entry that shifts all data offsets' };
  log(`v2: ${changed.length} of ${v2.length} tensors changed (${mib(changedBytes)}), header changed`);
  const m2 = await measureStore(fromSync(safetensorsStream(v2, meta2)));
  const dedup = m2.stored / m2.size;

  const real = V2_OF ? await realV2(V2_OF) : undefined;

  // print
  const w = Math.max(...rows.map((r) => r.what.length), 10);
  console.log(`${'file'.padEnd(w)}  ${'bytes'.padStart(13)}  ${'cairn'.padStart(6)}  ${'zstd -3'.padStart(7)}  goal    result`);
  for (const r of rows) {
    const met = r.goal === undefined ? '' : r.cairn <= r.goal ? 'met' : 'NOT MET';
    console.log(`${r.what.padEnd(w)}  ${r.size.toLocaleString('en').padStart(13)}  ${fmt(r.cairn).padStart(6)}  ${fmt(r.zstd).padStart(7)}  ${(r.goal === undefined ? '—' : `≤ ${r.goal.toFixed(2)}`).padEnd(6)}  ${met}`);
    if (r.goal !== undefined) verdicts.push(`${r.what}: ${fmt(r.cairn)} (goal ≤ ${r.goal}) ${met}`);
  }
  console.log('');
  console.log(`(stored / original; cairn = chunk objects on disk after ChunkStore.store with default chunking; zstd -3 = the zstd CLI on the whole file)`);
  console.log('');
  const dedupMet = dedup <= 0.15 ? 'met' : 'NOT MET';
  console.log(`dedup: v2 (${changed.length}/${v2.length} tensors = ${((100 * changedBytes) / m2.size).toFixed(1)}% of bytes changed, header +${safetensorsSize(v2, meta2) - size1} bytes) new stored bytes ${m2.stored.toLocaleString('en')} / ${m2.size.toLocaleString('en')} = ${dedup.toFixed(3)}   goal ≤ 0.15  ${dedupMet}`);
  console.log(`        (v2 chunks ${m2.chunks.length}; if every tensor chunk were new it would be ~${(m1.stored / m1.size).toFixed(3)})`);
  console.log(`speed: v1 chunk+hash+compress ${wall.toFixed(0)} MB/s wall with ${os.availableParallelism()} worker threads; ${perCore.toFixed(0)} MB/s per core (bytes / CPU seconds of all threads, generation subtracted); v2 ${(m2.size / 1e6 / m2.secs).toFixed(0)} MB/s wall`);
  verdicts.push(`dedup v2: ${dedup.toFixed(3)} (goal ≤ 0.15) ${dedupMet}`);
  if (real) {
    console.log('');
    printRealV2(real);
  }
  console.log('');
  console.log(`verdict: ${verdicts.every((v) => v.endsWith(' met')) ? 'ALL GOALS MET' : 'SOME GOALS NOT MET'}`);
}

function printRealV2(real: Awaited<ReturnType<typeof realV2>>) {
  const ratio = real.stored / real.ideal;
  const met = ratio <= 1.05 ? 'met' : 'NOT MET';
  console.log(`real v2 (${path.basename(V2_OF)}, ${real.tensors} tensors, ${real.changed} changed = ${((100 * real.changedBytes) / real.size).toFixed(1)}% of bytes, header +${real.headerGrowth} bytes):`);
  console.log(`        v1 is ${real.v1Chunks} chunks; v2 new stored bytes ${real.stored.toLocaleString('en')} / ${real.size.toLocaleString('en')} = ${(real.stored / real.size).toFixed(3)}`);
  console.log(`        v2's new chunks hold ${real.newRaw.toLocaleString('en')} bytes: the changed tensors, the header and ${real.dragged.toLocaleString('en')} bytes of unchanged tensors`);
  console.log(`        ideal (changed tensors + header, each at the codec's ratio) ${(real.ideal / real.size).toFixed(3)}; v2 / ideal = ${ratio.toFixed(3)}   goal ≤ 1.05  ${met}`);
  verdicts.push(`real v2 / ideal: ${ratio.toFixed(3)} (goal ≤ 1.05) ${met}`);
}

/** A safetensors header: its JSON and where the data starts. */
function readSafetensorsHeader(file: string): { json: Record<string, { dtype: string; data_offsets: [number, number] } | Record<string, string>>; dataStart: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const text = Buffer.alloc(n);
    fs.readSync(fd, text, 0, n, 8);
    return { json: JSON.parse(text.toString('utf8')), dataStart: 8 + n };
  } finally {
    fs.closeSync(fd);
  }
}

function headerBytes(json: object): Buffer {
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return Buffer.concat([head, Buffer.from(text)]);
}

const DTYPE_WIDTH: Record<string, number> = { F16: 2, BF16: 2, F32: 4, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** v1 = the file, v2 = every 10th tensor changed and a longer header (see the top); both through the chunk store. */
async function realV2(file: string) {
  const { json, dataStart } = readSafetensorsHeader(file);
  // every 10th entry of the header in name order (__metadata__ counted, as in the generated v2 above)
  const changed = new Set(Object.keys(json).sort().filter((name, i) => i % 10 === 3 && name !== '__metadata__'));
  const tensors = Object.entries(json)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, t]) => ({ name, dtype: (t as { dtype: string }).dtype, begin: (t as { data_offsets: [number, number] }).data_offsets[0], end: (t as { data_offsets: [number, number] }).data_offsets[1] }))
    .sort((a, b) => a.begin - b.begin);
  const meta = { ...((json.__metadata__ as Record<string, string> | undefined) ?? {}), 'cairn.bench': 'v2: fine-tuned, with an extra metadata entry that shifts all data offsets' };
  const header2 = headerBytes({ ...json, __metadata__: meta });
  const key = createHash('sha256').update('cairn-bench-real-v2').digest();
  /** The tensor's bytes with the low 3 bits of every element's first byte flipped at random. */
  const changedBytes = (t: (typeof tensors)[number]): Buffer => {
    const fd = fs.openSync(file, 'r');
    const bytes = Buffer.alloc(t.end - t.begin);
    fs.readSync(fd, bytes, 0, bytes.length, dataStart + t.begin);
    fs.closeSync(fd);
    const noise = createCipheriv('aes-256-ctr', key, createHash('md5').update(t.name).digest()).update(Buffer.alloc(bytes.length));
    const w = DTYPE_WIDTH[t.dtype] ?? 1;
    for (let i = 0; i < bytes.length; i += w) bytes[i]! ^= noise[i]! & 7;
    return bytes;
  };
  async function* v2(): AsyncGenerator<Buffer> {
    yield header2;
    const fd = fs.openSync(file, 'r');
    try {
      for (const t of tensors) {
        if (changed.has(t.name)) {
          yield changedBytes(t);
          continue;
        }
        for (let at = t.begin; at < t.end; at += 1 << 20) {
          const piece = Buffer.alloc(Math.min(1 << 20, t.end - at));
          fs.readSync(fd, piece, 0, piece.length, dataStart + at);
          yield piece;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  log(`real v2 of ${file}: v1`);
  const m1 = await measureStore(fs.createReadStream(file, { highWaterMark: 1 << 20 }));
  log(`real v2 of ${file}: v2 (${changed.size} of ${tensors.length} tensors changed)`);
  const m2 = await measureStore(v2());
  // the ideal: the new header and the changed tensors, each encoded on its own (in pieces of at most the chunker's max)
  let ideal = encodeChunk(header2, { width: 1 }).stored.length;
  let changedTotal = 0;
  for (const t of tensors.filter((x) => changed.has(x.name))) {
    const bytes = changedBytes(t);
    changedTotal += bytes.length;
    const w = DTYPE_WIDTH[t.dtype] ?? 1;
    const width = (t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F32') ? w : 1;
    for (let at = 0; at < bytes.length; at += DEFAULT_CHUNKING.maxSize) ideal += encodeChunk(bytes.subarray(at, at + DEFAULT_CHUNKING.maxSize), { width }).stored.length;
  }
  // raw bytes of v2's chunks that v1 does not have: what a perfect cut would make the changed tensors and the header alone
  const v1Digests = new Set(m1.chunks.map((c) => c.digest));
  const newRaw = [...new Map(m2.chunks.filter((c) => !v1Digests.has(c.digest)).map((c) => [c.digest, c.size])).values()].reduce((n, size) => n + size, 0);
  return {
    tensors: tensors.length,
    changed: changed.size,
    changedBytes: changedTotal,
    size: m2.size,
    headerGrowth: header2.length - dataStart,
    v1Chunks: m1.chunks.length,
    stored: m2.stored,
    newRaw,
    dragged: newRaw - changedTotal - header2.length,
    ideal,
  };
}

try {
  await main();
} finally {
  await pool.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
