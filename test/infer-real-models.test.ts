// Real models through `cairn infer`: silero_vad_v5.onnx and PP-OCRv4's text
// detector from ../shared/models (next to the repository; CAIRN_SHARED_MODELS
// overrides). Fresh clones and CI do not have that folder: then this file
// skips and says so. OIP infer (JSON and binary) and TF Serving predict (row
// and columnar): every response validates against the published schemas, and
// every output equals Python onnxruntime's on the same input (max abs diff
// ≤ 1e-5); the diffs are printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { flatten, getJson, maxAbsDiff, postJson, publish, reference, refInput, shapeOf, startInfer, waitFor, type InferProcess, type RefTensor } from './support/infer.ts';
import { OIP, TF, validate, type Schema } from './support/protocol-schemas.ts';
import { pythonEnv, type PythonEnv } from './support/python.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { sharedModels } from './support/shared-models.ts';
import { PYTHON_PACKAGES } from './support/infer.ts';

const real = sharedModels(['silero_vad_v5.onnx', 'ch_PP-OCRv4_det_infer.onnx'], 'infer-real-models');
const SILERO = real.path('silero_vad_v5.onnx');
const PPOCR = real.path('ch_PP-OCRv4_det_infer.onnx');

const env = real.skip ? undefined : await pythonEnv(PYTHON_PACKAGES);
const skip = real.skip || (env && 'skip' in env ? env.skip : false);
if (env && 'skip' in env) process.stderr.write(`# infer-real-models: ${env.skip}\n`);

function seeded(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * scale + offset;
  });
}

function nest(flat: Float32Array, shape: number[]): unknown {
  let at = 0;
  const walk = (d: number): unknown => (d === shape.length ? flat[at++] : Array.from({ length: shape[d]! }, () => walk(d + 1)));
  return walk(0);
}

function check(value: unknown, schema: Schema, defs: Record<string, Schema>, what: string): void {
  const problems = validate(value, schema, defs);
  assert.deepEqual(problems, [], `${what}: ${problems.slice(0, 3).join('; ')}`);
}

const diffs: string[] = [];
/** `got` nested as `want`'s shape — or flat (OIP data, binary) when `flat`. */
function close(got: unknown, want: RefTensor, what: string, flat = false): void {
  if (!flat) assert.deepEqual(shapeOf(got), want.shape, `${what}: shape`);
  const d = maxAbsDiff(flatten(got), want.data as ArrayLike<number>);
  diffs.push(`${what}: ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `${what}: max abs diff ${d}`);
}

test('real models (silero VAD, PP-OCRv4 detector) equal Python onnxruntime over both protocols', { skip }, async (t) => {
  const py = env as PythonEnv;
  let registry: TestServer | undefined;
  let infer: InferProcess | undefined;
  const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-infer-real-'));
  try {
    registry = await startTestServer('fs');
    await publish(registry.url, 'silero-vad', '5.0.0', { 'silero_vad_v5.onnx': await fs.readFile(SILERO) }, ['production']);
    await publish(registry.url, 'ppocr-det', '4.0.0', { 'ch_PP-OCRv4_det_infer.onnx': await fs.readFile(PPOCR) });
    infer = await startInfer(['--url', registry.url, '--cache-dir', cacheDir, 'silero-vad@production', 'ppocr-det']);
    await waitFor('ready', async () => (await getJson(`${infer!.url}/v2/health/ready`)).status === 200, 120_000);
    const url = infer.url;

    // ---- silero: 512 samples at 16 kHz, a state from an earlier step
    const audio = seeded(512, 1, 0.6, -0.3);
    const state = seeded(256, 2, 0.2, -0.1);
    const [sv] = await reference(py, [
      { model: SILERO, feeds: { input: refInput('float32', [1, 512], audio), state: refInput('float32', [2, 1, 128], state), sr: refInput('int64', [], BigInt64Array.from([16000n])) } },
    ]);
    const oip = await postJson(`${url}/v2/models/silero-vad/infer`, {
      id: 'vad-1',
      inputs: [
        { name: 'input', shape: [1, 512], datatype: 'FP32', data: Array.from(audio) },
        { name: 'state', shape: [2, 1, 128], datatype: 'FP32', data: Array.from(state) },
        { name: 'sr', shape: [], datatype: 'INT64', data: [16000] },
      ],
    });
    assert.equal(oip.status, 200, JSON.stringify(oip.body));
    check(oip.body, OIP.inference_response!, OIP, 'silero OIP');
    assert.equal(oip.body.model_version, '5.0.0');
    for (const o of oip.body.outputs as Array<{ name: string; shape: number[]; data: unknown }>) {
      assert.deepEqual(o.shape, sv![o.name]!.shape);
      close(o.data, sv![o.name]!, `silero OIP ${o.name}`, true);
    }
    const columnar = await postJson(`${url}/v1/models/silero-vad:predict`, { inputs: { input: nest(audio, [1, 512]), state: nest(state, [2, 1, 128]), sr: 16000 } });
    assert.equal(columnar.status, 200, JSON.stringify(columnar.body));
    check(columnar.body, TF.predict_columnar!, TF, 'silero columnar');
    close(columnar.body.outputs.output, sv!.output!, 'silero TF columnar output');
    close(columnar.body.outputs.stateN, sv!.stateN!, 'silero TF columnar stateN');
    const row = await postJson(`${url}/v1/models/silero-vad/labels/production:predict`, { instances: [{ input: Array.from(audio), state: nest(state, [2, 1, 128]), sr: 16000 }] });
    assert.equal(row.status, 200, JSON.stringify(row.body));
    check(row.body, TF.predict_row!, TF, 'silero row');
    close(row.body.predictions.map((p: { output: unknown }) => p.output), sv!.output!, 'silero TF row output');
    close(row.body.predictions[0].stateN, sv!.stateN!, 'silero TF row stateN');

    // ---- PP-OCR detector: a 3×64×96 image in [0, 1)
    const [h, w] = [64, 96];
    const image = seeded(3 * h * w, 3);
    const [pv] = await reference(py, [{ model: PPOCR, feeds: { x: refInput('float32', [1, 3, h, w], image) } }]);
    const out = 'sigmoid_0.tmp_0';
    const pOip = await postJson(`${url}/v2/models/ppocr-det/infer`, { inputs: [{ name: 'x', shape: [1, 3, h, w], datatype: 'FP32', data: Array.from(image) }] });
    assert.equal(pOip.status, 200, JSON.stringify(pOip.body).slice(0, 300));
    check(pOip.body, OIP.inference_response!, OIP, 'ppocr OIP');
    assert.deepEqual(pOip.body.outputs[0].shape, pv![out]!.shape);
    close(pOip.body.outputs[0].data, pv![out]!, 'ppocr OIP', true);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3, h, w], datatype: 'FP32', parameters: { binary_data_size: image.byteLength } }], parameters: { binary_data_output: true } }));
    const res = await fetch(`${url}/v2/models/ppocr-det/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.byteLength) }, body: Buffer.concat([header, Buffer.from(image.buffer)]) });
    assert.equal(res.status, 200);
    const bytes = Buffer.from(await res.arrayBuffer());
    const n = Number(res.headers.get('inference-header-content-length'));
    const head = JSON.parse(bytes.subarray(0, n).toString('utf8'));
    check(head, OIP.inference_response!, { ...OIP, response_output: { ...OIP.response_output!, required: ['name', 'shape', 'datatype'] } }, 'ppocr binary header');
    close(Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset + n))), pv![out]!, 'ppocr OIP binary', true);
    const pCol = await postJson(`${url}/v1/models/ppocr-det:predict`, { inputs: nest(image, [1, 3, h, w]) });
    assert.equal(pCol.status, 200);
    check(pCol.body, TF.predict_columnar!, TF, 'ppocr columnar');
    close(pCol.body.outputs, pv![out]!, 'ppocr TF columnar');
    const pRow = await postJson(`${url}/v1/models/ppocr-det:predict`, { instances: [nest(image, [3, h, w])] });
    assert.equal(pRow.status, 200);
    check(pRow.body, TF.predict_row!, TF, 'ppocr row');
    close(pRow.body.predictions, pv![out]!, 'ppocr TF row');

    // ---- status and metadata of a real model, as TF Serving writes them
    const status = await getJson(`${url}/v1/models/ppocr-det`);
    check(status.body, TF.status!, TF, 'status');
    assert.deepEqual(status.body, { model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
    const meta = await getJson(`${url}/v1/models/silero-vad/metadata`);
    check(meta.body, TF.metadata!, TF, 'metadata');
    const sig = meta.body.metadata.signature_def.signature_def.serving_default;
    assert.deepEqual(Object.keys(sig.inputs), ['input', 'state', 'sr']);
    assert.equal(sig.inputs.sr.dtype, 'DT_INT64');
    assert.deepEqual(sig.inputs.sr.tensor_shape, { dim: [], unknown_rank: false });
    const oipMeta = await getJson(`${url}/v2/models/ppocr-det`);
    check(oipMeta.body, OIP.metadata_model_response!, OIP, 'OIP metadata');
    assert.deepEqual(oipMeta.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }]);
    t.diagnostic(`max abs diff vs Python onnxruntime: ${diffs.join('; ')}`);
  } finally {
    await infer?.stop();
    await registry?.stop();
    await fs.rm(cacheDir, { recursive: true, force: true });
  }
});
