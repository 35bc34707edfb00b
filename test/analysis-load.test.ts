// Load test for format analysis (issue 11, item 3): the real `cairn serve` in
// a child process, four analysis bombs published at once — a 1 MiB .pt zip of
// 63 deflated 16 MiB pickles, a safetensors file with a 92 MB header of 1.3M
// tensors, a GGUF with 2^20 tensors, and one JSON manifest naming the zip four
// times — while /healthz is polled and the server's RSS is read from
// /proc/<pid>/status. Then a version of 10,000 files. Budgets:
// /healthz p99 < 200 ms, RSS < 500 MiB, every publish answered (201, never a
// 500), and no bomb recorded `safe`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hugeHeaderSafetensors, manyTensorGguf, pickleZipBomb } from './support/analysis-bombs.ts';
import { digestOf } from './support/bytes.ts';
import { spawnServer, type ChildServer } from './support/child-server.ts';
import { bodyOf, call } from './support/http-client.ts';
import { resetPeak, statusKiB } from './support/process-memory.ts';

const HEALTHZ_P99_MS = 200;
const RSS_LIMIT_MIB = 500;

/** Polls /healthz one request at a time until stopped; the latencies in ms. */
function pollHealth(url: string): { stop(): Promise<number[]> } {
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20)); // the sampling interval of the probe (the point)
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return latencies;
    },
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Samples the server's VmRSS every 50 ms; the peak also from VmHWM (reset at start where the kernel allows). */
function watchRss(pid: number): { stop(): { peakMiB: number; hwmMiB: number | undefined } } {
  const hwmReset = resetPeak(pid);
  let peak = statusKiB(pid, 'VmRSS');
  const timer = setInterval(() => {
    peak = Math.max(peak, statusKiB(pid, 'VmRSS'));
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, statusKiB(pid, 'VmRSS'));
      return { peakMiB: peak / 1024, hwmMiB: hwmReset ? statusKiB(pid, 'VmHWM') / 1024 : undefined };
    },
  };
}

async function uploadBlob(url: string, data: Uint8Array): Promise<string> {
  const start = await call(url, 'POST', '/v1/uploads');
  assert.equal(start.status, 201);
  const digest = digestOf(data);
  const res = await fetch(`${url}/v1/uploads/${start.body.id}?digest=${digest}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bodyOf(data) });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

describe('format analysis under load (child server)', { timeout: 600_000 }, () => {
  let server: ChildServer;
  let dataDir: string;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-analysis-load-'));
    // A short CPU budget per file keeps the test short (the bombs need far
    // more); CAIRN_ANALYSIS_FILE_SECONDS set in the environment overrides it.
    server = await spawnServer({ dataDir, env: { CAIRN_ANALYSIS_FILE_SECONDS: process.env.CAIRN_ANALYSIS_FILE_SECONDS || '5' } });
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('4 analysis bombs published at once: /healthz p99 < 200 ms, RSS < 500 MiB, none recorded safe', async () => {
    const pid = server.proc.pid!;
    const bombs = { zip: pickleZipBomb(), st: hugeHeaderSafetensors(), gguf: manyTensorGguf() };
    // from the uploads on: storing the 92 MB header must not balloon the server either
    const rss = watchRss(pid);
    const zipDigest = await uploadBlob(server.url, bombs.zip);
    const stDigest = await uploadBlob(server.url, bombs.st);
    const ggufDigest = await uploadBlob(server.url, bombs.gguf);
    const afterUploads = statusKiB(pid, 'VmRSS') / 1024;

    const health = pollHealth(server.url);
    const t0 = performance.now();
    const timed = async (name: string, files: Array<{ path: string; digest: string }>) => {
      const res = await call(server.url, 'POST', `/v1/models/${name}/versions`, { version: '1', files });
      return { ...res, ms: performance.now() - t0 };
    };
    const [pt, st, gguf, named4] = await Promise.all([
      timed('bomb-zip', [{ path: 'model.pt', digest: zipDigest }]),
      timed('bomb-safetensors', [{ path: 'model.safetensors', digest: stDigest }]),
      timed('bomb-gguf', [{ path: 'model.gguf', digest: ggufDigest }]),
      timed('bomb-named-4', ['a.pt', 'b.pt', 'c.pt', 'd.pt'].map((p) => ({ path: p, digest: zipDigest }))),
    ]);
    const latencies = await health.stop();
    const mem = rss.stop();
    const p99 = percentile(latencies, 99);
    const report = {
      healthz: { requests: latencies.length, p50: +percentile(latencies, 50).toFixed(1), p99: +p99.toFixed(1), max: +Math.max(...latencies).toFixed(1) },
      rss_mib: { after_uploads: Math.round(afterUploads), peak_sampled: Math.round(mem.peakMiB), hwm: mem.hwmMiB && Math.round(mem.hwmMiB) },
      publish_s: Object.fromEntries([pt, st, gguf, named4].map((r, i) => [['zip', 'safetensors', 'gguf', 'named-4'][i], +(r.ms / 1000).toFixed(1)])),
    };
    process.stderr.write(`# analysis load: ${JSON.stringify(report)}\n`);

    for (const r of [pt, st, gguf, named4]) assert.equal(r.status, 201, JSON.stringify(r.body));
    const fileOf = (r: typeof pt, p: string) => r.body.files.find((f: { path: string }) => f.path === p);
    // The zip's pickles cannot be walked within the budget: unknown, never safe.
    assert.equal(fileOf(pt, 'model.pt').safety.verdict, 'unknown');
    assert.equal(pt.body.summary.safety.verdict, 'unknown');
    // The header is bigger than what one analysis may hold.
    const stFile = fileOf(st, 'model.safetensors');
    assert.equal(stFile.safety.verdict, 'unknown');
    assert.equal(stFile.details.analysis_stopped?.budget, 'memory', JSON.stringify(stFile));
    assert.equal(st.body.summary.safety.verdict, 'unknown');
    assert.deepEqual(st.body.summary.safety.unchecked_files, ['model.safetensors']);
    assert.notEqual(gguf.body.summary.safety.verdict, 'unsafe');
    for (const p of ['a.pt', 'b.pt', 'c.pt', 'd.pt']) assert.equal(fileOf(named4, p).safety.verdict, 'unknown', p);
    assert.equal(named4.body.summary.safety.verdict, 'unknown');

    assert.ok(p99 < HEALTHZ_P99_MS, `/healthz p99 ${p99.toFixed(1)} ms (budget ${HEALTHZ_P99_MS}): ${JSON.stringify(report)}`);
    const peak = Math.max(mem.peakMiB, mem.hwmMiB ?? 0);
    assert.ok(peak < RSS_LIMIT_MIB, `server RSS peaked at ${peak.toFixed(0)} MiB (budget ${RSS_LIMIT_MIB}): ${JSON.stringify(report)}`);
  });

  test('a version of 10,000 files is analysed without stalling the server', async () => {
    // 100 contents under 10,000 names: every name is its own analysis (the
    // detectors see the name), without 10,000 uploads first.
    const digests: string[] = [];
    for (let i = 0; i < 100; i++) digests.push(await uploadBlob(server.url, Buffer.from(`{"part":${i},"pad":"${'x'.repeat(i)}"}`)));
    const files = Array.from({ length: 10_000 }, (_, i) => ({ path: `shards/part-${i}.json`, digest: digests[i % digests.length]! }));
    const rss = watchRss(server.proc.pid!);
    const health = pollHealth(server.url);
    const t0 = performance.now();
    const res = await call(server.url, 'POST', '/v1/models/many-files/versions', { version: '1', files });
    const seconds = (performance.now() - t0) / 1000;
    const latencies = await health.stop();
    const mem = rss.stop();
    const p99 = percentile(latencies, 99);
    process.stderr.write(`# 10,000 files: ${seconds.toFixed(1)} s, /healthz p50 ${percentile(latencies, 50).toFixed(1)} p99 ${p99.toFixed(1)} max ${Math.max(...latencies).toFixed(1)} ms over ${latencies.length}, RSS peak ${Math.round(Math.max(mem.peakMiB, mem.hwmMiB ?? 0))} MiB\n`);
    assert.equal(res.status, 201, JSON.stringify(res.body).slice(0, 500));
    assert.equal(res.body.files.length, 10_000);
    assert.equal(res.body.summary.safety.verdict, 'safe');
    assert.ok(p99 < HEALTHZ_P99_MS, `/healthz p99 ${p99.toFixed(1)} ms during a 10,000-file publish`);
  });
});
