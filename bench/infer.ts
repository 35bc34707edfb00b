// `cairn infer` against ONNX Runtime called in-process: requests/s and
// p50/p99 latency at several concurrencies, with and without dynamic
// batching, on real models (silero VAD; PP-OCRv4's text detector on small
// images). See bench/README.md.
//
//   node --import tsx bench/infer.ts [--models-dir ../shared/models] [--seconds 5]
//        [--concurrency 1,8,32] [--protocol oip|oip-binary|tf] [--workers 1,0] [--threads 0]
//        [--ocr-size 64] [--models silero-vad,ppocr-det]
// Each --workers value is one `cairn infer` process (0: runs on its event loop).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { option } from './support.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'cairn.js');
const modelsDir = path.resolve(option('models-dir', process.env.CAIRN_SHARED_MODELS ?? path.join(ROOT, '..', 'shared', 'models')));
const seconds = Number(option('seconds', '5'));
const concurrencies = option('concurrency', '1,8,32').split(',').map(Number);
const protocol = option('protocol', 'oip');
const workerCounts = option('workers', '1,0').split(',');
const threads = option('threads', '0');
const ocrSize = Number(option('ocr-size', '64'));
const only = option('models', 'silero-vad,ppocr-det').split(',');

// ---- the workloads ----------------------------------------------------------------

interface Workload {
  name: string;
  file: string;
  /** in-process feeds, made fresh per run (ONNX Runtime may keep nothing of them) */
  feeds(): Record<string, ort.Tensor>;
  /** the same input over the wire */
  body(): { body: Buffer; headers: Record<string, string> };
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

const audio = seeded(512, 1);
const image = seeded(3 * ocrSize * ocrSize, 2).map((v) => v + 0.5);

/** An OIP request: JSON, or (--protocol oip-binary) a JSON header and each input's raw bytes, outputs asked back as bytes. */
function oipBody(inputs: Array<{ name: string; shape: number[]; datatype: string; data: Float32Array | BigInt64Array }>): { body: Buffer; headers: Record<string, string> } {
  if (protocol === 'oip-binary') {
    const blobs = inputs.map((i) => Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength));
    const header = Buffer.from(JSON.stringify({ inputs: inputs.map((i, k) => ({ name: i.name, shape: i.shape, datatype: i.datatype, parameters: { binary_data_size: blobs[k]!.byteLength } })), parameters: { binary_data_output: true } }));
    return { body: Buffer.concat([header, ...blobs]), headers: { 'inference-header-content-length': String(header.byteLength) } };
  }
  const json = inputs.map((i) => ({ ...i, data: Array.from(i.data as ArrayLike<number | bigint>, Number) }));
  return { body: Buffer.from(JSON.stringify({ inputs: json })), headers: { 'content-type': 'application/json' } };
}

const workloads: Workload[] = ([
  {
    name: 'silero-vad',
    file: 'silero_vad_v5.onnx',
    feeds: () => ({
      input: new ort.Tensor('float32', audio.slice(), [1, 512]),
      state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
      sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
    }),
    body: () =>
      protocol === 'tf'
        ? { body: Buffer.from(JSON.stringify({ inputs: { input: [Array.from(audio)], state: [[new Array(128).fill(0)], [new Array(128).fill(0)]], sr: 16000 } })), headers: {} }
        : oipBody([
            { name: 'input', shape: [1, 512], datatype: 'FP32', data: audio },
            { name: 'state', shape: [2, 1, 128], datatype: 'FP32', data: new Float32Array(256) },
            { name: 'sr', shape: [], datatype: 'INT64', data: BigInt64Array.from([16000n]) },
          ]),
  },
  {
    name: 'ppocr-det',
    file: 'ch_PP-OCRv4_det_infer.onnx',
    feeds: () => ({ x: new ort.Tensor('float32', image.slice(), [1, 3, ocrSize, ocrSize]) }),
    body: () =>
      protocol === 'tf'
        ? { body: Buffer.from(JSON.stringify({ instances: [nest(image, [3, ocrSize, ocrSize])] })), headers: {} }
        : oipBody([{ name: 'x', shape: [1, 3, ocrSize, ocrSize], datatype: 'FP32', data: image }]),
  },
] satisfies Workload[]).filter((w) => only.includes(w.name));

function nest(flat: Float32Array, shape: number[]): unknown {
  let at = 0;
  const walk = (d: number): unknown => (d === shape.length ? flat[at++] : Array.from({ length: shape[d]! }, () => walk(d + 1)));
  return walk(0);
}

// ---- measuring -----------------------------------------------------------------------

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time per request of the process doing the work (all its threads), µs */
  cpuUs: number;
}

/** CPU seconds (user + system, all threads) a process has used: /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

/** `c` loops calling `once` for `seconds` (after a 1 s warm-up): throughput, latency, and `pid`'s CPU per request. */
async function measure(c: number, pid: number, once: () => Promise<boolean>): Promise<Result> {
  const warmUntil = performance.now() + 1000;
  await Promise.all(Array.from({ length: c }, async () => {
    while (performance.now() < warmUntil) await once();
  }));
  const latencies: number[] = [];
  let errors = 0;
  const cpuStart = cpuSeconds(pid);
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (!(await once())) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpuUs = ((cpuSeconds(pid) - cpuStart) * 1e6) / latencies.length;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, cpuUs };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function post(url: URL, body: Buffer, headers: Record<string, string>): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.byteLength } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

// ---- the servers -------------------------------------------------------------------------

function child(args: string[], env: Record<string, string>): { proc: ChildProcess; listening: Promise<string> } {
  const proc = spawn(process.execPath, ['--max-semi-space-size=2', BIN, ...args], { cwd: ROOT, env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '1048576', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      log = (log + d.toString()).slice(-16_384);
      const m = /"msg":"(?:cairn listening|inference server listening)".*?"url":"([^"]+)"/.exec(log);
      if (!m) return;
      resolve(m[1]!);
      // from here on the child's output is drained, not kept: the request log is a line per request
      proc.stdout!.off('data', onData);
      proc.stdout!.resume();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited (${code}):\n${log.slice(-3000)}`)));
  });
  return { proc, listening };
}

async function main(): Promise<void> {
  for (const w of workloads) {
    if (!fs.existsSync(path.join(modelsDir, w.file))) throw new Error(`${path.join(modelsDir, w.file)} is missing (--models-dir)`);
  }
  const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-infer-'));
  const registry = child(['serve'], { CAIRN_DATA_DIR: path.join(tmp, 'registry'), CAIRN_PORT: '0', CAIRN_AUTH: 'off', CAIRN_HOST: '127.0.0.1' });
  const inferProcs: ChildProcess[] = [];
  try {
    const registryUrl = await registry.listening;
    for (const w of workloads) {
      for (const name of [w.name, `${w.name}-nobatch`]) {
        const form = new FormData();
        form.set('version', '1');
        form.append('file', new Blob([fs.readFileSync(path.join(modelsDir, w.file))]), w.file);
        const res = await fetch(`${registryUrl}/v1/models/${name}/versions`, { method: 'POST', body: form });
        if (res.status !== 201) throw new Error(`publish ${name}: ${res.status} ${await res.text()}`);
      }
    }
    const config = path.join(tmp, 'infer.json');
    fs.writeFileSync(config, JSON.stringify({ models: workloads.flatMap((w) => [w.name, { name: `${w.name}-nobatch`, batching: false }]) }));
    const servers: Array<{ workers: string; url: string; pid: number }> = [];
    for (const workers of workerCounts) {
      const infer = child(['infer', '--config', config, '--url', registryUrl, '--port', '0', '--cache-dir', path.join(tmp, 'cache'), '--workers', workers, '--threads', threads], { CAIRN_URL: registryUrl });
      inferProcs.push(infer.proc);
      const url = await infer.listening;
      for (;;) {
        const ready = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
        if (ready?.status === 200) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      servers.push({ workers, url, pid: infer.proc.pid! });
    }
    console.log(`cairn infer on ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`protocol ${protocol}, ${seconds} s per cell, --threads ${threads}; ppocr-det input 1×3×${ocrSize}×${ocrSize}\n`);
    const rows: string[][] = [['model', 'how', 'c', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs in-process', 'p50 added ms', 'CPU µs/req']];
    for (const w of workloads) {
      // the session options cairn infer uses (src/infer/runtime.ts)
      const session = await ort.InferenceSession.create(path.join(modelsDir, w.file), {
        intraOpNumThreads: Number(threads),
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      const { body, headers } = w.body();
      for (const c of concurrencies) {
        const inProcess = await measure(c, process.pid, async () => {
          await session.run(w.feeds());
          return true;
        });
        rows.push([w.name, 'onnxruntime-node in-process', String(c), inProcess.rps.toFixed(0), inProcess.p50.toFixed(3), inProcess.p99.toFixed(3), '1.00', '', inProcess.cpuUs.toFixed(0)]);
        for (const server of servers) {
          for (const [how, model] of [
            ['batching', w.name],
            ['no batching', `${w.name}-nobatch`],
          ] as const) {
            const route = protocol === 'tf' ? `/v1/models/${model}:predict` : `/v2/models/${model}/infer`;
            const r = await measure(c, server.pid, () => post(new URL(route, server.url), body, headers));
            const where = server.workers === '0' ? 'event loop' : `${server.workers} worker${server.workers === '1' ? '' : 's'}`;
            rows.push([w.name, `cairn infer, ${where}, ${how}`, String(c), r.rps.toFixed(0), r.p50.toFixed(3), r.p99.toFixed(3), (r.rps / inProcess.rps).toFixed(2), (r.p50 - inProcess.p50).toFixed(3) + (r.errors ? ` (${r.errors} errors)` : ''), r.cpuUs.toFixed(0)]);
          }
        }
      }
      await session.release();
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const [i, r] of rows.entries()) {
      console.log(`| ${r.map((cell, k) => cell.padEnd(widths[k]!)).join(' | ')} |`);
      if (i === 0) console.log(`| ${widths.map((n) => '-'.repeat(n)).join(' | ')} |`);
    }
    for (const server of servers) {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const batch = metrics.split('\n').filter((l) => /^cairn_infer_batch_size_(sum|count)/.test(l));
      console.log(`\nrows per run in cairn infer --workers ${server.workers}:\n${batch.join('\n')}`);
    }
  } finally {
    for (const p of inferProcs) p.kill('SIGTERM');
    registry.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(tmp, { recursive: true, force: true });
    agent.destroy();
  }
}

await main();
