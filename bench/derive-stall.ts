// Does a derive job stall the server? /healthz latency while PP-OCRv4 det is
// derived and measured (ONNX Runtime on parent and derived model):
//
//   inline  the derive library run on the event loop of a process that also
//           answers /healthz (what a job would do without a worker thread)
//   server  the real server (child process, as `cairn serve`) running the
//           same derivation as a job (worker thread)
//
// A separate process probes /healthz every 10 ms (one request at a time) and
// reports the latency. On a busy machine latency also counts time the server
// was not scheduled at all, so the CPU time of the server's main thread (the
// event loop; Linux /proc) is reported beside it: work done there is what
// can stall a request. Run from the repository root:
//
//   node --import tsx bench/derive-stall.ts [--model <file.onnx>] [--op int8|fp16] [--side 320]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { deriveOnnx, type OnnxParams } from '../src/derive/onnx-transforms.ts';
import { loadSamples, measureOnnx } from '../src/derive/onnx-measure.ts';
import { diskSource, writeDerived } from '../test/support/derive-files.ts';
import { floatSafetensors } from '../test/support/derive-jobs.ts';
import { freePort, spawnServer } from '../test/support/child-server.ts';
import { option } from './support.ts';

const model = option('model', '/work/shared/models/ch_PP-OCRv4_det_infer.onnx');
const op = option('op', 'int8') as 'int8' | 'fp16';
const side = Number(option('side', '320'));

const PROBE = `
const http = require('node:http');
const url = process.argv[1];
const times = [];
let stop = false;
process.stdin.on('data', () => { stop = true; });
(async () => {
  while (!stop) {
    const t0 = performance.now();
    await new Promise((resolve) => http.get(url, { agent: false }, (res) => { res.resume(); res.on('end', resolve); }).on('error', resolve));
    times.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  process.stdout.write(JSON.stringify({ probes: times.length, p50: q(0.5), p99: q(0.99), max: times[times.length - 1] }));
})();
`;

interface Probe {
  stop(): Promise<{ probes: number; p50: number; p99: number; max: number }>;
}

function probe(url: string): Probe {
  const child = spawn(process.execPath, ['-e', PROBE, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      child.stdin.end('x');
      await exited;
      return JSON.parse(out);
    },
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

/** CPU seconds of a process and of its main thread (the event loop), from /proc. */
function cpuSeconds(pid: number): { process: number; mainThread: number } {
  const ticks = (file: string) => {
    const fields = fs.readFileSync(file, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
  };
  return { process: ticks(`/proc/${pid}/stat`), mainThread: ticks(`/proc/${pid}/task/${pid}/stat`) };
}

function cpuSince(pid: number, before: { process: number; mainThread: number }): { process_s: number; event_loop_thread_s: number } {
  const now = cpuSeconds(pid);
  return { process_s: round(now.process - before.process), event_loop_thread_s: round(now.mainThread - before.mainThread) };
}

async function inline(dir: string, samplesFile: string): Promise<void> {
  const port = await freePort();
  const server = http.createServer((_req, res) => res.end('{"status":"ok"}'));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const p = probe(`http://127.0.0.1:${port}/healthz`);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  const cpu0 = cpuSeconds(process.pid);
  const out = path.join(dir, 'derived.onnx');
  const d = await deriveOnnx(diskSource(model), { transform: op } as OnnxParams);
  await writeDerived(d, out);
  const measured = await measureOnnx({ parent: model, derived: out, samples: await loadSamples(diskSource(samplesFile)) });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(process.pid, cpu0);
  const r = await p.stop();
  server.close();
  console.log(JSON.stringify({ mode: 'inline (event loop)', op, seconds: round(seconds), cpu, cosine: measured.outputs[0]?.cosine, healthz_ms: { p50: round(r.p50), p99: round(r.p99), max: round(r.max), probes: r.probes }, load: os.loadavg()[0] }));
}

async function viaServer(dir: string, samplesFile: string): Promise<void> {
  const dataDir = path.join(dir, 'data');
  const server = await spawnServer({ dataDir });
  try {
    const form = new FormData();
    form.append('version', '1.0.0');
    form.append('file', new Blob([fs.readFileSync(model)]), 'model.onnx');
    form.append('file', new Blob([fs.readFileSync(samplesFile)]), 'samples.safetensors');
    const pub = await fetch(`${server.url}/v1/models/bench/versions`, { method: 'POST', body: form });
    if (pub.status !== 201) throw new Error(`publish: ${pub.status} ${await pub.text()}`);
    const p = probe(`${server.url}/healthz`);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const cpu0 = cpuSeconds(server.proc.pid!);
    const res = await fetch(`${server.url}/v1/models/bench/versions/1.0.0/derive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ op, samples: 'samples.safetensors' }) });
    let job = (await res.json()) as { id: string; state: string; error?: unknown; result?: { name: string; version: string } };
    while (job.state === 'queued' || job.state === 'running') {
      await new Promise((r) => setTimeout(r, 100));
      job = (await (await fetch(`${server.url}/v1/jobs/${job.id}`)).json()) as typeof job;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSince(server.proc.pid!, cpu0);
    const r = await p.stop();
    if (job.state !== 'succeeded') throw new Error(`job ${job.state}: ${JSON.stringify(job.error)}`);
    const doc = (await (await fetch(`${server.url}/v1/models/${job.result!.name}/versions/${job.result!.version}`)).json()) as { parents: Array<{ recipe: any }> };
    const cosine = doc.parents[0]!.recipe.results.files[0].measured.cosine_min;
    console.log(JSON.stringify({ mode: 'server job (worker thread)', op, seconds: round(seconds), cpu, cosine, healthz_ms: { p50: round(r.p50), p99: round(r.p99), max: round(r.max), probes: r.probes }, load: os.loadavg()[0] }));
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(model)) throw new Error(`no model ${model} (--model)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-derive-stall-'));
  try {
    const samplesFile = path.join(dir, 'samples.safetensors');
    fs.writeFileSync(samplesFile, floatSafetensors([0, 1].map((i) => ({ name: `${i}/x`, shape: [1, 3, side, side], seed: 100 + i }))));
    await inline(dir, samplesFile);
    await viaServer(dir, samplesFile);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
