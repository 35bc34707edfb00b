// Storage efficiency (issue 6): what Cairn stores per byte of model, next to
// `zstd -3` of the same file, and how much a new version with a few changed
// tensors and a changed header costs. One run prints everything side by side.
//
//   node --import tsx bench/storage-efficiency.ts [--size 1G] [--models /work/shared/models]
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
import { ChunkStore } from '../src/blobs/chunk-store.ts';
import { CodecPool } from '../src/blobs/codec-pool.ts';
import { FsDriver } from '../src/blobs/fs-driver.ts';
import { BlobIndex } from '../src/metadata/blobs.ts';
import { Database } from '../src/metadata/db.ts';
import { findTensorLayout } from '../src/registry/tensor-layout.ts';
import { modelSpec, safetensorsSize, safetensorsStream, type TensorSpec } from '../test/support/tensors.ts';
import { bytesUnder, option, parseSize } from './support.ts';

const SIZE = parseSize(option('size', '1G'));
const MODELS = option('models', '/work/shared/models');
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
  return { size: content.size, stored: storedBytes() - before, secs, cpuSecs: (cpu.user + cpu.system) / 1e6, chunks: content.chunks.length };
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
  console.log(`        (v2 chunks ${m2.chunks}; if every tensor chunk were new it would be ~${(m1.stored / m1.size).toFixed(3)})`);
  console.log(`speed: v1 chunk+hash+compress ${wall.toFixed(0)} MB/s wall with ${os.availableParallelism()} worker threads; ${perCore.toFixed(0)} MB/s per core (bytes / CPU seconds of all threads, generation subtracted); v2 ${(m2.size / 1e6 / m2.secs).toFixed(0)} MB/s wall`);
  verdicts.push(`dedup v2: ${dedup.toFixed(3)} (goal ≤ 0.15) ${dedupMet}`);
  console.log('');
  console.log(`verdict: ${verdicts.every((v) => v.endsWith(' met')) ? 'ALL GOALS MET' : 'SOME GOALS NOT MET'}`);
}

try {
  await main();
} finally {
  await pool.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
