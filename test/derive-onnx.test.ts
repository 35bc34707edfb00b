// ONNX transforms on models built by Python's onnx in the test: each result
// passes onnx.checker's full check, runs in ONNX Runtime (Python) and, through
// onnxruntime-node, agrees with the parent as measured by Python on the same
// samples; weights are where they should be (float16 / int8 with per-channel
// DequantizeLinear / magnitude-pruned); outputs are byte-identical across
// runs; a 256 MiB initializer streams through in bounded memory.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deriveOnnx, type OnnxParams, type OnnxReport } from '../src/derive/onnx-transforms.ts';
import { deriveFile } from '../src/derive/index.ts';
import { loadSamples, measureOnnx, type OnnxMeasurement } from '../src/derive/onnx-measure.ts';
import { CairnError } from '../src/errors.ts';
import { bufferSource } from '../src/formats/sources.ts';
import { diskSource, writeDerived } from './support/derive-files.ts';
import { assertPeakGrowsSlowly, runInChild } from './support/process-memory.ts';
import { DERIVE_PYTHON_PACKAGES, pythonVenv, type PythonEnv } from './support/python.ts';
import { BUILD_EDGE_MODEL, BUILD_MODEL, CHECK_DERIVED, WRITE_SAMPLES } from './support/derive-onnx-models.ts';

interface Checked {
  checker: string;
  inputs: Record<string, string>;
  outputs: Record<string, { type: string; max: number; mean: number; cosine: number }>;
  opset: number;
  ops: Record<string, number>;
  tensors: Record<string, [number, number[]]>;
  nodes: Record<string, { op: string; inputs: string[]; outputs: string[]; attrs: Record<string, unknown> }>;
  weights: Record<string, { axis: number; q_dtype: string; max_error_over_half_scale: number; scale_is_max_over_127: boolean }>;
  zeros: Record<string, { zeros: number; only_zeroed: boolean; order_ok: boolean }>;
}

const DERIVE_FILES = new URL('./support/derive-files.ts', import.meta.url);
let python: PythonEnv;
/** Runs a Python script (source) with arguments; its stdout. */
const py = async (script: string, args: string[]) => (await python.run(script, args)).stdout;
let dir = '';
let samples = '';
const models: Record<string, string> = {};

async function derive(model: string, params: OnnxParams, tag: string): Promise<{ file: string; sha: string; report: OnnxReport }> {
  const d = await deriveOnnx(diskSource(models[model]!), params);
  const file = path.join(dir, `${model}.${tag}.onnx`);
  const sha = await writeDerived(d, file);
  assert.equal(fs.statSync(file).size, d.size);
  return { file, sha, report: d.report() };
}

async function check(parent: string, derived: string, inputs = samples): Promise<Checked> {
  return JSON.parse(await py(CHECK_DERIVED, [parent, derived, inputs])) as Checked;
}

/** The TypeScript measurement agrees with Python's on the same samples and runtime. */
function assertMeasurementsAgree(ts: OnnxMeasurement, py: Checked): void {
  for (const o of ts.outputs) {
    const p = py.outputs[o.name]!;
    assert.ok(Math.abs(o.cosine - p.cosine) < 1e-9, `${o.name} cosine ${o.cosine} vs ${p.cosine}`);
    assert.ok(Math.abs(o.maxAbsError - p.max) <= 1e-9 * Math.max(1, p.max), `${o.name} max ${o.maxAbsError} vs ${p.max}`);
    assert.ok(Math.abs(o.meanAbsError - p.mean) <= 1e-9 * Math.max(1, p.mean), `${o.name} mean ${o.meanAbsError} vs ${p.mean}`);
  }
  assert.ok(ts.latencyMs.parent > 0 && ts.latencyMs.derived > 0);
}

describe('derive: ONNX', () => {
  before(async () => {
    python = await pythonVenv(DERIVE_PYTHON_PACKAGES);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-derive-onnx-'));
    const build = async (name: string, ...args: string[]) => {
      models[name] = path.join(dir, `${name}.onnx`);
      await py(BUILD_MODEL, [models[name]!, ...args]);
    };
    await build('opset13', '13', '1');
    await build('opset11', '11', '0');
    await build('opset11-softmax', '11', '1');
    samples = path.join(dir, 'samples.safetensors');
    await py(WRITE_SAMPLES, [samples, '6']);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('fp16: float16 inside, float32 at the edges and around float32-only operators; valid, runs, agrees', async () => {
    const { file, sha, report } = await derive('opset13', { transform: 'fp16' }, 'fp16');
    const c = await check(models.opset13!, file);
    assert.equal(c.checker, 'ok');
    assert.deepEqual(c.inputs, { x: 'tensor(float)' });
    assert.equal(c.outputs.probs!.type, 'tensor(float)');
    assert.equal(c.outputs.label!.type, 'tensor(int64)');
    const F16 = 10;
    const F32 = 1;
    for (const name of ['W1', 'B1', 'W2', 'W3', 'B3', 'W4', 'B4', 'Wt', 'We', 'bn_gain', 'thresh']) assert.equal(c.tensors[name]![0], F16, `${name} is float16`);
    // Resize's roi/scales and the batch norm whose variance does not fit float16 stay float32
    for (const name of ['roi', 'scales', 'bn_var', 'bn_mean', 'bn_scale', 'bn_bias']) assert.equal(c.tensors[name]![0], F32, `${name} stays float32`);
    assert.equal(c.tensors.zero![0], 7, 'int64 constants untouched');
    assert.equal(c.nodes.cast_batch!.attrs.to, F16, 'Cast to float becomes Cast to float16');
    assert.equal(report.transform, 'fp16');
    if (report.transform !== 'fp16') return;
    assert.deepEqual(report.blockedForRange, ['bn (BatchNormalization)']);
    assert.equal(report.blocked.Resize, 1);
    assert.ok(report.castsInserted >= 5);
    assert.ok(c.outputs.probs!.cosine > 0.999, `cosine ${c.outputs.probs!.cosine}`);
    assert.ok(report.size.after < report.size.before * 0.55, `${report.size.after} of ${report.size.before}`);
    const measured = await measureOnnx({ parent: models.opset13!, derived: file, samples: await loadSamples(diskSource(samples)) });
    assert.equal(measured.samples.count, 6);
    assertMeasurementsAgree(measured, c);
    assert.equal((await derive('opset13', { transform: 'fp16' }, 'fp16-again')).sha, sha, 'deterministic');
  });

  it('fp16 edge cases: outputs from a Constant and from a value other nodes read, ConstantOfShape without a value, a Loop carrying float state', async () => {
    const edge = path.join(dir, 'edge.onnx');
    const edgeSamples = path.join(dir, 'edge-samples.safetensors');
    await py(BUILD_EDGE_MODEL, [edge, edgeSamples]);
    models.edge = edge;
    const { file } = await derive('edge', { transform: 'fp16' }, 'fp16');
    const c = await check(edge, file, edgeSamples);
    assert.equal(c.checker, 'ok');
    assert.deepEqual(c.inputs, { x: 'tensor(float)', n: 'tensor(int64)' });
    for (const [name, o] of Object.entries(c.outputs)) {
      assert.equal(o.type, 'tensor(float)', `${name} stays float32`);
      assert.ok(o.cosine > 0.9999, `${name}: cosine ${o.cosine}`);
    }
    assert.equal(c.tensors.bias![0], 10);
    assert.equal(c.tensors.half![0], 10, 'the Loop body computes in float16');
    assertMeasurementsAgree(await measureOnnx({ parent: edge, derived: file, samples: await loadSamples(diskSource(edgeSamples)) }), c);
  });

  it('int8: per-channel DequantizeLinear for Conv (initializer and Constant), MatMul, Gemm transB, If branches; valid, runs, agrees', async () => {
    const { file, sha, report } = await derive('opset13', { transform: 'int8' }, 'int8');
    const c = await check(models.opset13!, file);
    assert.equal(c.checker, 'ok');
    assert.equal(report.transform, 'int8');
    if (report.transform !== 'int8') return;
    assert.equal(report.dequantize, 'DequantizeLinear');
    const axes = Object.fromEntries(Object.entries(c.weights).map(([k, w]) => [k, w.axis]));
    assert.deepEqual(axes, { W1: 0, W2: 0, W3: 1, W4: 0, Wt: 1, We: 1 });
    for (const [name, w] of Object.entries(c.weights)) {
      assert.equal(w.q_dtype, 'int8');
      assert.ok(w.scale_is_max_over_127, `${name}: scale = max|w| / 127 per channel`);
      assert.ok(w.max_error_over_half_scale <= 1 + 1e-6, `${name}: dequantised within half a step (${w.max_error_over_half_scale})`);
    }
    assert.ok(c.outputs.probs!.cosine > 0.98, `cosine ${c.outputs.probs!.cosine}`);
    const measured = await measureOnnx({ parent: models.opset13!, derived: file, samples: await loadSamples(diskSource(samples)) });
    assertMeasurementsAgree(measured, c);
    assert.equal((await derive('opset13', { transform: 'int8' }, 'int8-again')).sha, sha, 'deterministic');
  });

  it('int8 at opset 11: moved to opset 13 when no operator changes meaning; Cast + Mul when one does (Softmax)', async () => {
    const moved = await derive('opset11', { transform: 'int8' }, 'int8');
    const c = await check(models.opset11!, moved.file);
    assert.equal(c.checker, 'ok');
    assert.equal(c.opset, 13);
    assert.equal(Object.keys(c.weights).length, 6);
    assert.ok(c.outputs.probs!.cosine > 0.98);
    const kept = await derive('opset11-softmax', { transform: 'int8' }, 'int8');
    const k = await check(models['opset11-softmax']!, kept.file);
    assert.equal(k.checker, 'ok');
    assert.equal(k.opset, 11);
    assert.equal(k.ops.DequantizeLinear, undefined);
    assert.equal(kept.report.transform === 'int8' && kept.report.dequantize, 'Cast+Mul');
    assert.ok(k.tensors.W1_quantized && k.tensors.W1_quantized[0] === 3, 'W1 stored as int8');
    assert.ok(k.outputs.probs!.cosine > 0.98);
  });

  it('prune 50%: every weight ≥ 50% zeros, the smallest magnitudes, nothing else touched; valid and runs', async () => {
    const { file, sha, report } = await derive('opset13', { transform: 'prune', sparsity: 0.5 }, 'prune');
    const c = await check(models.opset13!, file);
    assert.equal(c.checker, 'ok');
    assert.equal(report.transform, 'prune');
    if (report.transform !== 'prune') return;
    assert.deepEqual(report.weights.map((w) => w.name).sort(), ['W1', 'W2', 'W3', 'W4', 'We', 'Wt']);
    for (const w of report.weights) {
      const z = c.zeros[w.name]!;
      assert.ok(z.zeros >= 0.5 && z.only_zeroed && z.order_ok, `${w.name}: ${JSON.stringify(z)}`);
      assert.equal(w.sparsity, z.zeros, 'reported sparsity is the measured one');
    }
    assert.ok(report.achieved >= 0.5);
    assert.equal(c.zeros.bn_var, undefined, '1-D tensors are not weights');
    assert.equal(report.size.after, report.size.before, 'pruned weights stay dense');
    const measured = await measureOnnx({ parent: models.opset13!, derived: file, samples: { count: 3, seed: 9 } });
    assert.equal(measured.samples.source, 'generated');
    assert.deepEqual(measured.samples.shapes, { x: [1, 3, 16, 16] });
    assert.ok(measured.outputs.every((o) => o.cosine > 0 && o.cosine <= 1 + 1e-12));
    assert.equal((await derive('opset13', { transform: 'prune', sparsity: 0.5 }, 'prune-again')).sha, sha, 'deterministic');
  });

  it('rejects unknown transforms, broken models and external data with clear errors', async () => {
    const src = diskSource(models.opset13!);
    await assert.rejects(deriveOnnx(src, { transform: 'fp8' } as never), (e: unknown) => e instanceof CairnError && e.code === 'INVALID_ARGUMENT');
    await assert.rejects(deriveOnnx(src, { transform: 'prune', sparsity: -1 }), /sparsity/);
    const bytes = fs.readFileSync(models.opset13!);
    await assert.rejects(deriveOnnx(bufferSource('m.onnx', bytes.subarray(0, bytes.length - 1000)), { transform: 'fp16' }), (e: unknown) => e instanceof CairnError && e.code === 'INVALID_MODEL_FILE');
    const external = path.join(dir, 'external.onnx');
    await py(`import onnx, sys\nm = onnx.load(sys.argv[1])\nonnx.save(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='w.bin', size_threshold=1024)`, [models.opset13!, external]);
    await assert.rejects(deriveOnnx(diskSource(external), { transform: 'int8' }), /external data/);
  });

  it('streams: a 256 MiB initializer is converted without being held in memory (measured in a child process, against a 64 MiB one)', async (t) => {
    const runs: Array<{ bytes: number; peakMiB: number }> = [];
    // sizes past the collector's external-memory threshold, so both runs hold the same garbage before it runs
    for (const floats of [16 << 20, 64 << 20]) {
      const big = path.join(dir, `big-${floats}.onnx`);
      await py(BUILD_MODEL, [big, '13', '0', String(floats)]);
      const run = await runInChild<{ inputSize: number; size: number; bytes: number }>(DERIVE_FILES, 'deriveOnnxFile', [big, { transform: 'fp16' }]);
      assert.equal(run.result.bytes, run.result.size);
      assert.ok(run.result.size < run.result.inputSize * 0.55);
      runs.push({ bytes: run.result.inputSize, peakMiB: run.peakMiB });
    }
    t.diagnostic(assertPeakGrowsSlowly('fp16 of one big initializer', runs[0]!, runs[1]!));
  });
});

describe('derive: deriveFile', () => {
  it('routes by format and refuses a transform the format has not', async () => {
    const bytes = new Uint8Array(8);
    await assert.rejects(deriveFile(bufferSource('m.onnx', bytes), 'onnx', { transform: 'cast', to: 'BF16' }), /cast applies to safetensors files; m.onnx is onnx/);
    await assert.rejects(deriveFile(bufferSource('m.safetensors', bytes), 'safetensors', { transform: 'fp16' }), /fp16 applies to onnx files/);
    await assert.rejects(deriveFile(bufferSource('m.bin', bytes), 'pytorch', { transform: 'int8' }), /int8 applies to onnx and safetensors files/);
    await assert.rejects(deriveFile(bufferSource('m.onnx', bytes), 'onnx', { transform: 'distill' } as never), /unknown transform "distill"/);
  });
});
