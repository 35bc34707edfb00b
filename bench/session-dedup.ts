// Dedup through `cairn push` (upload sessions) against the same push in one
// request: does splitting a file into 64 MiB requests cost storage?
//
//   node --import tsx bench/session-dedup.ts [--size 1G] [--part-size 64M]
//
// The files are those of bench/storage-efficiency.ts: a generated BF16
// safetensors model (v1), and v2 with every 10th tensor changed and an extra
// metadata entry that shifts every data offset. Both are written to a
// temporary directory, then pushed with the real CLI (bin/cairn.js, a child
// process) to a real server (in this process, fs storage, auth off): once
// with --part-size (one upload session, many PATCHes: what users do) and
// once with a part size larger than the file (one PATCH), each on a fresh
// server. For v2 it prints
//   v1 on disk    chunk-object bytes after v1's push, over v1's size
//   new on disk   chunk-object bytes written by v2's push (includes the
//                 superseded last chunks of earlier requests until gc)
//   new kept      stored bytes of the chunks v2's file uses that v1's does
//                 not (what remains after gc), from the server's database
// both over v2's size, side by side.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/log.ts';
import { startServer, type RunningServer } from '../src/main.ts';
import { modelSpec, safetensorsStream, type TensorSpec } from '../test/support/tensors.ts';
import { bytesUnder, option, parseSize } from './support.ts';

const SIZE = parseSize(option('size', '1G'));
const PART = option('part-size', '64M');
const BIN = path.resolve(import.meta.dirname, '../bin/cairn.js');
const log = (...a: unknown[]) => console.error('…', ...a);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-session-dedup-'));

const chunkBytesOnDisk = (dataDir: string) => bytesUnder(path.join(dataDir, 'blobs', 'chunks'));

async function writeFile(file: string, gen: Iterable<Buffer>) {
  const out = fs.createWriteStream(file);
  for (const b of gen) if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

function push(server: RunningServer, ref: string, file: string, partSize: string): Promise<void> {
  const child = spawn(process.execPath, [BIN, 'push', ref, file, '--part-size', partSize, '--json'], {
    env: { ...process.env, CAIRN_URL: server.url, XDG_STATE_HOME: path.join(work, 'state') },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`cairn push exited ${code}`)))));
}

async function run(label: string, partSize: string, v1File: string, v2File: string) {
  const dataDir = fs.mkdtempSync(path.join(work, 'data-'));
  const server = await startServer({ dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: false, unsafePolicy: 'warn' }, createLogger({ silent: true }));
  try {
    log(`${label}: v1`);
    await push(server, 'm@1', v1File, partSize);
    const afterV1 = chunkBytesOnDisk(dataDir);
    log(`${label}: v2`);
    const t0 = performance.now();
    await push(server, 'm@2', v2File, partSize);
    const secs = (performance.now() - t0) / 1000;
    const onDisk = chunkBytesOnDisk(dataDir) - afterV1;
    const db = server.cairn.db;
    const digestOf = (version: string) =>
      db.first<{ d: string }>(
        `SELECT f.blob_digest AS d FROM version_files f JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id WHERE m.name = 'm' AND v.version = ?`,
        [version],
      )!.d;
    const [d1, d2] = [digestOf('1'), digestOf('2')];
    const kept = db.first<{ n: number }>(
      `SELECT coalesce(sum(c.stored_size), 0) AS n FROM chunks c
        WHERE c.digest IN (SELECT chunk_digest FROM blob_chunks WHERE blob_digest = ?)
          AND c.digest NOT IN (SELECT chunk_digest FROM blob_chunks WHERE blob_digest = ?)`,
      [d2, d1],
    )!.n;
    const chunkCount = db.first<{ n: number }>('SELECT count(*) AS n FROM blob_chunks WHERE blob_digest = ?', [d2])!.n;
    return { label, v1Stored: afterV1 / fs.statSync(v1File).size, onDisk, kept, secs, chunks: chunkCount };
  } finally {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  const v1: TensorSpec[] = modelSpec(SIZE, 'BF16');
  const meta1 = { format: 'pt' };
  const v2 = v1.map((t, i) => (i % 10 === 3 ? { ...t, seed: `${t.seed}-v2`, scale: t.scale * 1.01 } : t));
  const meta2 = { ...meta1, 'cairn.bench': 'v2: fine-tuned, with an extra metadata entry that shifts all data offsets' };
  const v1File = path.join(work, 'v1.safetensors');
  const v2File = path.join(work, 'v2.safetensors');
  log(`writing v1 and v2 (${(SIZE / 1024 ** 2).toFixed(0)} MiB each) to ${work}`);
  await writeFile(v1File, safetensorsStream(v1, meta1));
  await writeFile(v2File, safetensorsStream(v2, meta2));
  const size2 = fs.statSync(v2File).size;

  const single = await run('one request', String(2 * size2), v1File, v2File);
  const parts = await run(`--part-size ${PART}`, PART, v1File, v2File);

  console.log(`v2: ${size2.toLocaleString('en')} bytes, ${v2.filter((t, i) => t !== v1[i]).length} of ${v2.length} tensors changed, header changed`);
  console.log(`${'pushes'.padEnd(22)}  ${'v1 on disk'.padStart(10)}  ${'new on disk'.padStart(11)}  ${'new kept'.padStart(8)}  ${'chunks'.padStart(6)}  ${'secs'.padStart(5)}`);
  for (const r of [single, parts]) {
    console.log(`${r.label.padEnd(22)}  ${r.v1Stored.toFixed(3).padStart(10)}  ${(r.onDisk / size2).toFixed(3).padStart(11)}  ${(r.kept / size2).toFixed(3).padStart(8)}  ${String(r.chunks).padStart(6)}  ${r.secs.toFixed(1).padStart(5)}`);
  }
  console.log(`ratio (${PART} parts / one request): new kept ${(parts.kept / Math.max(single.kept, 1)).toFixed(2)}x, new on disk ${(parts.onDisk / Math.max(single.onDisk, 1)).toFixed(2)}x`);
}

try {
  await main();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
