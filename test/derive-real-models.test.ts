// LOCAL CHECK on the real models in ../shared/models (relative to the
// repository root; CAIRN_SHARED_MODELS overrides: support/shared-models.ts).
// Skipped, saying so, when they are absent (CI has none).
// Checks issue 15's bars: fp16 ≤ 0.55× with cosine ≥ 0.999 and int8 ≤ 0.35×
// with cosine ≥ 0.98 on PP-OCRv4 det, both valid under onnx.checker and run by
// ONNX Runtime (silero VAD too); prune 50% leaves every pruned weight ≥ 49.9%
// zeros; cast of ppocr-det.fp32.safetensors to BF16 equals PyTorch/ml_dtypes
// bit for bit. Prints the numbers (sizes, agreement, latency, memory).
// The last test runs the same bars through the whole pipeline: the real
// `cairn serve`, derive jobs, the published versions and their recipes in
// git, and /healthz latency while a job runs.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deriveOnnx, type OnnxParams, type OnnxReport } from '../src/derive/onnx-transforms.ts';
import { deriveSafetensors } from '../src/derive/safetensors-transforms.ts';
import { compareSafetensors } from '../src/derive/safetensors-measure.ts';
import { loadSamples, measureOnnx, type OnnxMeasurement } from '../src/derive/onnx-measure.ts';
import type { Derived } from '../src/derive/stream.ts';
import { DERIVE_PYTHON_PACKAGES, pythonVenv, type PythonEnv } from './support/python.ts';
import { diskSource, writeDerived } from './support/derive-files.ts';
import { spawnServer } from './support/child-server.ts';
import { waitForJob } from './support/derive-jobs.ts';
import { call } from './support/http-client.ts';
import { sharedModels } from './support/shared-models.ts';

const real = sharedModels(['ch_PP-OCRv4_det_infer.onnx', 'silero_vad_v5.onnx', 'ppocr-det.fp32.safetensors', 'ppocr-det.bf16.safetensors'], 'derive-real-models');
const { skip } = real;

const PPOCR = 'ch_PP-OCRv4_det_infer.onnx';
const SILERO = 'silero_vad_v5.onnx';

/** Text-like images for the detector (dark strokes on white, PP-OCR's normalisation), and audio chunks for the VAD. */
const WRITE_SAMPLES = `
import sys, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(3)
mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]; std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
images = {}
for i in range(2):
    img = np.ones((320, 320), np.float32)
    for line in range(6):
        y, x = 20 + line * 48, 16
        while x < 290:
            w, h = int(rng.integers(6, 18)), int(rng.integers(14, 22))
            img[y:y + h, x:x + w] = 0.1 * i; x += w + int(rng.integers(3, 9))
    images[f'{i}/x'] = ((img[None] - mean) / std)[None].astype(np.float32)
save_file(images, sys.argv[1])
audio = {}
t = np.arange(512) / 16000
for i in range(6):
    audio[f'{i}/input'] = (0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) * (i % 2) + 0.02 * rng.standard_normal(512))[None].astype(np.float32)
    audio[f'{i}/state'] = np.zeros((2, 1, 128), np.float32)
    audio[f'{i}/sr'] = np.array(16000, np.int64)
save_file(audio, sys.argv[2])
`;

const CHECK = `
import sys, onnx, onnxruntime as ort
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])
print('ok')
`;

const CAST_REFERENCE = `
import sys, json, numpy as np, torch, ml_dtypes
from safetensors import safe_open
a = safe_open(sys.argv[1], 'pt'); b = safe_open(sys.argv[2], 'pt'); shipped = safe_open(sys.argv[3], 'pt')
bad_torch = bad_ml = differs_shipped = 0; n = 0
for k in a.keys():
    x = a.get_tensor(k); y = b.get_tensor(k).view(torch.int16)
    bad_torch += int((x.to(torch.bfloat16).view(torch.int16) != y).sum())
    bad_ml += int((torch.from_numpy(x.numpy().astype(ml_dtypes.bfloat16).view(np.int16)) != y).sum())
    differs_shipped += int((shipped.get_tensor(k).view(torch.int16) != y).sum())
    n += x.numel()
print(json.dumps({'elements': n, 'differ_torch': bad_torch, 'differ_ml_dtypes': bad_ml, 'differ_shipped_bf16': differs_shipped, 'metadata_equal': a.metadata() == b.metadata()}))
`;

let python: PythonEnv;
/** Runs a Python script (source) with arguments; its stdout. */
const py = async (script: string, args: string[]) => (await python.run(script, args, { timeoutMs: 10 * 60_000 })).stdout;
let dir = '';
let ppocrSamples = '';
let sileroSamples = '';

/** Runs a transform to a file, sampling memory while it reads and writes. */
async function timed<R>(make: () => Promise<Derived<R>>, out: string): Promise<{ report: R; ms: number; memory: { rssMiB: number; heapMiB: number; arrayBuffersMiB: number } }> {
  const m0 = process.memoryUsage();
  const peak = { rss: 0, heap: 0, ab: 0 };
  const sample = (): void => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss - m0.rss);
    peak.heap = Math.max(peak.heap, m.heapUsed - m0.heapUsed);
    peak.ab = Math.max(peak.ab, m.arrayBuffers - m0.arrayBuffers);
  };
  const timer = setInterval(sample, 5);
  const t0 = performance.now();
  try {
    const d = await make();
    sample();
    await writeDerived(d, out);
    sample();
    const MiB = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;
    return { report: d.report(), ms: Math.round(performance.now() - t0), memory: { rssMiB: MiB(peak.rss), heapMiB: MiB(peak.heap), arrayBuffersMiB: MiB(peak.ab) } };
  } finally {
    clearInterval(timer);
  }
}

function summary(m: OnnxMeasurement): unknown {
  return {
    outputs: m.outputs.map((o) => ({ name: o.name, cosine: o.cosine, minCosine: o.minCosine, maxAbsError: o.maxAbsError, meanAbsError: o.meanAbsError })),
    latencyMs: m.latencyMs,
  };
}

async function onnxCase(t: TestContext, model: string, params: OnnxParams, samples: string): Promise<{ report: OnnxReport; measured: OnnxMeasurement; ratio: number }> {
  const parent = real.path(model);
  const out = path.join(dir, `${model}.${params.transform}.onnx`);
  const { report, ms, memory } = await timed(() => deriveOnnx(diskSource(parent), params), out);
  assert.equal((await py(CHECK, [out])).trim(), 'ok', 'onnx.checker (full) passes and ONNX Runtime loads it');
  const measured = await measureOnnx({ parent, derived: out, samples: await loadSamples(diskSource(samples)) });
  const ratio = report.size.after / report.size.before;
  t.diagnostic(JSON.stringify({ model, transform: params.transform, size: report.size, ratio: Number(ratio.toFixed(4)), checker: 'ok', ms, memory, ...(summary(measured) as object) }));
  return { report, measured, ratio };
}

describe('LOCAL CHECK: derive on the real models in ../shared/models (skipped when absent)', { skip }, () => {
  before(async () => {
    python = await pythonVenv(DERIVE_PYTHON_PACKAGES);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-derive-real-'));
    ppocrSamples = path.join(dir, 'ppocr-samples.safetensors');
    sileroSamples = path.join(dir, 'silero-samples.safetensors');
    await py(WRITE_SAMPLES, [ppocrSamples, sileroSamples]);
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('PP-OCRv4 det fp16: ≤ 0.55× the size, cosine ≥ 0.999, valid, runs', async (t) => {
    const { ratio, measured } = await onnxCase(t, PPOCR, { transform: 'fp16' }, ppocrSamples);
    assert.ok(ratio <= 0.55, `ratio ${ratio}`);
    assert.ok(measured.outputs[0]!.cosine >= 0.999, `cosine ${measured.outputs[0]!.cosine}`);
  });

  it('PP-OCRv4 det int8: ≤ 0.35× the size, cosine ≥ 0.98, valid, runs', async (t) => {
    const { ratio, measured } = await onnxCase(t, PPOCR, { transform: 'int8' }, ppocrSamples);
    assert.ok(ratio <= 0.35, `ratio ${ratio}`);
    assert.ok(measured.outputs[0]!.cosine >= 0.98, `cosine ${measured.outputs[0]!.cosine}`);
  });

  it('silero VAD v5 fp16: ≤ 0.55× the size, cosine ≥ 0.999, valid, runs', async (t) => {
    const { ratio, measured } = await onnxCase(t, SILERO, { transform: 'fp16' }, sileroSamples);
    assert.ok(ratio <= 0.55, `ratio ${ratio}`);
    for (const o of measured.outputs) assert.ok(o.cosine >= 0.999, `${o.name} cosine ${o.cosine}`);
  });

  it('silero VAD v5 int8: valid, runs in ONNX Runtime', async (t) => {
    const { measured } = await onnxCase(t, SILERO, { transform: 'int8' }, sileroSamples);
    assert.ok(measured.outputs.every((o) => Number.isFinite(o.cosine)));
  });

  for (const model of [PPOCR, SILERO]) {
    it(`${model} prune 50%: every pruned weight ≥ 49.9% zeros`, async (t) => {
      const { report } = await onnxCase(t, model, { transform: 'prune', sparsity: 0.5 }, model === PPOCR ? ppocrSamples : sileroSamples);
      assert.ok(report.transform === 'prune' && report.weights.length > 0);
      if (report.transform !== 'prune') return;
      for (const w of report.weights) assert.ok(w.sparsity >= 0.499, `${w.name}: ${w.sparsity}`);
      t.diagnostic(JSON.stringify({ model, pruned: report.weights.length, achieved: report.achieved, skipped: report.skipped.length }));
    });
  }

  it('the whole pipeline: derive jobs on a real server publish versions whose recipes (in git) hold numbers that meet the bars; /healthz stays responsive', async (t) => {
    const dataDir = path.join(dir, 'server');
    const server = await spawnServer({ dataDir });
    try {
      const publish = async (name: string, files: Record<string, string>) => {
        const form = new FormData();
        form.append('version', '1.0.0');
        for (const [p, file] of Object.entries(files)) form.append('file', new Blob([fs.readFileSync(file)]), p);
        const res = await fetch(`${server.url}/v1/models/${name}/versions`, { method: 'POST', body: form });
        assert.equal(res.status, 201, await res.text());
      };
      await publish('ppocr-det', { 'model.onnx': real.path(PPOCR), 'samples.safetensors': ppocrSamples });
      await publish('silero-vad', { 'model.onnx': real.path(SILERO), 'samples.safetensors': sileroSamples });
      await publish('ppocr-det-st', { 'model.safetensors': real.path('ppocr-det.fp32.safetensors') });

      /** Runs a derive job while probing /healthz every 10 ms; returns the recipe, the derived version and the probe latencies. */
      const job = async (name: string, body: Record<string, unknown>) => {
        const latencies: number[] = [];
        let running = true;
        const probing = (async () => {
          while (running) {
            const t0 = performance.now();
            await (await fetch(`${server.url}/healthz`)).arrayBuffer();
            latencies.push(performance.now() - t0);
            await new Promise((r) => setTimeout(r, 10));
          }
        })();
        const t0 = performance.now();
        const res = await call(server.url, 'POST', `/v1/models/${name}/versions/1.0.0/derive`, body);
        assert.equal(res.status, 202, JSON.stringify(res.body));
        const done = await waitForJob(server.url, res.body.id, {}, 600_000);
        const seconds = (performance.now() - t0) / 1000;
        running = false;
        await probing;
        assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
        const doc = (await call(server.url, 'GET', `/v1/models/${done.result.name}/versions/${done.result.version}`)).body;
        latencies.sort((a, b) => a - b);
        const healthz = { probes: latencies.length, p50: Math.round(latencies[latencies.length >> 1]! * 10) / 10, max: Math.round(latencies[latencies.length - 1]! * 10) / 10 };
        return { doc, recipe: doc.parents[0].recipe, seconds: Math.round(seconds * 10) / 10, healthz };
      };
      const check = async (name: string, version: string) => {
        const file = path.join(dir, `${name}-${version}.onnx`);
        fs.writeFileSync(file, Buffer.from(await (await fetch(`${server.url}/v1/models/${name}/versions/${version}/files/model.onnx`)).arrayBuffer()));
        assert.equal((await py(CHECK, [file])).trim(), 'ok', `${name}@${version}: onnx.checker (full) passes and ONNX Runtime loads it`);
      };
      const report = (label: string, r: Awaited<ReturnType<typeof job>>) => {
        const f = r.recipe.results.files[0];
        t.diagnostic(JSON.stringify({ job: label, seconds: r.seconds, size: f.size, stored: f.stored, transform: f.transform.weights !== undefined ? { weights: f.transform.weights, min_sparsity: f.transform.min_sparsity } : undefined, outputs: f.measured.outputs?.map((o: any) => ({ name: o.name, cosine: o.cosine, max_abs_error: o.max_abs_error })), max_abs_error: f.measured.max_abs_error, latency_ms: f.measured.latency_ms, healthz_ms: r.healthz }));
      };

      const fp16 = await job('ppocr-det', { op: 'fp16', samples: 'samples.safetensors' });
      report('ppocr-det fp16', fp16);
      assert.ok(fp16.recipe.results.files[0].size.ratio <= 0.55);
      assert.ok(fp16.recipe.results.files[0].measured.cosine_min >= 0.999);
      await check('ppocr-det', '1.0.0-fp16');
      const int8 = await job('ppocr-det', { op: 'int8', samples: 'samples.safetensors' });
      report('ppocr-det int8', int8);
      t.diagnostic(`the recipe of ppocr-det@1.0.0-int8: ${JSON.stringify(int8.recipe)}`);
      assert.ok(int8.recipe.results.files[0].size.ratio <= 0.35);
      assert.ok(int8.recipe.results.files[0].measured.cosine_min >= 0.98);
      await check('ppocr-det', '1.0.0-int8');
      const prune = await job('ppocr-det', { op: 'prune', params: { sparsity: 0.5 }, samples: 'samples.safetensors' });
      report('ppocr-det prune 50%', prune);
      for (const w of prune.recipe.results.files[0].transform.tensors) assert.ok(w.sparsity >= 0.499, `${w.name}: ${w.sparsity}`);
      assert.ok(prune.recipe.results.files[0].stored.after < prune.recipe.results.files[0].stored.before);
      await check('ppocr-det', '1.0.0-prune50');
      const sileroFp16 = await job('silero-vad', { op: 'fp16', samples: 'samples.safetensors' });
      report('silero-vad fp16', sileroFp16);
      assert.ok(sileroFp16.recipe.results.files[0].size.ratio <= 0.55);
      assert.ok(sileroFp16.recipe.results.files[0].measured.cosine_min >= 0.999);
      await check('silero-vad', '1.0.0-fp16');
      const sileroInt8 = await job('silero-vad', { op: 'int8', samples: 'samples.safetensors' });
      report('silero-vad int8', sileroInt8);
      await check('silero-vad', '1.0.0-int8');
      const cast = await job('ppocr-det-st', { op: 'cast', params: { to: 'BF16' } });
      report('ppocr-det.fp32.safetensors cast BF16', cast);
      const castFile = path.join(dir, 'pipeline-cast.safetensors');
      fs.writeFileSync(castFile, Buffer.from(await (await fetch(`${server.url}/v1/models/ppocr-det-st/versions/1.0.0-bf16/files/model.safetensors`)).arrayBuffer()));
      const ref = JSON.parse(await py(CAST_REFERENCE, [real.path('ppocr-det.fp32.safetensors'), castFile, real.path('ppocr-det.bf16.safetensors')])) as Record<string, number | boolean>;
      assert.equal(ref.differ_torch, 0, 'the stored BF16 file equals torch.to(bfloat16) bit for bit');
      assert.equal(ref.differ_ml_dtypes, 0);

      // the numbers are in git: the lineage file of each version, read with git from lineage.git
      let history: any;
      const deadline = Date.now() + 30_000;
      do {
        history = (await call(server.url, 'GET', '/v1/models/ppocr-det/history')).body;
        // the ids are there from the publish on; git has the commits once the mirror has written them
        const newest = history.events[0]?.commit;
        if (newest && spawnSync('git', ['--git-dir', path.join(dataDir, 'lineage.git'), 'cat-file', '-e', `${newest}^{commit}`]).status === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      } while (Date.now() < deadline);
      const commit = history.events.find((e: any) => e.version === '1.0.0-int8').commit;
      const file = JSON.parse(execFileSync('git', ['--git-dir', path.join(dataDir, 'lineage.git'), 'show', `${commit}:models/ppocr-det/versions/1.0.0-int8.json`], { encoding: 'utf8' }));
      assert.equal(file.parents[0].relation, 'quantized-from');
      assert.deepEqual(file.parents[0].recipe.results, int8.recipe.results);
    } finally {
      await server.stop();
    }
  });

  it('ppocr-det.fp32.safetensors cast to BF16 equals PyTorch and ml_dtypes bit for bit', async (t) => {
    const parent = real.path('ppocr-det.fp32.safetensors');
    const out = path.join(dir, 'ppocr-det.bf16.derived.safetensors');
    const { report, ms, memory } = await timed(() => deriveSafetensors(diskSource(parent), { transform: 'cast', to: 'BF16' }), out);
    const ref = JSON.parse(await py(CAST_REFERENCE, [parent, out, real.path('ppocr-det.bf16.safetensors')])) as Record<string, number | boolean>;
    assert.equal(ref.differ_torch, 0);
    assert.equal(ref.differ_ml_dtypes, 0);
    assert.equal(ref.metadata_equal, true);
    const rt = await compareSafetensors(diskSource(parent), diskSource(out));
    t.diagnostic(JSON.stringify({ file: 'ppocr-det.fp32.safetensors', transform: 'cast BF16', size: report.size, ratio: report.size.after / report.size.before, ms, memory, overflowToInf: report.overflowToInf, reference: ref, roundTripMaxAbsError: rt.maxAbsError }));
    for (const params of [{ transform: 'int8' }, { transform: 'prune', sparsity: 0.5 }] as const) {
      const file = path.join(dir, `ppocr-det.${params.transform}.safetensors`);
      const r = await timed(() => deriveSafetensors(diskSource(parent), params), file);
      const trip = await compareSafetensors(diskSource(parent), diskSource(file));
      if (params.transform === 'prune') for (const c of r.report.changed) assert.ok(c.sparsity! >= 0.499, `${c.name}: ${c.sparsity}`);
      t.diagnostic(JSON.stringify({ file: 'ppocr-det.fp32.safetensors', transform: params.transform, size: r.report.size, ratio: r.report.size.after / r.report.size.before, ms: r.ms, memory: r.memory, roundTripMaxAbsError: trip.maxAbsError, sparsity: r.report.sparsity }));
    }
  });
});
