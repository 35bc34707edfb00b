// Push/pull throughput and server memory, Cairn vs. the storage underneath it.
//
//   node --import tsx bench/push-pull.ts [--sizes 512M,2G] [--data random,bf16] [--storage s3|fs]
//                                        [--link 1gbit[:1ms]] [--hop-baseline] [--json]
//
// Starts the real server (`node bin/cairn.js serve`) as a child process on a
// temporary data dir and a free port, then for each size:
//   cairn push      one streamed multipart/form-data POST /v1/models/bench/versions
//   cairn-direct push  (s3) `cairn push` as a user runs it (node bin/cairn.js, a child
//                   process): the CLI cuts the file and PUTs the chunks straight
//                   into S3's staging area; the server reads each back and checks
//                   it. Same generator and size, its own seed (the same bytes would
//                   deduplicate against `cairn push`'s); the file is written to a
//                   temp dir first, outside the clock. Then a second push of a v2
//                   whose every 10th chunk changed: its bytes_sent vs the file size
//   direct write    the same bytes straight to the backend: an S3 multipart upload
//                   (lib-storage, 16 MiB parts, 4 in flight), or a plain fsynced file
//   cairn pull      GET …/files/weights.bin, hashed as it arrives (sha256 checked)
//   cairn-direct pull  (s3) `cairn pull` as a user runs it (node bin/cairn.js, a child
//                   process): chunk map from the server, chunks straight from S3,
//                   decoded and verified by the CLI, the file written to a temp dir
//   direct read     GetObject (or a file read), hashed the same way
//   cairn pull ×N   (--pulls N) N of the same GET at once: the server's memory
//                   with concurrent downloads (their read-ahead shares one budget)
// The pairs alternate their order from one size to the next so that warm-up
// and background noise hit both sides. The file's bytes (--data) are either an
// AES-256-CTR keystream of a seed (random: incompressible), or a BF16
// safetensors file from test/support/tensors.ts (bf16: what users push, and
// what Cairn compresses). Both are produced ~1 MiB at a time, never stored by
// the bench, and reproducible (the digest is computed by a first pass).
// While a phase runs, the server's RSS is sampled every 50 ms from
// /proc/<pid>/status (and its VmHWM is reset and read back where the kernel
// allows), and the CPU time of its threads, of this process and of the whole
// host is read before and after: on a small machine that shares its CPUs with
// the S3 server, "host CPU" near 100% × CPUs means the numbers are CPU-bound.
// --object-baseline adds two direct S3 phases with Cairn's own access pattern
// (objects of the sizes the server stored, as many in flight as ChunkStore
// uses), which separates "S3 is slow for ~2 MiB objects" from "Cairn is slow".
// --hop-baseline adds two phases through bench/hop-server.ts, a pass-through
// server that only streams bytes between the client and one S3 object: the
// ceiling for any server in the path on this machine.
// --link puts the S3 server behind an emulated network link (bench/link-proxy.ts,
// run as a child): the Cairn server, the hop server and the direct client all
// reach S3 through it. Without it everything shares one box's loopback and
// CPUs, and every phase is CPU-bound; in production S3 is on other machines.
//
// S3 variables come from the environment (`source /tmp/cairn-s3/env`, written
// by `scripts/s3-server.sh start`); the bucket is `cairn-bench` unless
// CAIRN_BENCH_BUCKET says otherwise, and every object of a run lives under its
// own prefix, which is deleted at the end (and after each size).
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { modelSpec, safetensorsSize, safetensorsStream, type TensorSpec } from '../test/support/tensors.ts';
import { describeLink, parseLink, type LinkProxyMessage, type LinkSpec } from './link-proxy.ts';
import { parseSize } from './support.ts';
import { chunkKey } from '../src/blobs/layout.ts';

const MiB = 1024 * 1024;
const GEN_BUFFER = MiB;
const MODEL = 'bench';
const RSS_LIMIT_MIB = 300;
/** v2 of the dedup figure: every V2_EVERY-th chunk of v1 gets V2_CHANGED_BYTES changed in its middle (cut points stay) */
const V2_EVERY = 10;
const V2_CHANGED_BYTES = 64 * 1024;
const SAMPLE_MS = 50;
/** Before each phase: the server counts as idle under this CPU (% of one core) over IDLE_SAMPLE_MS; waited for at most IDLE_WAIT_MS. */
const IDLE_CPU_PCT = 5;
const IDLE_SAMPLE_MS = 500;
const IDLE_WAIT_MS = 180_000;
const CLK_TCK = 100; // Linux USER_HZ; /proc times are in these ticks
// In flight for --object-baseline's direct phases (ChunkStore writes 6 chunks at once and reads ahead by bytes, up to 32 MiB).
const OBJECT_PUT_CONCURRENCY = 3;
const OBJECT_GET_CONCURRENCY = 3;
const HOST_CPUS = (() => {
  try {
    return fs.readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length || os.availableParallelism();
  } catch {
    return os.availableParallelism();
  }
})();
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---- options -----------------------------------------------------------------

type Storage = 's3' | 'fs';
type DataKind = 'random' | 'bf16';
const DATA_KINDS: readonly DataKind[] = ['random', 'bf16'];

interface Options {
  sizes: number[];
  data: DataKind[];
  storage: Storage;
  json: boolean;
  seed: string;
  partSize: number;
  queueSize: number;
  cpuProf: string | undefined;
  objectBaseline: boolean;
  hopBaseline: boolean;
  pulls: number;
  link: LinkSpec | undefined;
  serverLog: string | undefined;
}

const USAGE = `usage: node --import tsx bench/push-pull.ts [options]

  --sizes LIST      comma-separated sizes, K/M/G = KiB/MiB/GiB (default 512M,2G)
  --data LIST       random (default: incompressible AES keystream) and/or bf16 (a BF16
                    safetensors file, weights.safetensors); random,bf16 runs both, one after the other
  --storage KIND    s3 (default) or fs: the server's backend, and what "direct" means
  --json            print the results as JSON on stdout (progress still goes to stderr)
  --seed TEXT       seed of the generated bytes (default cairn-bench)
  --part-size SIZE  direct S3 multipart part size (default 16M)
  --queue-size N    direct S3 parts in flight (default 4)
  --cpu-prof DIR    run the server with --cpu-prof, profiles written to DIR
  --server-log FILE append everything the server prints to FILE
  --object-baseline (s3) two more direct phases with Cairn's access pattern: PUT objects
                    of the sizes the server stored, ${OBJECT_PUT_CONCURRENCY} in flight, and GET the server's chunk
                    objects, ${OBJECT_GET_CONCURRENCY} in flight — what S3 gives for that object size
  --hop-baseline    (s3) two more phases through bench/hop-server.ts, a pass-through Node server
                    that streams bodies into/out of one S3 object: the cost of any server in the path
  --pulls N         one more phase: N cairn pulls of the file at once (MB/s counts all N)
  --link RATE[:RTT] (s3) reach S3 through an emulated network link (bench/link-proxy.ts): RATE each
                    way shared by all connections, e.g. 1gbit, 2.5gbit:1ms, 300MB/s
`;


function formatSize(bytes: number): string {
  if (bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${bytes} B`;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '512M,2G' },
      data: { type: 'string', default: 'random' },
      storage: { type: 'string', default: 's3' },
      json: { type: 'boolean', default: false },
      seed: { type: 'string', default: 'cairn-bench' },
      'part-size': { type: 'string', default: '16M' },
      'queue-size': { type: 'string', default: '4' },
      'cpu-prof': { type: 'string' },
      'object-baseline': { type: 'boolean', default: false },
      'hop-baseline': { type: 'boolean', default: false },
      pulls: { type: 'string', default: '1' },
      link: { type: 'string' },
      'server-log': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const storage = values.storage;
  if (storage !== 's3' && storage !== 'fs') throw new Error(`--storage must be s3 or fs, got ${JSON.stringify(storage)}`);
  const sizes = values.sizes.split(',').filter((s) => s.trim() !== '').map(parseSize);
  if (sizes.length === 0) throw new Error('--sizes is empty');
  const queueSize = Number(values['queue-size']);
  if (!Number.isInteger(queueSize) || queueSize < 1) throw new Error('--queue-size must be a positive integer');
  const partSize = parseSize(values['part-size']);
  if (partSize < 5 * MiB) throw new Error('--part-size must be at least 5M (the S3 minimum)');
  const data = values.data.split(',').map((d) => d.trim()).filter((d) => d !== '');
  for (const d of data) if (!DATA_KINDS.includes(d as DataKind)) throw new Error(`--data: ${JSON.stringify(d)} is not one of ${DATA_KINDS.join(', ')}`);
  if (data.length === 0) throw new Error('--data is empty');
  const link = values.link === undefined ? undefined : parseLink(values.link);
  const pulls = Number(values.pulls);
  if (!Number.isInteger(pulls) || pulls < 1) throw new Error('--pulls must be a positive integer');
  if (storage !== 's3' && (link || values['hop-baseline'])) throw new Error('--link and --hop-baseline need --storage s3');
  return {
    sizes,
    data: [...new Set(data as DataKind[])],
    storage,
    json: values.json,
    seed: values.seed,
    partSize,
    queueSize,
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined,
    objectBaseline: values['object-baseline'],
    hopBaseline: values['hop-baseline'],
    pulls,
    link,
    serverLog: values['server-log'] ? path.resolve(values['server-log']) : undefined,
  };
}

// ---- the bytes -----------------------------------------------------------------

/**
 * `size` bytes of AES-256-CTR keystream keyed by `seed`, in fresh 1 MiB
 * buffers (consumers may keep them). Same seed, same bytes; ~2 GB/s.
 */
function* generateBytes(seed: string, size: number, bufferSize = GEN_BUFFER): Generator<Buffer> {
  const key = createHash('sha256').update(`cairn-bench-bytes:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(bufferSize);
  for (let left = size; left > 0; left -= bufferSize) {
    yield cipher.update(left >= bufferSize ? zeros : zeros.subarray(0, left));
  }
}

/** The file one size×data combination pushes and pulls: the same bytes on every path. */
interface Payload {
  data: DataKind;
  /** the size asked for (--sizes); rows and the verdict are grouped by it */
  nominalSize: number;
  /** the file's exact size: a safetensors file is as close to nominalSize as its tensor shapes allow */
  size: number;
  seed: string;
  /** the file part's name, and the path pulled back */
  fileName: string;
  /** a fresh stream of the file's bytes, in fresh buffers of ≤ 1 MiB */
  bytes(): Iterable<Buffer>;
}

function randomPayload(seed: string, size: number): Payload {
  return { data: 'random', nominalSize: size, size, seed, fileName: 'weights.bin', bytes: () => generateBytes(seed, size) };
}

/**
 * A transformer-like BF16 safetensors file of about `size` bytes (16 MiB
 * matrices, small norms, per-tensor scales; test/support/tensors.ts). The
 * seed goes into the tensors' values and into the header's metadata, so no
 * two combinations share a chunk, not even the header's.
 */
function bf16Payload(seed: string, size: number): Payload {
  const metadata = { format: 'pt', 'cairn.bench.seed': seed };
  // modelSpec sizes the tensor data; the header comes on top: shrink the data by the excess, a few times
  // (the header's length changes with the number of tensors), and keep the closest.
  let spec: TensorSpec[] = modelSpec(size, 'BF16', { seed });
  let best = { spec, size: safetensorsSize(spec, metadata) };
  for (let i = 0, dataBytes = size; i < 4 && best.size !== size; i++) {
    const excess = safetensorsSize(spec, metadata) - size;
    if (dataBytes - excess <= 0) break;
    dataBytes -= excess;
    spec = modelSpec(dataBytes, 'BF16', { seed });
    const candidate = { spec, size: safetensorsSize(spec, metadata) };
    if (Math.abs(candidate.size - size) < Math.abs(best.size - size)) best = candidate;
  }
  const chosen = best.spec;
  return {
    data: 'bf16',
    nominalSize: size,
    size: best.size,
    seed,
    fileName: 'weights.safetensors',
    bytes: () => safetensorsStream(chosen, metadata),
  };
}

function payloadFor(data: DataKind, seed: string, size: number): Payload {
  return data === 'bf16' ? bf16Payload(seed, size) : randomPayload(seed, size);
}

/** The sha256 of the payload, and how fast the bench generates (and hashes) it: the phases pay for generating too. */
function digestOf(payload: Payload): { digest: string; size: number; mbPerSec: number } {
  const t0 = process.hrtime.bigint();
  const hash = createHash('sha256');
  let size = 0;
  for (const buf of payload.bytes()) {
    hash.update(buf);
    size += buf.length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { digest: `sha256:${hash.digest('hex')}`, size, mbPerSec: size / 1e6 / seconds };
}

// ---- measuring the server --------------------------------------------------------

function readRssKiB(pid: number): { rss: number; anon: number; hwm: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN);
    const rss = field('VmRSS');
    return Number.isFinite(rss) ? { rss, anon: field('RssAnon') || 0, hwm: field('VmHWM') || 0 } : undefined;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole host, from /proc/stat (all CPUs). */
function readHostTicks(): { busy: number; total: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** utime+stime in ticks, of the process and of each thread (tid → ticks). */
function readCpuTicks(pid: number): { total: number; threads: Map<number, number> } {
  const ticksOf = (stat: string) => {
    // the comm field may contain spaces: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  };
  const threads = new Map<number, number>();
  let total = 0;
  try {
    total = ticksOf(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        threads.set(Number(tid), ticksOf(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
      } catch {
        // thread ended meanwhile
      }
    }
  } catch {
    // process gone
  }
  return { total, threads };
}

/** CPU ticks of this process's children that have been waited for (cutime + cstime): a CLI child once it has exited. */
function readChildTicks(): number {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[13]) + Number(fields[14]); // cutime, cstime (fields 16, 17)
  } catch {
    return 0;
  }
}

interface PhaseStats {
  /** RSS just before the phase, MiB */
  baselineMiB: number;
  /** highest RSS sampled every 50 ms, MiB */
  sampledPeakMiB: number;
  /** kernel high-water mark over the phase (VmHWM after resetting it), MiB; undefined if it could not be reset */
  hwmMiB: number | undefined;
  /** max of the two: what the table shows */
  peakMiB: number;
  /** RSS right after the phase, MiB */
  endMiB: number;
  /** anonymous part (heap, buffers) of the highest sampled RSS, MiB; the rest is mapped files (node binary, libraries) */
  sampledPeakAnonMiB: number;
  samples: number;
  /** server CPU over the phase, % of one core: whole process, main thread, the busiest other thread */
  serverCpuPct: number;
  mainThreadCpuPct: number;
  busiestOtherThreadCpuPct: number;
  /** this bench process's CPU and that of the children it waited for (the CLI of cairn-direct pull), % of one core */
  benchCpuPct: number;
  /** the whole host's CPU over the phase (server, bench, S3 server, anything else), % of one core, out of hostCpus × 100 */
  hostCpuPct: number;
}

/** Watches the server process for the duration of one phase. */
class PhaseMonitor {
  private timer: NodeJS.Timeout | undefined;
  private peak = 0;
  private peakAnon = 0;
  private host0 = readHostTicks();
  private samples = 0;
  private baseline = 0;
  private hwmReset = false;
  private cpu0 = readCpuTicks(0);
  private bench0 = process.cpuUsage();
  private children0 = readChildTicks();
  private t0 = 0n;

  constructor(private readonly pid: number) {}

  start(): void {
    const r = readRssKiB(this.pid);
    this.baseline = r?.rss ?? 0;
    this.peak = this.baseline;
    this.peakAnon = r?.anon ?? 0;
    // Writing 5 to clear_refs resets VmHWM (Linux >= 4.0): an exact peak, not a sampled one.
    try {
      fs.writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      this.hwmReset = true;
    } catch {
      this.hwmReset = false;
    }
    this.cpu0 = readCpuTicks(this.pid);
    this.bench0 = process.cpuUsage();
    this.children0 = readChildTicks();
    this.host0 = readHostTicks();
    this.t0 = process.hrtime.bigint();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  private sample(): number {
    const r = readRssKiB(this.pid);
    if (r) {
      this.samples++;
      if (r.rss > this.peak) {
        this.peak = r.rss;
        this.peakAnon = r.anon;
      }
    }
    return r?.rss ?? 0;
  }

  stop(): PhaseStats {
    clearInterval(this.timer);
    const end = this.sample();
    const wall = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const cpu1 = readCpuTicks(this.pid);
    const bench = process.cpuUsage(this.bench0);
    const children = readChildTicks() - this.children0;
    const host1 = readHostTicks();
    const hostCpuPct = host1.total > this.host0.total
      ? Math.round((100 * HOST_CPUS * (host1.busy - this.host0.busy)) / (host1.total - this.host0.total))
      : 0;
    const pct = (ticks: number) => (wall > 0 ? (100 * ticks) / CLK_TCK / wall : 0);
    let busiest = 0;
    for (const [tid, ticks] of cpu1.threads) {
      if (tid === this.pid) continue;
      busiest = Math.max(busiest, ticks - (this.cpu0.threads.get(tid) ?? 0));
    }
    const main = (cpu1.threads.get(this.pid) ?? 0) - (this.cpu0.threads.get(this.pid) ?? 0);
    const hwm = this.hwmReset ? readRssKiB(this.pid)?.hwm : undefined;
    const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
    const peakKiB = Math.max(this.peak, hwm ?? 0);
    return {
      baselineMiB: mib(this.baseline),
      sampledPeakMiB: mib(this.peak),
      hwmMiB: hwm === undefined ? undefined : mib(hwm),
      peakMiB: mib(peakKiB),
      endMiB: mib(end),
      sampledPeakAnonMiB: mib(this.peakAnon),
      samples: this.samples,
      serverCpuPct: Math.round(pct(cpu1.total - this.cpu0.total)),
      mainThreadCpuPct: Math.round(pct(main)),
      busiestOtherThreadCpuPct: Math.round(pct(busiest)),
      benchCpuPct: Math.round((100 * (bench.user + bench.system)) / 1e6 / wall + pct(children)),
      hostCpuPct,
    };
  }
}

// ---- the server ---------------------------------------------------------------------

interface Server {
  child: ChildProcess;
  pid: number;
  url: string;
  /** last lines of its output, for error reports */
  logTail: string[];
  /** lines logged at level error or warn during the run (besides the start-up warning) */
  problems: string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Builds dist/ as `npm start` does (its prestart), so bin/cairn.js runs the compiled server. */
function buildServer(): void {
  const built = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs')], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) throw new Error(`scripts/build.mjs failed (exit ${built.status})`);
}

/**
 * The environment assignments and node flags `npm start` gives the server
 * (package.json's start script: `[VAR=value ...] node [--flag ...] bin/cairn.js serve`),
 * so the bench runs it as deployed.
 */
function startCommand(): { env: Record<string, string>; flags: string[] } {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const start = pkg.scripts?.start ?? '';
  const m = /^((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)node((?:\s+--\S+)*)\s+bin\/cairn\.js\s+serve$/.exec(start);
  if (!m) throw new Error(`package.json's start script is not "[VAR=value ...] node [--flags] bin/cairn.js serve": ${JSON.stringify(start)}`);
  const env = Object.fromEntries(
    m[1]!
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
  );
  return { env, flags: m[2]!.trim().split(/\s+/).filter(Boolean) };
}

async function startServer(env: NodeJS.ProcessEnv, cpuProf: string | undefined, serverLog: string | undefined): Promise<Server> {
  const port = await freePort();
  const start = startCommand();
  const nodeArgs = [...start.flags, ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : [])];
  const child = spawn(process.execPath, [...nodeArgs, path.join(REPO_ROOT, 'bin/cairn.js'), 'serve'], {
    cwd: REPO_ROOT,
    env: { ...env, ...start.env, CAIRN_HOST: '127.0.0.1', CAIRN_PORT: String(port), CAIRN_AUTH: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logTail: string[] = [];
  const problems: string[] = [];
  const logFile = serverLog ? fs.createWriteStream(serverLog, { flags: 'a' }) : undefined;
  logFile?.write(`--- ${new Date().toISOString()} cairn serve, pid ${child.pid}\n`);
  const collect = (stream: NodeJS.ReadableStream) => {
    let rest = '';
    let inSdkNotice = false;
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      logFile?.write(text);
      const lines = (rest + text).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        logTail.push(line);
        if (logTail.length > 200) logTail.shift();
        // The AWS SDK's multi-line notice about Node 20 support is not a server problem.
        if (line.includes('NodeVersionSupportWarning')) inSdkNotice = true;
        if (inSdkNotice) {
          if (line.includes('--trace-warnings')) inSdkNotice = false;
          continue;
        }
        if (/"level":"(error|warn)"/.test(line) && !line.includes('CAIRN_AUTH=off')) problems.push(line);
        else if (!line.startsWith('{') && line.trim() !== '') problems.push(line); // stack traces, node warnings
      }
    });
  };
  collect(child.stdout!);
  collect(child.stderr!);
  // 'close': exited and its output is drained (every last log line is in).
  const exited = once(child, 'close').then(() => new Promise<void>((resolve) => (logFile ? logFile.end(resolve) : resolve())));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited during start (${child.exitCode ?? child.signalCode}):\n${logTail.join('\n')}`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not answer /healthz within 60 s:\n${logTail.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let stopped = false;
  return {
    child,
    pid: child.pid!,
    url,
    logTail,
    problems,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        log('the server did not stop within 15 s of SIGTERM: SIGKILL');
        child.kill('SIGKILL');
      }, 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A helper process of the bench (the link proxy, the hop server): a script under bench/, run with tsx. */
interface Helper {
  name: string;
  child: ChildProcess;
  pid: number;
  /** last lines of its stderr, for error reports */
  logTail: string[];
  /** sends `message` over IPC and resolves with the next message of type `reply` */
  ask<T extends { type: string }>(message: { type: string }, reply: T['type']): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx bench/<script> …args` with an IPC channel and
 * waits for its {type: 'listening', port} message. The helpers ignore SIGINT
 * while they have a parent (so a Ctrl-C does not take the link away before the
 * bench has cleaned up) and exit when we stop them or when the channel closes.
 */
async function startHelper(name: string, script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ helper: Helper; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench', script), ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const logTail: string[] = [];
  let inSdkNotice = false;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    for (const line of text.split('\n')) {
      // The AWS SDK's multi-line notice about Node 20 support is noise here too.
      if (line.includes('NodeVersionSupportWarning')) inSdkNotice = true;
      if (inSdkNotice) {
        if (line.includes('--trace-warnings')) inSdkNotice = false;
        continue;
      }
      if (line.trim() !== '') logTail.push(line);
    }
    logTail.splice(0, Math.max(0, logTail.length - 100));
  });
  const exited = once(child, 'close');
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${logTail.join('\n')}`)), 30_000);
    child.on('message', (msg: { type?: string; port?: number }) => {
      if (msg?.type === 'listening' && typeof msg.port === 'number') {
        clearTimeout(timer);
        resolve(msg.port);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited during start (${code ?? signal}):\n${logTail.join('\n')}`));
    });
  });
  let stopped = false;
  const helper: Helper = {
    name,
    child,
    pid: child.pid!,
    logTail,
    ask<T extends { type: string }>(message: { type: string }, reply: T['type']) {
      return new Promise<T>((resolve, reject) => {
        const onMessage = (msg: T) => {
          if (msg?.type !== reply) return;
          child.off('message', onMessage);
          resolve(msg);
        };
        child.on('message', onMessage);
        child.send(message, (err) => {
          if (!err) return;
          child.off('message', onMessage);
          reject(err);
        });
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return { helper, port };
}

// ---- HTTP client side ------------------------------------------------------------

function assertAlive(server: Server): void {
  if (server.child.exitCode !== null || server.child.signalCode !== null) {
    throw new Error(`the server died (${server.child.exitCode ?? server.child.signalCode}):\n${server.logTail.slice(-40).join('\n')}`);
  }
}

/**
 * POSTs `body` streamed (with Content-Length), and returns the response's
 * status and text. `what` names the request in errors.
 */
async function postStreamed(url: string, headers: http.OutgoingHttpHeaders, body: Iterable<Buffer>, what: string): Promise<{ status: number; text: string }> {
  const req = http.request(url, { method: 'POST', agent: false, headers });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  // The server may answer (an error) before it has read everything: look at the response first.
  const sent = pipeline(Readable.from(body, { objectMode: false, highWaterMark: 1 }), req).then(
    () => undefined,
    (err: Error) => err,
  );
  const res = await response;
  let text = '';
  res.setEncoding('utf8');
  for await (const piece of res) text += piece;
  const status = res.statusCode ?? 0;
  if (status !== 201) throw new Error(`${what}: HTTP ${status}: ${text.slice(0, 2000)}`);
  const sendError = await sent;
  if (sendError) throw new Error(`${what}: request body failed after a 201: ${sendError.message}`);
  return { status, text };
}

/** One streamed multipart/form-data publish: `version` field first, then the file part. */
async function pushMultipart(base: string, version: string, payload: Payload): Promise<{ digest: string; size: number }> {
  const boundary = `cairn-bench-${randomBytes(16).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n${version}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${payload.fileName}"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  function* body(): Generator<Buffer> {
    yield head;
    yield* payload.bytes();
    yield tail;
  }
  const { text } = await postStreamed(
    `${base}/v1/models/${MODEL}/versions`,
    {
      'Content-Type': `multipart/form-data; boundary=${boundary}`,
      'Content-Length': String(head.length + payload.size + tail.length),
      Accept: 'application/json',
    },
    body(),
    'push',
  );
  const doc = JSON.parse(text) as { files?: Array<{ path: string; digest: string; size: number }> };
  const file = doc.files?.find((f) => f.path === payload.fileName);
  if (!file) throw new Error(`push: version document has no ${payload.fileName}: ${text.slice(0, 2000)}`);
  return { digest: file.digest, size: file.size };
}

/** The hop server's upload: the raw bytes as the body of one streamed POST. */
async function hopPush(hopUrl: string, payload: Payload): Promise<number> {
  const { text } = await postStreamed(
    `${hopUrl}/objects/${payload.fileName}`,
    { 'Content-Type': 'application/octet-stream', 'Content-Length': String(payload.size) },
    payload.bytes(),
    'hop push',
  );
  return (JSON.parse(text) as { size: number }).size;
}

async function hashStream(stream: AsyncIterable<Uint8Array>): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const piece of stream) {
    hash.update(piece);
    size += piece.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Runs `node bin/cairn.js <args> --json` against `base` as a user would; resolves with its JSON output and what it said on stderr. */
async function runCli(base: string, args: string[], what: string): Promise<{ json: unknown; stderr: string }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/cairn.js'), ...args, '--json'], {
    env: { ...process.env, CAIRN_URL: base },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${what} exited ${code}: ${stderr}${stdout}`.slice(0, 4000));
  return { json: JSON.parse(stdout), stderr };
}

/**
 * `cairn pull` as a user runs it, into a fresh directory under `workDir`: the
 * CLI fetches the chunks straight from S3 (it must: the phase fails if any
 * file came through the server). The file is hashed afterwards, outside the
 * phase's clock, and removed.
 */
async function cliPull(base: string, version: string, fileName: string, workDir: string): Promise<() => Promise<{ digest: string; size: number }>> {
  const out = await fsp.mkdtemp(path.join(workDir, 'pull-'));
  const result = (await runCli(base, ['pull', `${MODEL}@${version}`, '-o', out], 'cairn pull')).json as { files: Array<{ via?: string }> };
  if (!result.files.every((f) => f.via === 'storage')) throw new Error(`cairn pull did not fetch straight from storage: ${JSON.stringify(result).slice(0, 2000)}`);
  return async () => {
    const file = path.join(out, fileName);
    try {
      return await hashStream(fs.createReadStream(file, { highWaterMark: MiB }));
    } finally {
      await fsp.rm(out, { recursive: true, force: true });
    }
  };
}

/** Writes the payload to `file` (outside any phase's clock: `cairn push` reads a file), hashing it on the way. */
async function writePayload(payload: Payload, file: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const handle = await fsp.open(file, 'w');
  try {
    for (const buf of payload.bytes()) {
      hash.update(buf);
      size += buf.length;
      await handle.write(buf);
    }
  } finally {
    await handle.close();
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * `cairn push` as a user runs it (a child process), on S3: it must go straight
 * to storage (`files[].direct`) and upload, and the server must record `expected`.
 * Resolves with the stored bytes it sent (`files[].bytes_sent`).
 */
async function cliPush(base: string, version: string, file: string, expected: { digest: string; size: number }): Promise<number> {
  const { json, stderr } = await runCli(base, ['push', `${MODEL}@${version}`, file], 'cairn push');
  const result = json as { files: Array<{ digest: string; size: number; status: string; direct: boolean; bytes_sent: number }> };
  const got = result.files[0];
  if (result.files.length !== 1 || !got) throw new Error(`cairn push: expected one file: ${JSON.stringify(result).slice(0, 2000)}`);
  if (!got.direct || got.status !== 'uploaded') throw new Error(`cairn push did not upload straight to storage: ${JSON.stringify(got)}; it said: ${stderr.slice(-2000)}`);
  if (got.digest !== expected.digest || got.size !== expected.size) throw new Error(`cairn push: recorded ${got.digest} (${got.size} B), expected ${expected.digest} (${expected.size} B)`);
  return got.bytes_sent;
}

interface ChunkMapDoc {
  chunks: Array<{ offset: number; size: number; digest: string }>;
}

/** The server's chunk map of a version's file (GET …/files/<file>/chunks, S3 only). */
async function chunkMapOf(base: string, version: string, fileName: string): Promise<ChunkMapDoc> {
  const res = await fetch(`${base}/v1/models/${MODEL}/versions/${encodeURIComponent(version)}/files/${fileName}/chunks`);
  if (!res.ok) throw new Error(`chunk map of ${version}: HTTP ${res.status}: ${(await res.text()).slice(0, 2000)}`);
  return (await res.json()) as ChunkMapDoc;
}

/** The keys (under the run's prefix) of a version's chunk objects. */
async function chunkKeysOf(base: string, version: string, fileName: string): Promise<Set<string>> {
  const map = await chunkMapOf(base, version, fileName);
  return new Set(map.chunks.map((c) => chunkKey(c.digest)));
}

/**
 * Turns the local copy of `version`'s file into a v2 that shares all but
 * every V2_EVERY-th chunk with it: V2_CHANGED_BYTES in the middle of each of
 * those chunks are inverted, well inside the chunk, so the chunker's cut
 * points stay (barring a new cut point inside the changed bytes, which the
 * bytes sent would show). Chunks come from the server's chunk map of the
 * version; the first chunk (a safetensors header) is left alone.
 */
async function makeV2(base: string, version: string, fileName: string, file: string): Promise<{ digest: string; size: number; chunks: number; changedChunks: number; changedChunkBytes: number }> {
  const map = await chunkMapOf(base, version, fileName);
  const handle = await fsp.open(file, 'r+');
  let changedChunks = 0;
  let changedChunkBytes = 0;
  try {
    for (const [i, chunk] of map.chunks.entries()) {
      if (i % V2_EVERY !== V2_EVERY / 2) continue;
      const length = Math.min(V2_CHANGED_BYTES, Math.floor(chunk.size / 2));
      const at = chunk.offset + Math.floor((chunk.size - length) / 2);
      const bytes = Buffer.alloc(length);
      await handle.read(bytes, 0, length, at);
      for (let j = 0; j < length; j++) bytes[j] = bytes[j]! ^ 0xff;
      await handle.write(bytes, 0, length, at);
      changedChunks++;
      changedChunkBytes += chunk.size;
    }
  } finally {
    await handle.close();
  }
  const got = await hashStream(fs.createReadStream(file, { highWaterMark: MiB }));
  return { ...got, chunks: map.chunks.length, changedChunks, changedChunkBytes };
}

function pullFile(base: string, version: string, fileName: string): Promise<{ digest: string; size: number }> {
  return getHashed(`${base}/v1/models/${MODEL}/versions/${encodeURIComponent(version)}/files/${fileName}`, 'pull');
}

/** GETs `url`, hashing the body as it arrives; checks its length against Content-Length. */
async function getHashed(url: string, what: string): Promise<{ digest: string; size: number }> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(url, { agent: false }, resolve).once('error', reject);
  });
  if (res.statusCode !== 200) {
    let text = '';
    for await (const piece of res) text += String(piece);
    throw new Error(`${what}: HTTP ${res.statusCode}: ${text.slice(0, 2000)}`);
  }
  const declared = Number(res.headers['content-length']);
  const t0 = Date.now();
  let received = 0;
  const counted = async function* () {
    for await (const piece of res as AsyncIterable<Buffer>) {
      received += piece.length;
      yield piece;
    }
  };
  let got: { digest: string; size: number };
  try {
    got = await hashStream(counted());
  } catch (err) {
    throw new Error(`${what}: response cut after ${received} of ${declared} bytes, ${((Date.now() - t0) / 1000).toFixed(1)} s: ${(err as Error).message}`);
  }
  if (got.size !== declared) throw new Error(`${what}: got ${got.size} bytes, Content-Length said ${declared}`);
  return got;
}

// ---- the direct side ---------------------------------------------------------------

interface Direct {
  label: { write: string; read: string };
  write(payload: Payload): Promise<void>;
  /** reads back what the last write() wrote */
  read(): Promise<{ digest: string; size: number }>;
  /** removes what write() created */
  clear(): Promise<void>;
}

function s3Env(): { endpoint: string | undefined; region: string } {
  return {
    endpoint: process.env.CAIRN_S3_ENDPOINT || undefined,
    region: process.env.CAIRN_S3_REGION || process.env.AWS_REGION || 'us-east-1',
  };
}

/** An S3 client for `endpoint` (the S3 server itself, or the link proxy in front of it). */
function benchS3Client(endpoint: string | undefined): S3Client {
  const { region } = s3Env();
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * The direct S3 path: `client` measures (it goes through the link when there
 * is one), `admin` deletes (direct, so cleanup works whatever the link does).
 */
function directS3(client: S3Client, admin: S3Client, bucket: string, keyPrefix: string, options: Options): Direct {
  let key = `${keyPrefix}weights.bin`;
  return {
    label: { write: 's3 upload', read: 's3 get' },
    async write(payload) {
      key = `${keyPrefix}${payload.fileName}`;
      const size = payload.size;
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: key, Body: Readable.from(payload.bytes(), { objectMode: false, highWaterMark: 1 }) },
        partSize: options.partSize,
        queueSize: options.queueSize,
        leavePartsOnError: false,
      });
      await upload.done();
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      if (head.ContentLength !== size) throw new Error(`direct upload: stored ${head.ContentLength} bytes, not ${size}`);
    },
    async read() {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return hashStream(out.Body as Readable);
    },
    async clear() {
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

function directFs(file: string): Direct {
  return {
    label: { write: 'fs write', read: 'fs read' },
    async write(payload) {
      const handle = await fsp.open(file, 'w');
      try {
        for (const buf of payload.bytes()) await handle.write(buf);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    async read() {
      return hashStream(fs.createReadStream(file, { highWaterMark: MiB }));
    },
    async clear() {
      await fsp.rm(file, { force: true });
    },
  };
}

/**
 * Cairn's write pattern without Cairn: the same bytes cut into objects of the
 * given sizes, PUT with a window of `concurrency`, drained in order.
 */
async function putObjects(client: S3Client, bucket: string, prefix: string, seed: string, sizes: number[], concurrency: number): Promise<void> {
  const total = sizes.reduce((a, b) => a + b, 0);
  const source = generateBytes(seed, total);
  let carry: Buffer = Buffer.alloc(0);
  const take = (n: number): Buffer => {
    while (carry.length < n) {
      const next = source.next();
      if (next.done) throw new Error('putObjects: generator ended early');
      carry = carry.length === 0 ? next.value : Buffer.concat([carry, next.value]);
    }
    const out = Buffer.from(carry.subarray(0, n)); // own copy, like a chunk
    carry = carry.subarray(n);
    return out;
  };
  const inflight: Array<Promise<unknown>> = [];
  try {
    for (const [i, size] of sizes.entries()) {
      const body = take(size);
      const p = client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${String(i).padStart(6, '0')}`, Body: body, ContentLength: size }));
      p.catch(() => {});
      inflight.push(p);
      while (inflight.length >= concurrency) await inflight.shift();
    }
    while (inflight.length > 0) await inflight.shift();
  } finally {
    await Promise.allSettled(inflight);
  }
}

/** Cairn's read pattern without Cairn: GET each object whole, `concurrency` ahead, hashed in order. */
async function getObjects(client: S3Client, bucket: string, keys: string[], concurrency: number): Promise<number> {
  const hash = createHash('sha256');
  let bytes = 0;
  const fetchOne = async (key: string) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return out.Body!.transformToByteArray();
  };
  const pending: Array<Promise<Uint8Array>> = [];
  let next = 0;
  const fill = () => {
    while (pending.length < concurrency && next < keys.length) {
      const p = fetchOne(keys[next++]!);
      p.catch(() => {});
      pending.push(p);
    }
  };
  try {
    fill();
    while (pending.length > 0) {
      const data = await pending.shift()!;
      fill();
      hash.update(data);
      bytes += data.length;
    }
  } finally {
    await Promise.allSettled(pending);
  }
  return bytes;
}

// ---- S3 bookkeeping ------------------------------------------------------------------

async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const item of page.Contents ?? []) if (item.Key) out.push({ key: item.Key, size: item.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Deletes every object (and unfinished multipart upload) under `prefix`; returns how many objects. */
async function deletePrefix(client: S3Client, bucket: string, prefix: string): Promise<number> {
  const keys = await listKeys(client, bucket, prefix);
  // One DeleteObject per key: DeleteObjects needs a checksum header that not every S3 server takes.
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const { key } = keys[next++]!;
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const u of uploads.Uploads ?? []) {
    if (u.Key && u.UploadId) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  return keys.length;
}

async function fsUsage(dir: string): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        objects++;
        bytes += (await fsp.stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { objects, bytes };
}

// ---- the run -----------------------------------------------------------------------

type PhaseName = 'cairn push' | 'cairn-direct push' | 'cairn-direct push v2' | 'cairn pull' | 'cairn pulls' | 'cairn-direct pull' | 'direct write' | 'direct read' | 'hop push' | 'hop pull' | 'objects write' | 'objects read';

interface PhaseResult extends PhaseStats {
  /** the nominal size (--sizes) */
  size: number;
  data: DataKind;
  /** the bytes moved (the file's, times the pulls of a 'cairn pulls' phase), which MB/s is computed from */
  bytes: number;
  phase: PhaseName;
  label: string;
  seconds: number;
  mbPerSec: number;
  /** MB/s ÷ direct MB/s of the same kind, size and data (Cairn and hop rows only) */
  ratio?: number;
  /** payload bytes the emulated link carried during the phase (--link only): up = towards S3 */
  linkUpBytes?: number;
  linkDownBytes?: number;
  /** the link proxy's CPU over the phase, % of one core (--link only) */
  linkProxyCpuPct?: number;
}

interface SizeResult {
  /** the nominal size (--sizes) */
  size: number;
  data: DataKind;
  /** the file's exact size */
  bytes: number;
  digest: string;
  version: string;
  /** what the server stored for it: chunk objects and their bytes */
  stored?: { objects: number; bytes: number };
  /** (s3) the cairn-direct push's file and what it sent */
  directPush?: { digest: string; bytes: number; bytesSent: number };
  /** (s3) the second push: v2 shares all but every V2_EVERY-th chunk with the cairn-direct push's file */
  secondPush?: { chunks: number; changedChunks: number; changedChunkBytes: number; bytesSent: number; fractionOfFile: number };
  phases: PhaseResult[];
}

interface Verdict {
  rssLimitMiB: number;
  underLimit: boolean;
  overLimit: Array<{ size: number; phase: PhaseName; peakMiB: number }>;
  growth: Array<{ phase: PhaseName; smallest: number; biggest: number; smallPeakMiB: number; bigPeakMiB: number; growthMiB: number; ok: boolean }> | null;
  pass: boolean;
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** The processes a phase involves besides this one. */
interface Processes {
  server: Server;
  /** the hop server (--hop-baseline): the hop phases watch it instead of Cairn's server */
  hop?: Helper;
  /** the link proxy (--link): asked for the bytes it carried */
  link?: Helper;
}

function assertHelperAlive(helper: Helper | undefined): void {
  if (helper && (helper.child.exitCode !== null || helper.child.signalCode !== null)) {
    throw new Error(`the ${helper.name} died (${helper.child.exitCode ?? helper.child.signalCode}):\n${helper.logTail.slice(-40).join('\n')}`);
  }
}

async function linkStats(link: Helper | undefined): Promise<Extract<LinkProxyMessage, { type: 'stats' }> | undefined> {
  if (!link) return undefined;
  return link.ask<Extract<LinkProxyMessage, { type: 'stats' }>>({ type: 'stats' }, 'stats');
}

/**
 * Waits until the server process is idle (under IDLE_CPU_PCT of a core over IDLE_SAMPLE_MS): each
 * publish starts background work (the version's OCI image form reads every byte of it once,
 * src/registry/oci-images.ts) that would otherwise land in the next phase's numbers and on its link.
 * Gives up after IDLE_WAIT_MS. Resolves with the seconds waited.
 */
async function serverIdle(pid: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const before = readCpuTicks(pid).total;
    await new Promise((r) => setTimeout(r, IDLE_SAMPLE_MS));
    const pct = (100 * (readCpuTicks(pid).total - before)) / CLK_TCK / (IDLE_SAMPLE_MS / 1000);
    if (pct < IDLE_CPU_PCT || Date.now() - t0 > IDLE_WAIT_MS) return (Date.now() - t0) / 1000;
  }
}

async function runPhase(
  processes: Processes,
  payload: Payload,
  phase: PhaseName,
  label: string,
  fn: () => Promise<void>,
  bytes = payload.size,
): Promise<PhaseResult> {
  const { server, hop, link } = processes;
  assertAlive(server);
  assertHelperAlive(hop);
  assertHelperAlive(link);
  // The server in the path is the one whose memory and CPU the row shows.
  const watched = phase.startsWith('hop') && hop ? { pid: hop.pid, name: 'hop server' } : { pid: server.pid, name: 'server' };
  const monitor = new PhaseMonitor(watched.pid);
  const name = `${formatSize(payload.nominalSize)} ${payload.data} ${label}`;
  const waited = await serverIdle(server.pid);
  log(`  ${name} …${waited >= 1 ? ` (after ${waited.toFixed(0)} s waiting for the server's background work)` : ''}`);
  const link0 = await linkStats(link);
  monitor.start();
  const t0 = process.hrtime.bigint();
  let stats: PhaseStats;
  try {
    await fn();
  } finally {
    stats = monitor.stop(); // also when the phase fails: no timer left behind
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const link1 = await linkStats(link);
  const result: PhaseResult = {
    size: payload.nominalSize,
    data: payload.data,
    bytes,
    phase,
    label,
    seconds,
    mbPerSec: bytes / 1e6 / seconds,
    ...stats,
    ...(link0 && link1
      ? { linkUpBytes: link1.up - link0.up, linkDownBytes: link1.down - link0.down, linkProxyCpuPct: Math.round((link1.cpuMicros - link0.cpuMicros) / 1e4 / seconds) }
      : {}),
  };
  log(
    `  ${name}: ${seconds.toFixed(2)} s, ${result.mbPerSec.toFixed(1)} MB/s, ${watched.name} RSS ${stats.baselineMiB} → peak ${stats.peakMiB} MiB, ${watched.name} CPU ${stats.serverCpuPct}% (main ${stats.mainThreadCpuPct}%)` +
      (result.linkUpBytes !== undefined
        ? `, link carried ${(result.linkUpBytes / 1e6).toFixed(0)} MB up, ${(result.linkDownBytes! / 1e6).toFixed(0)} MB down (proxy CPU ${result.linkProxyCpuPct}%)`
        : ''),
  );
  assertAlive(server);
  assertHelperAlive(hop);
  return result;
}

function verdictOf(results: SizeResult[]): Verdict {
  const cairnPhases = results.flatMap((r) => r.phases.filter((p) => p.phase.startsWith('cairn')));
  const overLimit = cairnPhases.filter((p) => p.peakMiB >= RSS_LIMIT_MIB).map((p) => ({ size: p.size, phase: p.phase, peakMiB: p.peakMiB }));
  let growth: Verdict['growth'] = null;
  const sizes = results.map((r) => r.size);
  const smallest = Math.min(...sizes);
  const biggest = Math.max(...sizes);
  if (biggest > smallest) {
    growth = (['cairn push', 'cairn pull'] as const).map((phase) => {
      const peakAt = (size: number) => Math.max(...cairnPhases.filter((p) => p.phase === phase && p.size === size).map((p) => p.peakMiB));
      const small = peakAt(smallest);
      const big = peakAt(biggest);
      const growthMiB = Math.round((big - small) * 10) / 10;
      // Noise allowance: GC timing and allocator arenas move RSS by tens of MiB.
      // Anything proportional to the file would be hundreds of MiB here.
      const ok = growthMiB <= Math.max(48, 0.2 * small);
      return { phase, smallest, biggest, smallPeakMiB: small, bigPeakMiB: big, growthMiB, ok };
    });
  }
  const underLimit = overLimit.length === 0;
  return { rssLimitMiB: RSS_LIMIT_MIB, underLimit, overLimit, growth, pass: underLimit && (growth?.every((g) => g.ok) ?? true) };
}

function table(results: SizeResult[]): string {
  const withLink = results.some((r) => r.phases.some((p) => p.linkUpBytes !== undefined));
  const header = ['size', 'data', 'phase', 'secs', 'MB/s', 'cairn/direct', 'RSS base', 'RSS peak', 'RSS end', 'srv CPU', 'main thr', 'top other thr', 'client CPU', 'host CPU'];
  if (withLink) header.push('link MB up/down');
  const rows: string[][] = [];
  for (const r of results) {
    for (const p of r.phases) {
      rows.push([
        formatSize(p.size),
        p.data,
        p.label,
        p.seconds.toFixed(2),
        p.mbPerSec.toFixed(1),
        p.ratio === undefined ? '' : `${p.ratio.toFixed(2)}x`,
        p.baselineMiB.toFixed(0),
        p.peakMiB.toFixed(0),
        p.endMiB.toFixed(0),
        `${p.serverCpuPct}%`,
        `${p.mainThreadCpuPct}%`,
        `${p.busiestOtherThreadCpuPct}%`,
        `${p.benchCpuPct}%`,
        `${p.hostCpuPct}%`,
        ...(withLink ? [p.linkUpBytes === undefined ? '' : `${(p.linkUpBytes / 1e6).toFixed(0)}/${(p.linkDownBytes! / 1e6).toFixed(0)}`] : []),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  const bucket = process.env.CAIRN_BENCH_BUCKET || 'cairn-bench';
  const prefix = `bench-${runId}/`;
  if (options.storage === 's3' && !process.env.CAIRN_S3_ENDPOINT) {
    throw new Error('--storage s3 needs CAIRN_S3_ENDPOINT and AWS keys: `source /tmp/cairn-s3/env` (scripts/s3-server.sh start writes it)');
  }
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CAIRN_DATA_DIR: dataDir };
  delete env.CAIRN_S3_BUCKET;
  delete env.CAIRN_S3_PREFIX;
  /** measures: the direct phases and --object-baseline (through the link, if any) */
  let client: S3Client | undefined;
  /** lists and deletes, always straight to the S3 server: cleanup must not depend on the link */
  let admin: S3Client | undefined;
  if (options.storage === 's3') {
    env.CAIRN_S3_BUCKET = bucket;
    env.CAIRN_S3_PREFIX = prefix; // everything the server writes in this run lives under it
    env.CAIRN_S3_FORCE_PATH_STYLE ??= 'true';
    admin = benchS3Client(s3Env().endpoint);
  }

  let server: Server | undefined;
  let linkProxy: Helper | undefined;
  let hopServer: Helper | undefined;
  let cleaned = false;
  let interrupted = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    // Everything that writes to S3 stops first, then its objects are deleted.
    await server?.stop().catch((err: Error) => log(`cleanup: stopping the server: ${err.message}`));
    await hopServer?.stop().catch((err: Error) => log(`cleanup: stopping the hop server: ${err.message}`));
    await linkProxy?.stop().catch((err: Error) => log(`cleanup: stopping the link proxy: ${err.message}`));
    if (admin) {
      try {
        const n = await deletePrefix(admin, bucket, prefix);
        log(`cleanup: deleted ${n} objects under s3://${bucket}/${prefix}`);
      } catch (err) {
        log(`cleanup: could not delete s3://${bucket}/${prefix}: ${(err as Error).message}`);
      }
      admin.destroy();
    }
    client?.destroy();
    await fsp.rm(dataDir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    log(`\n${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: SizeResult[] = [];
  try {
    let s3Endpoint = s3Env().endpoint;
    if (options.link && s3Endpoint) {
      const target = new URL(s3Endpoint);
      if (target.protocol !== 'http:') throw new Error(`--link forwards plain TCP: it needs an http:// CAIRN_S3_ENDPOINT, not ${s3Endpoint}`);
      const started = await startHelper('link proxy', 'link-proxy.ts', ['serve', '--target', `${target.hostname}:${target.port || '80'}`, '--link', options.link.text], process.env);
      linkProxy = started.helper;
      // SigV4 signs the Host header, which the clients set to the proxy's address; RGW takes any
      // Host for path-style requests, so the signature still verifies.
      s3Endpoint = `http://127.0.0.1:${started.port}`;
      env.CAIRN_S3_ENDPOINT = s3Endpoint;
      log(`link proxy pid ${linkProxy.pid}: ${s3Endpoint} → ${target.host}, ${describeLink(options.link)}`);
    }
    if (admin) client = benchS3Client(s3Endpoint);
    log(
      `cairn push/pull bench: storage=${options.storage}${client ? ` (s3://${bucket}/${prefix} at ${s3Env().endpoint ?? 'AWS'}${options.link ? ` via a ${options.link.text} link` : ''})` : ''}, sizes ${options.sizes.map(formatSize).join(', ')}, data ${options.data.join(', ')}, data dir ${dataDir}`,
    );
    buildServer();
    server = await startServer(env, options.cpuProf, options.serverLog);
    log(`server pid ${server.pid} at ${server.url}, RSS ${((readRssKiB(server.pid)?.rss ?? 0) / 1024).toFixed(0)} MiB`);
    let hopUrl: string | undefined;
    if (options.hopBaseline) {
      const started = await startHelper('hop server', 'hop-server.ts', [], {
        ...env, // the S3 endpoint (through the link, if any), region and keys the Cairn server gets
        HOP_BUCKET: bucket,
        HOP_PREFIX: `${prefix}hop/`,
        HOP_PART_SIZE: String(options.partSize),
        HOP_QUEUE_SIZE: String(options.queueSize),
      });
      hopServer = started.helper;
      hopUrl = `http://127.0.0.1:${started.port}`;
      log(`hop server pid ${hopServer.pid} at ${hopUrl}`);
    }
    const processes: Processes = { server, hop: hopServer, link: linkProxy };
    const direct = client ? directS3(client, admin!, bucket, `${prefix}direct/`, options) : directFs(path.join(dataDir, 'direct.bin'));
    const combinations = options.data.flatMap((data) => options.sizes.map((size, sizeIndex) => ({ data, size, sizeIndex })));

    for (const [n, { data, size, sizeIndex }] of combinations.entries()) {
      // A seed per size and data kind: no chunk of one combination deduplicates against another.
      // (random keeps the seeds it always had.)
      const seed = data === 'random' ? `${options.seed}/${sizeIndex}/${size}` : `${options.seed}/${data}/${sizeIndex}/${size}`;
      const version = `${data}-${sizeIndex + 1}-${size}`;
      const payload = payloadFor(data, seed, size);
      const name = `${formatSize(size)} ${data}`;
      log(`${name}: ${payload.fileName}, ${payload.size.toLocaleString('en')} bytes; computing the digest …`);
      const { digest, mbPerSec: genMBps } = digestOf(payload);
      log(`${name}: ${digest} (generated and hashed at ${genMBps.toFixed(0)} MB/s on one core; the pushes generate it again)`);
      const phases: PhaseResult[] = [];
      const cairnFirst = n % 2 === 0; // alternate who goes first, combination to combination
      const inTurn = async (...steps: Array<(() => Promise<PhaseResult>) | undefined>) => {
        const present = steps.filter((s) => s !== undefined);
        for (const step of cairnFirst ? present : present.reverse()) phases.push(await step());
      };
      const check = (what: string, got: { digest: string; size: number }) => {
        if (got.digest !== digest || got.size !== payload.size) throw new Error(`${what}: got ${got.digest} (${got.size} B), expected ${digest} (${payload.size} B)`);
      };
      let stored: SizeResult['stored'];
      let chunkObjects: Array<{ key: string; size: number }> = [];
      const fsBefore = admin ? undefined : await fsUsage(path.join(dataDir, 'blobs', 'chunks'));
      // cairn-direct push: the CLI reads a file, written beforehand; bytes of their own seed, else
      // they would deduplicate against cairn push's chunks (or the other way round)
      let directPush: (SizeResult['directPush'] & { payload: Payload; file: string; version: string }) | undefined;
      if (admin) {
        const directPayload = payloadFor(data, `${seed}/direct`, size);
        const file = path.join(await fsp.mkdtemp(path.join(dataDir, 'push-')), directPayload.fileName);
        log(`${name}: writing the cairn-direct push's file (${directPayload.size.toLocaleString('en')} bytes, its own seed) …`);
        const written = await writePayload(directPayload, file);
        directPush = { digest: written.digest, bytes: written.size, bytesSent: 0, payload: directPayload, file, version: `${version}-direct` };
      }

      await inTurn(
        () => runPhase(processes, payload, 'cairn push', 'cairn push', async () => check('push: the server recorded', await pushMultipart(server!.url, version, payload))),
        directPush
          ? () =>
              runPhase(processes, directPush!.payload, 'cairn-direct push', 'cairn-direct push', async () => {
                directPush!.bytesSent = await cliPush(server!.url, directPush!.version, directPush!.file, { digest: directPush!.digest, size: directPush!.bytes });
              })
          : undefined,
        () => runPhase(processes, payload, 'direct write', direct.label.write, () => direct.write(payload)),
        hopUrl
          ? () =>
              runPhase(processes, payload, 'hop push', 'hop push', async () => {
                const got = await hopPush(hopUrl!, payload);
                if (got !== payload.size) throw new Error(`hop push: stored ${got} bytes, not ${payload.size}`);
              })
          : undefined,
      );
      if (admin) {
        // cairn push's chunks only (the cairn-direct push stored its own next to them)
        const own = await chunkKeysOf(server!.url, version, payload.fileName);
        const objects = (await listKeys(admin, bucket, `${prefix}chunks/`)).filter((o) => own.has(o.key.slice(prefix.length)));
        chunkObjects = objects;
        stored = { objects: objects.length, bytes: objects.reduce((sum, o) => sum + o.size, 0) };
        if (objects.length === 0) log(`warning: no chunk objects under s3://${bucket}/${prefix}chunks/ — is CAIRN_S3_PREFIX honoured?`);
      } else {
        const after = await fsUsage(path.join(dataDir, 'blobs', 'chunks'));
        stored = { objects: after.objects - fsBefore!.objects, bytes: after.bytes - fsBefore!.bytes };
      }
      let secondPush: SizeResult['secondPush'];
      if (directPush) {
        const v2 = await makeV2(server!.url, directPush.version, directPush.payload.fileName, directPush.file);
        log(`${name}: v2 changes ${v2.changedChunks} of ${v2.chunks} chunks (${(v2.changedChunkBytes / MiB).toFixed(1)} MiB of chunks)`);
        let bytesSent = 0;
        phases.push(
          await runPhase(processes, directPush.payload, 'cairn-direct push v2', 'cairn-direct push v2', async () => {
            bytesSent = await cliPush(server!.url, `${directPush!.version}-v2`, directPush!.file, v2);
          }),
        );
        secondPush = { chunks: v2.chunks, changedChunks: v2.changedChunks, changedChunkBytes: v2.changedChunkBytes, bytesSent, fractionOfFile: bytesSent / v2.size };
        log(`${name}: the v2 push sent ${(bytesSent / MiB).toFixed(1)} MiB, ${(100 * secondPush.fractionOfFile).toFixed(1)}% of the file`);
        await fsp.rm(path.dirname(directPush.file), { recursive: true, force: true });
      }
      log(`${name}: server stored ${stored.objects} chunk objects, ${(stored.bytes / MiB).toFixed(1)} MiB (${((100 * stored.bytes) / payload.size).toFixed(1)}% of raw)`);
      await inTurn(
        () => runPhase(processes, payload, 'cairn pull', 'cairn pull', async () => check('pull', await pullFile(server!.url, version, payload.fileName))),
        () => runPhase(processes, payload, 'direct read', direct.label.read, async () => check('direct read', await direct.read())),
        hopUrl ? () => runPhase(processes, payload, 'hop pull', 'hop pull', async () => check('hop pull', await getHashed(`${hopUrl}/objects/${payload.fileName}`, 'hop pull'))) : undefined,
      );
      if (options.pulls > 1) {
        const n = options.pulls;
        phases.push(
          await runPhase(
            processes,
            payload,
            'cairn pulls',
            `cairn pull ×${n}`,
            async () => {
              for (const got of await Promise.all(Array.from({ length: n }, () => pullFile(server!.url, version, payload.fileName)))) check('pull', got);
            },
            n * payload.size,
          ),
        );
      }
      if (admin) {
        let written: (() => Promise<{ digest: string; size: number }>) | undefined;
        phases.push(await runPhase(processes, payload, 'cairn-direct pull', 'cairn-direct pull', async () => {
          written = await cliPull(server!.url, version, payload.fileName, dataDir);
        }));
        check('cairn-direct pull wrote', await written!());
      }
      for (const [otherPhase, directPhase] of [['cairn push', 'direct write'], ['cairn-direct push', 'direct write'], ['cairn pull', 'direct read'], ['cairn-direct pull', 'direct read'], ['hop push', 'direct write'], ['hop pull', 'direct read']] as const) {
        const other = phases.find((p) => p.phase === otherPhase);
        const d = phases.find((p) => p.phase === directPhase)!;
        if (other) other.ratio = other.mbPerSec / d.mbPerSec;
      }
      // Free the S3 server's memory (memstore) as soon as possible: it holds everything in RAM.
      await direct.clear();
      if (hopUrl) await deletePrefix(admin!, bucket, `${prefix}hop/`);

      if (client && options.objectBaseline && chunkObjects.length > 0) {
        // Cairn's access pattern straight against S3: GET the server's own chunk
        // objects, then (once those are deleted) PUT objects of the same sizes.
        const keys = chunkObjects.map((o) => o.key);
        phases.push(
          await runPhase(processes, payload, 'objects read', `s3 get ${keys.length} objs ×${OBJECT_GET_CONCURRENCY}`, async () => {
            const got = await getObjects(client!, bucket, keys, OBJECT_GET_CONCURRENCY);
            if (got !== stored!.bytes) throw new Error(`objects read: got ${got} bytes, listed ${stored!.bytes}`);
          }),
        );
        await deletePrefix(admin!, bucket, `${prefix}chunks/`);
        const sizes = chunkObjects.map((o) => o.size); // codec byte included, in listing order
        phases.push(
          await runPhase(processes, payload, 'objects write', `s3 put ${sizes.length} objs ×${OBJECT_PUT_CONCURRENCY}`, () =>
            putObjects(client!, bucket, `${prefix}objects/`, seed, sizes, OBJECT_PUT_CONCURRENCY),
          ),
        );
        await deletePrefix(admin!, bucket, `${prefix}objects/`);
      } else if (admin && n < combinations.length - 1) {
        const deleted = await deletePrefix(admin, bucket, `${prefix}chunks/`);
        log(`${name}: deleted ${deleted} chunk objects`);
      }
      const pushed = directPush && { digest: directPush.digest, bytes: directPush.bytes, bytesSent: directPush.bytesSent };
      results.push({ size, data, bytes: payload.size, digest, version, stored, directPush: pushed, secondPush, phases });
    }
  } catch (err) {
    if (interrupted) return 130; // the phase failed because cleanup stopped the processes under it
    log(`bench failed: ${(err as Error).stack ?? err}`);
    const died = server && (server.child.exitCode !== null || server.child.signalCode !== null);
    if (died) log(`the server exited (${server!.child.exitCode ?? server!.child.signalCode})`);
    const helperLogs = [hopServer, linkProxy].filter((h) => h !== undefined && h.logTail.length > 0).map((h) => `${h!.name}'s last output:\n${h!.logTail.slice(-30).join('\n')}`);
    await cleanup(); // stops the server: its output is complete after this
    if (died) log(`its last output:\n${server!.logTail.slice(-60).join('\n')}`);
    else if (server?.problems.length) log(`server warnings/errors:\n${server.problems.slice(-40).join('\n')}`);
    for (const text of helperLogs) log(text);
    return 2;
  }
  const problems = server?.problems ?? [];
  await cleanup();

  const verdict = verdictOf(results);
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          bench: 'push-pull',
          run: runId,
          time: new Date().toISOString(),
          storage: options.storage,
          node: process.version,
          cpus: HOST_CPUS,
          direct: options.storage === 's3' ? { partSize: options.partSize, queueSize: options.queueSize } : { kind: 'fs file' },
          data: options.data,
          link: options.link ?? null,
          hopBaseline: options.hopBaseline,
          results,
          serverProblems: problems,
          verdict,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const out: string[] = [];
    const link = options.storage !== 's3' ? '' : options.link ? `, S3 behind a ${describeLink(options.link)} link` : ', S3 direct (no link emulation)';
    out.push(`cairn push/pull — storage ${options.storage}${link}, ${HOST_CPUS} CPUs, node ${process.version}; MB = 10^6 bytes; RSS in MiB (server process, incl. worker threads${options.hopBaseline ? "; the hop server's in hop rows" : ''}); CPU in % of one core (host: all ${HOST_CPUS} CPUs = ${HOST_CPUS * 100}%)${options.hopBaseline ? '; hop rows: hop/direct in the cairn/direct column' : ''}`);
    out.push(table(results));
    for (const r of results) {
      if (r.stored) out.push(`${formatSize(r.size)} ${r.data} (${r.bytes.toLocaleString('en')} B): server stored ${r.stored.objects} chunk objects, ${(r.stored.bytes / MiB).toFixed(1)} MiB (${((100 * r.stored.bytes) / r.bytes).toFixed(1)}% of raw)`);
    }
    for (const r of results) {
      const cpuPerGB = (phase: PhaseName) => {
        const p = r.phases.find((x) => x.phase === phase);
        return p ? (p.serverCpuPct / 100) * p.seconds / (p.bytes / 1e9) : undefined;
      };
      for (const [verb, proxiedPhase, directPhase] of [['pulled', 'cairn pull', 'cairn-direct pull'], ['pushed', 'cairn push', 'cairn-direct push']] as const) {
        const proxied = cpuPerGB(proxiedPhase);
        const direct = cpuPerGB(directPhase);
        if (proxied !== undefined && direct !== undefined) {
          out.push(`${formatSize(r.size)} ${r.data}: server CPU per GB ${verb}: ${proxiedPhase} ${proxied.toFixed(2)} s, ${directPhase} ${direct.toFixed(3)} s (${((100 * direct) / proxied).toFixed(1)}% of proxied)`);
        }
      }
      if (r.directPush) {
        out.push(`${formatSize(r.size)} ${r.data}: cairn-direct push sent ${(r.directPush.bytesSent / MiB).toFixed(1)} MiB to storage for its ${(r.directPush.bytes / MiB).toFixed(1)} MiB file (${((100 * r.directPush.bytesSent) / r.directPush.bytes).toFixed(1)}%)`);
      }
      if (r.secondPush) {
        const v2 = r.secondPush;
        out.push(
          `${formatSize(r.size)} ${r.data}: second push (v2: ${v2.changedChunks} of ${v2.chunks} chunks changed, ${(v2.changedChunkBytes / MiB).toFixed(1)} MiB of chunks): ` +
            `bytes_sent ${(v2.bytesSent / MiB).toFixed(1)} MiB = ${(100 * v2.fractionOfFile).toFixed(1)}% of the file (goal ≤ 12%)`,
        );
      }
    }
    if (problems.length) out.push(`server logged ${problems.length} warning/error line(s):\n${problems.slice(-20).join('\n')}`);
    const limit = verdict.underLimit
      ? `peak RSS < ${RSS_LIMIT_MIB} MiB in every Cairn phase: yes (max ${Math.max(...results.flatMap((r) => r.phases.filter((p) => p.phase.startsWith('cairn')).map((p) => p.peakMiB))).toFixed(0)} MiB)`
      : `peak RSS < ${RSS_LIMIT_MIB} MiB in every Cairn phase: NO (${verdict.overLimit.map((o) => `${formatSize(o.size)} ${o.phase} ${o.peakMiB.toFixed(0)} MiB`).join(', ')})`;
    const growth = verdict.growth
      ? `peak RSS ${formatSize(verdict.growth[0]!.biggest)} vs ${formatSize(verdict.growth[0]!.smallest)}: ${verdict.growth
          .map((g) => `${g.phase} ${g.bigPeakMiB.toFixed(0)} vs ${g.smallPeakMiB.toFixed(0)} MiB (${g.growthMiB >= 0 ? '+' : ''}${g.growthMiB.toFixed(0)}) ${g.ok ? 'flat' : 'GROWS'}`)
          .join('; ')}`
      : 'peak RSS vs file size: n/a (one size)';
    out.push(`verdict: ${verdict.pass ? 'PASS' : 'FAIL'} — ${limit}; ${growth}`);
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return verdict.pass ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    log(`bench: ${err.message}`);
    process.exitCode = 2;
  },
);
