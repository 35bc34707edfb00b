// Format analysis budgets (issue 11, item 3): analysis runs in worker
// threads, and a file whose analysis runs out of CPU, memory or reads — or
// whose publish runs out of CPU — is recorded `unknown` with the reason,
// never `safe`, never a 500; the event loop keeps answering meanwhile.
// The mechanisms are tested with detectors that misbehave on purpose
// (support/hostile-detectors.ts); the attacks of the issue with real files
// through the server (support/analysis-bombs.ts; the load test with all of
// them at once is analysis-load.test.ts). Also: the upload-time tensor layout
// (src/formats/tensor-layout.ts) stays bounded on hostile headers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findTensorLayout, MAX_LAYOUT_TENSORS, MAX_SAFETENSORS_LAYOUT_HEADER } from '../src/formats/tensor-layout.ts';
import { AnalysisPool, InvalidVersionFileError, type AnalysisLimits, type FileToAnalyze } from '../src/formats/analysis-pool.ts';
import { stoppedAnalysis, summarize } from '../src/formats/analyze.ts';
import { bufferSource } from '../src/formats/sources.ts';
import type { FileFormat } from '../src/formats/types.ts';
import { hugeHeaderSafetensors, pickleZipBomb } from './support/analysis-bombs.ts';
import { digestOf, MiB } from './support/bytes.ts';
import { bodyOf, call } from './support/http-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const HOSTILE = new URL('./support/hostile-detectors.ts', import.meta.url);

function file(path: string, data: Uint8Array, digest = digestOf(data)): FileToAnalyze {
  return { path, digest, size: data.byteLength, open: () => bufferSource(path, data) };
}

const stoppedBy = (f: FileFormat) => (f.details.analysis_stopped as { budget: string; reason: string } | undefined)?.budget;

/** Runs `work` while a 10 ms timer measures how late the event loop is; the work's result and the worst lateness. */
async function withLoopWatch<T>(work: () => Promise<T>): Promise<{ result: T; worstLagMs: number }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 10);
    last = now;
  }, 10);
  try {
    return { result: await work(), worstLagMs: worst };
  } finally {
    clearInterval(timer);
  }
}

describe('analysis pool budgets', () => {
  const pools: AnalysisPool[] = [];
  const pool = (limits: Partial<AnalysisLimits> = {}) => {
    const p = new AnalysisPool({ workers: 1, detectors: HOSTILE, ...limits });
    pools.push(p);
    return p;
  };
  after(() => Promise.all(pools.map((p) => p.close())));

  test('a file whose analysis never ends is stopped on its CPU budget: unknown, and the event loop keeps running', async () => {
    const p = pool({ fileCpuMs: 1000 });
    const { result, worstLagMs } = await withLoopWatch(() => p.analyzeVersion([file('spin.bin', Buffer.from('x'))]));
    const [spin] = result;
    assert.equal(spin!.analysis.safety.verdict, 'unknown');
    assert.equal(spin!.analysis.format, 'unknown');
    assert.equal(stoppedBy(spin!.analysis), 'cpu');
    assert.match((spin!.analysis.details.analysis_stopped as { reason: string }).reason, /CAIRN_ANALYSIS_FILE_SECONDS/);
    // on the event loop, the spin would hold it for the whole 1 s budget; half of it leaves room for a loaded machine
    assert.ok(worstLagMs < 500, `event loop ${worstLagMs.toFixed(0)} ms late while a worker spun`);
    // the pool goes on with a new worker
    const [ok] = await p.analyzeVersion([file('model.safetensors', safetensorsFile())]);
    assert.equal(ok!.analysis.format, 'safetensors');
    assert.equal(ok!.analysis.safety.verdict, 'safe');
  });

  test('the same content under several names shares one budget and stops once', async () => {
    const p = pool({ fileCpuMs: 800 });
    const data = Buffer.from('spin');
    const t0 = performance.now();
    // same name in several directories: one analysis; other names of the same content: its stop, not a new run
    const out = await p.analyzeVersion(['spin.bin', 'a/spin.bin', 'b/spin.bin', 'c/heap.bin'].map((path) => file(path, data)));
    const seconds = (performance.now() - t0) / 1000;
    // heap.bin would be stopped for memory: it is not run at all
    assert.deepEqual(out.map((f) => stoppedBy(f.analysis)), ['cpu', 'cpu', 'cpu', 'cpu']);
    assert.match((out[3]!.analysis.details.analysis_stopped as { reason: string }).reason, /the same content as spin\.bin/);
    assert.equal(p.stats().analyses, 1);
    assert.ok(seconds < 3, `${seconds.toFixed(1)} s for one content under four names`);
  });

  test('a publish has a CPU budget of its own: files past it are not analysed', async () => {
    const p = pool({ fileCpuMs: 600, publishCpuMs: 900 });
    const out = await p.analyzeVersion([file('spin.bin', Buffer.from('1')), file('spin.bin', Buffer.from('2')), file('spin.bin', Buffer.from('3'))].map((f, i) => ({ ...f, path: `${i}/spin.bin` })));
    assert.deepEqual(out.map((f) => stoppedBy(f.analysis)), ['cpu', 'publish', 'publish']);
    for (const f of out) assert.equal(f.analysis.safety.verdict, 'unknown');
    assert.match((out[2]!.analysis.details.analysis_stopped as { reason: string }).reason, /CAIRN_ANALYSIS_PUBLISH_SECONDS/);
    assert.equal(p.stats().analyses, 2, 'the third file is not started');
  });

  test('a heap that outgrows its limit kills the worker, not the server: unknown (memory)', async () => {
    const p = pool({ memoryBytes: 32 * MiB });
    const [heap] = await p.analyzeVersion([file('heap.bin', Buffer.from('x'))]);
    assert.equal(stoppedBy(heap!.analysis), 'memory');
    assert.equal(heap!.analysis.safety.verdict, 'unknown');
  });

  test('buffers a detector holds count against its memory: unknown (memory)', async () => {
    const p = pool({ memoryBytes: 48 * MiB });
    const [held] = await p.analyzeVersion([file('hold.bin', Buffer.alloc(64 * MiB, 1))]);
    assert.equal(stoppedBy(held!.analysis), 'memory', JSON.stringify(held!.analysis));
    // reading as much without keeping it is fine
    const [read] = await p.analyzeVersion([file('readall.bin', Buffer.alloc(64 * MiB, 1))]);
    assert.equal(read!.analysis.format, 'read-all');
  });

  test('reads are bounded: in total per analysis, and each one', async () => {
    const p = pool({ readBytes: 8 * MiB });
    const data = Buffer.alloc(16 * MiB, 2);
    const [all, big] = await p.analyzeVersion([file('readall.bin', data), file('big-read.bin', data)]);
    assert.equal(stoppedBy(all!.analysis), 'read');
    assert.equal(stoppedBy(big!.analysis), 'read');
  });

  test('a detector that swallows the budget error still ends unknown, never its own safe', async () => {
    const p = pool({ readBytes: 4 * MiB });
    const [f] = await p.analyzeVersion([file('swallow.bin', Buffer.alloc(16 * MiB))]);
    assert.equal(f!.analysis.safety.verdict, 'unknown');
    assert.equal(stoppedBy(f!.analysis), 'read');
  });

  test('a worker that dies mid-analysis: unknown (failed), and the pool carries on', async () => {
    const p = pool();
    const [dead, next] = await p.analyzeVersion([file('exit.bin', Buffer.from('x')), file('model.safetensors', safetensorsFile())]);
    assert.equal(stoppedBy(dead!.analysis), 'failed');
    assert.equal(next!.analysis.format, 'safetensors');
  });

  test('a worker that cannot start fails its files (unknown), without respawning in a loop', async () => {
    const p = pool({ detectors: new URL('./support/no-such-detectors.ts', import.meta.url) });
    const out = await p.analyzeVersion([file('a.bin', Buffer.from('a')), file('b.bin', Buffer.from('b'))]);
    assert.deepEqual(out.map((f) => stoppedBy(f.analysis)), ['failed', 'failed']);
    assert.equal(p.stats().analyses, 0);
  });

  test('a broken file that claims its format still refuses the version (422), with its path', async () => {
    const p = pool();
    const truncated = safetensorsFile().subarray(0, 40);
    await assert.rejects(p.analyzeVersion([file('ok.json', Buffer.from('{}')), file('w/model.safetensors', truncated)]), (err: unknown) => {
      assert.ok(err instanceof InvalidVersionFileError);
      assert.equal(err.path, 'w/model.safetensors');
      assert.equal(err.format, 'safetensors');
      return true;
    });
  });

  test('10,000 small files are analysed in seconds, off the event loop', async () => {
    const p = pool();
    const files = Array.from({ length: 10_000 }, (_, i) => file(`parts/p-${i}.json`, Buffer.from(`{"part":${i}}`)));
    const t0 = performance.now();
    const { result, worstLagMs } = await withLoopWatch(() => p.analyzeVersion(files));
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(result.length, 10_000);
    assert.equal(p.stats().analyses, 10_000);
    assert.ok(seconds < 30, `${seconds.toFixed(1)} s for 10,000 files`);
    // generous for a loaded machine: what this guards against is analysis on the loop (seconds)
    assert.ok(worstLagMs < 500, `event loop ${worstLagMs.toFixed(0)} ms late`);
  });
});

describe('a stopped analysis in the version summary', () => {
  test('is unchecked even for a file that would otherwise pass as plain data', () => {
    const files = [
      { path: 'config.json', analysis: stoppedAnalysis('cpu', 'analysis stopped') },
      { path: 'tokenizer.json', analysis: { format: 'unknown', safety: { verdict: 'unknown' as const, findings: [] }, details: {} } },
    ];
    const s = summarize(files);
    assert.equal(s.safety.verdict, 'unknown');
    assert.deepEqual(s.safety.unchecked_files, ['config.json']);
  });
});

describe('the attacks of issue 11 item 3, through the server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('fs', { analysis: { fileSeconds: 2 } });
  });
  after(() => server.stop());

  async function upload(data: Uint8Array): Promise<string> {
    const start = await call(server.url, 'POST', '/v1/uploads');
    const digest = digestOf(data);
    const res = await fetch(`${server.url}/v1/uploads/${start.body.id}?digest=${digest}`, { method: 'PUT', body: bodyOf(data) });
    assert.equal(res.status, 201, await res.text());
    return digest;
  }

  /** Publishes while /healthz is polled; the response, the seconds it took, and the healthz p99. */
  async function publishTimed(name: string, files: Array<{ path: string; digest: string }>) {
    const latencies: number[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const t = performance.now();
        const r = await fetch(`${server.url}/healthz`);
        await r.arrayBuffer();
        latencies.push(performance.now() - t);
        await new Promise((resolve) => setTimeout(resolve, 20)); // the sampling interval of the probe (the point)
      }
    })();
    const t0 = performance.now();
    const res = await call(server.url, 'POST', `/v1/models/${name}/versions`, { version: '1', files });
    const seconds = (performance.now() - t0) / 1000;
    polling = false;
    await poll;
    latencies.sort((a, b) => a - b);
    return { res, seconds, p99: latencies[Math.ceil(latencies.length * 0.99) - 1]! };
  }

  test('a 1 MiB .pt of 63 deflated 16 MiB pickles: unknown, /healthz answers meanwhile', async () => {
    const digest = await upload(pickleZipBomb());
    const { res, seconds, p99 } = await publishTimed('zip-bomb', [{ path: 'model.pt', digest }]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.files[0].safety.verdict, 'unknown');
    assert.equal(res.body.summary.safety.verdict, 'unknown');
    assert.ok(seconds < 10, `publish took ${seconds.toFixed(1)} s (2 s budget)`);
    assert.ok(p99 < 200, `/healthz p99 ${p99.toFixed(0)} ms`);
  });

  test('the same .pt named 4 times in one manifest costs one budget, not four', async () => {
    const digest = await upload(pickleZipBomb());
    const { res, seconds } = await publishTimed('zip-bomb-4', ['a.pt', 'b.pt', 'c.pt', 'd.pt'].map((path) => ({ path, digest })));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    for (const f of res.body.files) assert.equal(f.safety.verdict, 'unknown', f.path);
    assert.ok(seconds < 10, `publish took ${seconds.toFixed(1)} s (one 2 s budget for the four names)`);
  });

  // Its /healthz latency and the server's RSS are measured in analysis-load.test.ts,
  // from outside the server: here the test shares the server's heap, and the
  // garbage of building a 92 MB header costs this process its own GC pauses.
  test('a safetensors header of 1.3M tensors (92 MB): unknown (memory)', async () => {
    const digest = await upload(hugeHeaderSafetensors());
    const { res } = await publishTimed('huge-header', [{ path: 'model.safetensors', digest }]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const f = res.body.files[0];
    assert.equal(f.safety.verdict, 'unknown');
    assert.equal(f.details.analysis_stopped.budget, 'memory');
    assert.deepEqual(res.body.summary.safety.unchecked_files, ['model.safetensors']);
  });
});

describe('tensor layout at upload time stays bounded', () => {
  const safetensorsHeader = (json: string) => {
    const j = Buffer.from(json);
    const out = Buffer.alloc(8 + j.length);
    out.writeBigUInt64LE(BigInt(j.length));
    j.copy(out, 8);
    return out;
  };
  const tensors = (n: number) => `{${Array.from({ length: n }, (_, i) => `"t${i}":{"dtype":"U8","shape":[],"data_offsets":[${i},${i + 1}]}`).join(',')}}`;

  test('a 92 MB safetensors header is not buffered: no layout from its first bytes', async () => {
    const head = hugeHeaderSafetensors(1000).subarray(0, 16);
    head.writeBigUInt64LE(92_000_000n);
    assert.deepEqual(await findTensorLayout(head, false), { state: 'none' });
  });

  test('a safetensors header over 1 MiB is not parsed (JSON.parse would hold the event loop)', async () => {
    const head = safetensorsHeader(tensors(3)).subarray(0, 16);
    head.writeBigUInt64LE(BigInt(MAX_SAFETENSORS_LAYOUT_HEADER));
    assert.deepEqual(await findTensorLayout(head, false), { state: 'none' });
  });

  test(`more than ${MAX_LAYOUT_TENSORS} tensors: no layout, decided before parsing`, async () => {
    const at = safetensorsHeader(tensors(MAX_LAYOUT_TENSORS));
    assert.ok(at.length < MAX_SAFETENSORS_LAYOUT_HEADER);
    const found = await findTensorLayout(at, false);
    assert.equal(found.state, 'found');
    assert.equal(found.state === 'found' && found.layout.tensors.length, MAX_LAYOUT_TENSORS);
    assert.deepEqual(await findTensorLayout(safetensorsHeader(tensors(MAX_LAYOUT_TENSORS + 1)), false), { state: 'none' });
    assert.deepEqual(await findTensorLayout(ggufWithTensors(MAX_LAYOUT_TENSORS + 1), false), { state: 'none' });
    assert.equal((await findTensorLayout(ggufWithTensors(100), false)).state, 'found');
  });
});

/** A small valid safetensors file: one F32 tensor of 4 elements. */
function safetensorsFile(): Buffer {
  const json = Buffer.from('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}');
  const out = Buffer.alloc(8 + json.length + 16);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  return out;
}

/** The head of a GGUF v3 with `n` F32 tensors (no key/values), for the layout probe. */
function ggufWithTensors(n: number): Buffer {
  const parts: Buffer[] = [Buffer.from('GGUF')];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
  };
  parts.push(u32(3), u64(n), u64(0));
  for (let i = 0; i < n; i++) {
    const name = Buffer.from(`t${i}`);
    parts.push(u64(name.length), name, u32(1), u64(8), u32(0), u64(i * 32));
  }
  return Buffer.concat([...parts, Buffer.alloc(64)]);
}
