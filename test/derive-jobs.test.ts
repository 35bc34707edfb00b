// Derived versions end to end, through a real server (fs and S3): a derive
// request is a job; the job transforms the parent's files in a worker thread,
// measures the result against the parent and publishes it like any version —
// every parent file carried over, the transformed ones replaced, a lineage
// edge whose recipe holds the measured numbers (in the version document and,
// read with the real git CLI, in lineage.git), a webhook. Then idempotency,
// bad requests, a derivation that cannot be measured, access with tokens, the
// CLI (`cairn derive`, `cairn show`) and the web UI's version page.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { main } from '../src/cli.ts';
import { bearer, createToken, publish as publishOne, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { browserUnavailable, launchChromium, screenshotPath } from './support/browser.ts';
import { floatSafetensors, mlpOnnx, mlpSamples, waitForJob } from './support/derive-jobs.ts';
import { assertError, call, publishForm, sleep } from './support/http-client.ts';
import { getJson, startInfer, waitFor } from './support/infer.ts';
import { startTestServer, storageKinds, type TestServer } from './support/server.ts';

const MODEL = mlpOnnx({ inputs: 16, hidden: 256, outputs: 8 });
const SAMPLES = mlpSamples(3);
const WEIGHTS = floatSafetensors([
  { name: 'layer.0.weight', shape: [128, 64] },
  { name: 'layer.0.bias', shape: [128] },
  { name: 'layer.1.weight', shape: [64, 128] },
  { name: 'steps', shape: [1], dtype: 'I64', data: new Uint8Array(8).fill(1) },
]);
const README = Buffer.from('# mlp\nA small model for the derive tests.\n');

async function publishParent(base: string, name: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await publishForm(
    base,
    name,
    { version: '1.0.0' },
    [
      { path: 'model.onnx', data: MODEL },
      { path: 'samples.safetensors', data: SAMPLES },
      { path: 'weights.safetensors', data: WEIGHTS },
      { path: 'README.md', data: README },
    ],
    { headers },
  );
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function derive(base: string, name: string, ref: string, body: unknown, headers: Record<string, string> = {}) {
  return call(base, 'POST', `/v1/models/${name}/versions/${ref}/derive`, body, headers);
}

async function fileBytes(base: string, name: string, version: string, file: string, headers: Record<string, string> = {}): Promise<Buffer> {
  const res = await fetch(`${base}/v1/models/${name}/versions/${version}/files/${file}`, { headers });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

/** The tensors of a safetensors file: name → dtype, shape, bytes. */
function tensorsOf(file: Buffer): Map<string, { dtype: string; shape: number[]; data: Buffer }> {
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString()) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; data: Buffer }>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    out.set(k, { dtype: v.dtype, shape: v.shape, data: file.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) });
  }
  return out;
}

/** y of the MLP on one input, with ONNX Runtime in this process. */
async function runMlp(model: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [1, x.length]) });
    return out.y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

/** The lineage file of `name@version` as the real git CLI reads it from lineage.git, once the mirror has written it. */
async function gitVersionFile(server: { url: string; dataDir: string }, name: string, version: string): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const history = await call(server.url, 'GET', `/v1/models/${name}/history`);
    const commit = history.body.events.find((e: any) => e.event === 'publish' && e.version === version)?.commit;
    // the id is there from the publish on; git has the commit once the mirror has written it
    if (commit && spawnSync('git', ['--git-dir', path.join(server.dataDir, 'lineage.git'), 'cat-file', '-e', `${commit}^{commit}`]).status === 0) {
      const text = execFileSync('git', ['--git-dir', path.join(server.dataDir, 'lineage.git'), 'show', `${commit}:models/${name}/versions/${version}.json`], { encoding: 'utf8' });
      return JSON.parse(text);
    }
    if (Date.now() > deadline) throw new Error(`no lineage commit for ${name}@${version}`);
    await sleep(100);
  }
}

async function receiver() {
  const got: any[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      got.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

for (const storage of storageKinds) {
  describe(`derive jobs over HTTP (${storage})`, () => {
    let server: TestServer;
    let hook: Awaited<ReturnType<typeof receiver>>;
    let parent: any;

    before(async () => {
      server = await startTestServer(storage, { webhookAllowPrivate: true }, { webhookTiming: { retryMs: 50, timeoutMs: 2000, maxAttempts: 3 } });
      hook = await receiver();
      assert.equal((await call(server.url, 'POST', '/v1/webhooks', { url: hook.url, events: ['publish'] })).status, 201);
      parent = await publishParent(server.url, 'mlp');
    });
    after(async () => {
      await server?.stop();
      await hook?.close();
    });

    test('fp16: 202 and a job; the version it publishes holds every parent file, model.onnx replaced, with a measured lineage recipe in the document and in git', async () => {
      const res = await derive(server.url, 'mlp', '1.0.0', { op: 'fp16', samples: 'samples.safetensors' });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.headers.get('location'), `/v1/jobs/${res.body.id}`);
      assert.match(res.body.id, /^[0-9a-f]{24}$/);
      assert.ok(['queued', 'running'].includes(res.body.state));
      assert.deepEqual(res.body.target, { name: 'mlp', version: '1.0.0-fp16' }, 'default target: same model, <version>-<op>');
      assert.deepEqual(res.body.files, ['model.onnx']);
      assert.equal(res.body.progress.total, MODEL.byteLength);
      assert.deepEqual(res.body.params, { minPositive: 1e-7, maxFinite: 1e4, opBlockList: [], nodeBlockList: [] }, 'defaults filled in');

      const job = await waitForJob(server.url, res.body.id);
      assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
      assert.deepEqual(job.progress, { bytes: MODEL.byteLength, total: MODEL.byteLength, phase: '' });
      assert.equal(job.attempts, 1);
      const doc = (await call(server.url, 'GET', '/v1/models/mlp/versions/1.0.0-fp16')).body;
      assert.equal(job.result.digest, doc.digest);

      // every parent file: model.onnx replaced, the rest carried over by digest
      const byPath = (v: any) => Object.fromEntries(v.files.map((f: any) => [f.path, f]));
      const before = byPath(parent);
      const after = byPath(doc);
      assert.deepEqual(Object.keys(after).sort(), Object.keys(before).sort());
      for (const p of ['samples.safetensors', 'weights.safetensors', 'README.md']) assert.equal(after[p].digest, before[p].digest, p);
      assert.notEqual(after['model.onnx'].digest, before['model.onnx'].digest);
      assert.equal(after['model.onnx'].format, 'onnx', 'published like any version: format analysis');
      assert.ok(after['model.onnx'].dtypes.float16 > 0, JSON.stringify(after['model.onnx'].dtypes));
      assert.equal(after['model.onnx'].safety.verdict, 'safe');

      // the lineage edge and its recipe
      assert.equal(doc.parents.length, 1);
      const edge = doc.parents[0];
      assert.deepEqual([edge.name, edge.version, edge.digest, edge.relation], ['mlp', '1.0.0', parent.digest, 'converted-from']);
      const r = edge.recipe;
      assert.equal(r.transform, 'fp16');
      assert.deepEqual(r.files, ['model.onnx']);
      assert.deepEqual(r.samples, { file: 'samples.safetensors' });
      assert.match(r.key, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(r.tool, { name: 'cairn derive', derive_version: 1, onnxruntime: 'onnxruntime-node 1.30.0' });
      const f = r.results.files[0];
      assert.equal(f.path, 'model.onnx');
      assert.equal(f.size.before, MODEL.byteLength);
      assert.equal(f.size.after, after['model.onnx'].size);
      assert.ok(f.size.ratio < 0.6, `fp16 about halves the model: ${f.size.ratio}`);
      assert.ok(f.stored.after > 0 && f.stored.after < f.stored.before, JSON.stringify(f.stored));
      assert.equal(f.measured.samples.count, 3);
      assert.equal(f.measured.samples.source, 'file');
      assert.equal(f.measured.outputs[0].name, 'y');
      assert.ok(f.measured.outputs[0].cosine >= 0.999, `cosine ${f.measured.outputs[0].cosine}`);
      assert.ok(f.measured.outputs[0].max_abs_error > 0, 'fp16 is not exact: the error is measured, not assumed');
      assert.ok(f.measured.latency_ms.parent > 0 && f.measured.latency_ms.derived > 0);
      assert.equal(f.measured.latency_ms.runs, 9, '3 samples × 3 timed runs');
      assert.equal(r.results.size.before, parent.size);
      assert.equal(r.results.size.after, doc.size);
      assert.ok(r.results.stored.new > 0 && r.results.stored.new <= r.results.stored.after);

      // measured, not claimed: ONNX Runtime here agrees
      const x = new Float32Array(16).map((_, i) => Math.sin(i + 1));
      const a = await runMlp(MODEL, x);
      const b = await runMlp(await fileBytes(server.url, 'mlp', '1.0.0-fp16', 'model.onnx'), x);
      assert.ok(cosine(a, b) >= 0.999, `cosine ${cosine(a, b)}`);

      // the same recipe in lineage.git, read with git itself
      const file = await gitVersionFile(server, 'mlp', '1.0.0-fp16');
      assert.deepEqual(file.parents, doc.parents);
      // and a webhook: published like any version
      await waitFor('the publish webhook of the derived version', () => hook.got.some((e) => e.version === '1.0.0-fp16'), 10_000);
      assert.ok(hook.got.some((e) => e.event === 'publish' && e.model === 'mlp' && e.version === '1.0.0-fp16'), JSON.stringify(hook.got));
      assert.equal((await call(server.url, 'GET', `/v1/jobs/${job.id}`)).body.result.version, '1.0.0-fp16');
    });

    test('idempotent: the same op and parameters on the same parent answer 200 with the job and version made before', async () => {
      const first = await derive(server.url, 'mlp', '1.0.0', { op: 'fp16', samples: 'samples.safetensors' });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.state, 'succeeded');
      assert.equal(first.body.result.version, '1.0.0-fp16');
      // by digest, with the defaults spelled out and another target named: the same derivation
      const same = await derive(server.url, 'mlp', parent.digest, { op: 'fp16', params: { minPositive: 1e-7 }, to: 'mlp-other@9.9.9' });
      assert.equal(same.status, 200);
      assert.equal(same.body.id, first.body.id);
      assert.equal((await call(server.url, 'GET', '/v1/models/mlp-other')).status, 404, 'nothing new was made');
      const versions = (await call(server.url, 'GET', '/v1/models/mlp/versions')).body.versions.map((v: any) => v.version);
      assert.equal(versions.filter((v: string) => v === '1.0.0-fp16').length, 1);
      // other parameters: another derivation
      const other = await derive(server.url, 'mlp', '1.0.0', { op: 'fp16', params: { opBlockList: ['Relu'] }, samples: 'samples.safetensors', to: 'mlp@1.0.0-fp16-relu32' });
      assert.equal(other.status, 202);
      assert.notEqual(other.body.id, first.body.id);
      const again = await derive(server.url, 'mlp', '1.0.0', { op: 'fp16', params: { opBlockList: ['Relu'] }, samples: 'samples.safetensors', to: 'mlp@1.0.0-fp16-relu32' });
      assert.equal(again.body.id, other.body.id, 'while it is queued or running, asking again answers with it');
      assert.equal((await waitForJob(server.url, other.body.id)).state, 'succeeded');
    });
  });
}

describe('derive jobs: each op, bad requests, failures (fs)', () => {
  let server: TestServer;
  let parent: any;
  before(async () => {
    server = await startTestServer('fs');
    parent = await publishParent(server.url, 'base');
  });
  after(async () => {
    await server?.stop();
  });

  test('int8 into another model: quantized-from, ONNX and safetensors weights both quantized and measured', async () => {
    const res = await derive(server.url, 'base', '1.0.0', { op: 'int8', samples: 'samples.safetensors', to: 'base-int8@1.0.0', message: 'int8 weights' });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body.files, ['model.onnx', 'weights.safetensors'], 'every file of a format int8 applies to, not the samples file');
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const doc = (await call(server.url, 'GET', '/v1/models/base-int8/versions/1.0.0')).body;
    assert.equal(doc.message, 'int8 weights');
    assert.equal(doc.parents[0].relation, 'quantized-from');
    const [onnxFile, stFile] = doc.parents[0].recipe.results.files;
    assert.ok(onnxFile.size.ratio < 0.4, `int8 ONNX ${onnxFile.size.ratio}`);
    assert.ok(onnxFile.measured.outputs[0].cosine >= 0.99, `cosine ${onnxFile.measured.outputs[0].cosine}`);
    assert.equal(onnxFile.transform.weights, 2);
    assert.equal(stFile.format, 'safetensors');
    const w = stFile.measured.tensors.find((t: any) => t.name === 'layer.0.weight');
    assert.equal(w.to, 'I8');
    assert.ok(w.max_abs_error > 0 && w.max_abs_error < 0.05, `per-tensor round-trip error ${w.max_abs_error}`);
    assert.equal(stFile.measured.tensors.find((t: any) => t.name === 'steps').identical, true, 'integer tensors kept byte for byte');
    const tensors = tensorsOf(await fileBytes(server.url, 'base-int8', '1.0.0', 'weights.safetensors'));
    assert.equal(tensors.get('layer.0.weight')!.dtype, 'I8');
    assert.deepEqual(tensors.get('layer.0.weight.scale')!.shape, [128]);
  });

  test('cast to BF16: every F32 tensor is its float32 value rounded to nearest even (the bfloat16 of PyTorch and ml_dtypes)', async () => {
    const res = await derive(server.url, 'base', '1.0.0', { op: 'cast', files: ['weights.safetensors'] });
    assert.deepEqual(res.body.target, { name: 'base', version: '1.0.0-bf16' });
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const doc = (await call(server.url, 'GET', '/v1/models/base/versions/1.0.0-bf16')).body;
    assert.equal(doc.parents[0].relation, 'converted-from');
    assert.equal(doc.parents[0].recipe.samples, null, 'no ONNX file: no inputs');
    const before = tensorsOf(Buffer.from(WEIGHTS));
    const after = tensorsOf(await fileBytes(server.url, 'base', '1.0.0-bf16', 'weights.safetensors'));
    for (const [name, t] of before) {
      const d = after.get(name)!;
      if (t.dtype !== 'F32') {
        assert.ok(d.data.equals(t.data), name);
        continue;
      }
      assert.equal(d.dtype, 'BF16');
      const f32 = new Uint32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
      const bf16 = new Uint16Array(d.data.buffer.slice(d.data.byteOffset, d.data.byteOffset + d.data.byteLength));
      for (let i = 0; i < f32.length; i++) {
        const bits = f32[i]!;
        const expected = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16; // round to nearest even (no NaN here)
        assert.equal(bf16[i], expected, `${name}[${i}]`);
      }
    }
  });

  test('prune 50%: every pruned tensor is at least 49.9% zeros, and the stored bytes drop', async () => {
    const res = await derive(server.url, 'base', '1.0.0', { op: 'prune', params: { sparsity: 0.5 }, samples: 'samples.safetensors' });
    assert.deepEqual(res.body.target, { name: 'base', version: '1.0.0-prune50' });
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const doc = (await call(server.url, 'GET', '/v1/models/base/versions/1.0.0-prune50')).body;
    assert.equal(doc.parents[0].relation, 'pruned-from');
    const files = doc.parents[0].recipe.results.files;
    for (const f of files) {
      assert.ok(f.transform.min_sparsity >= 0.499, `${f.path}: ${f.transform.min_sparsity}`);
      assert.ok(f.stored.after < f.stored.before * 0.9, `${f.path}: stored ${f.stored.before} → ${f.stored.after}`);
    }
    const tensors = tensorsOf(await fileBytes(server.url, 'base', '1.0.0-prune50', 'weights.safetensors'));
    for (const [name, t] of tensors) {
      if (t.dtype !== 'F32' || t.shape.length < 2) continue;
      const values = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
      const zeros = values.filter((v) => v === 0).length;
      assert.ok(zeros / values.length >= 0.499, `${name}: ${zeros}/${values.length} zeros`);
    }
    assert.ok(doc.parents[0].recipe.results.stored.after < doc.parents[0].recipe.results.stored.before);
  });

  test('a version published with a copied derivation key is not taken for the derived version: only jobs count', async () => {
    const res = await derive(server.url, 'base', '1.0.0', { op: 'fp16', samples: 'samples.safetensors', to: 'base-fp16@1' });
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const made = (await call(server.url, 'GET', '/v1/models/base-fp16/versions/1')).body;
    assert.equal((await call(server.url, 'DELETE', '/v1/models/base-fp16/versions/1')).status, 204);
    // someone publishes their own bytes with the same parent and a recipe claiming the same derivation
    const forged = await call(server.url, 'POST', '/v1/models/base-fp16/versions', {
      version: '2',
      files: [{ path: 'model.onnx', digest: parent.files.find((f: any) => f.path === 'model.onnx').digest }],
      parents: [{ ref: 'base@1.0.0', relation: 'converted-from', recipe: made.parents[0].recipe }],
    });
    assert.equal(forged.status, 201, JSON.stringify(forged.body));
    const again = await derive(server.url, 'base', '1.0.0', { op: 'fp16', samples: 'samples.safetensors', to: 'base-fp16@3' });
    assert.equal(again.status, 202, `a new job, not the forged version: ${JSON.stringify(again.body)}`);
    const redone = await waitForJob(server.url, again.body.id);
    assert.equal(redone.state, 'succeeded', JSON.stringify(redone.error));
    assert.equal(redone.result.version, '3');
    const doc = (await call(server.url, 'GET', '/v1/models/base-fp16/versions/3')).body;
    const onnx = (v: any) => v.files.find((f: any) => f.path === 'model.onnx').digest;
    assert.equal(onnx(doc), onnx(made), 'the same transform, the same bytes');
  });

  test('bad requests are 400 with a reason; a taken target 409; an unknown job 404', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ op: 'distill' }, /op must be one of fp16, int8, cast, prune/],
      [{}, /op must be one of/],
      [[], /must be a JSON object/],
      [{ op: 'prune', params: { sparsity: 2 } }, /sparsity must be a number from 0 to 1/],
      [{ op: 'prune', params: { amount: 0.5 } }, /unknown field "amount" \(accepted: sparsity\)/],
      [{ op: 'cast', params: { to: 'I8' } }, /BF16 or F16/],
      [{ op: 'fp16', params: { maxFinite: 1e6 } }, /maxFinite/],
      [{ op: 'int8', params: { bits: 4 } }, /accepted: none/],
      [{ op: 'int8', shiny: true }, /unknown field "shiny"/],
      [{ op: 'fp16', files: ['weights.safetensors'] }, /fp16 applies to onnx files; weights.safetensors is safetensors/],
      [{ op: 'fp16', files: ['nope.onnx'] }, /has no file nope.onnx/],
      [{ op: 'fp16', samples: 'README.md' }, /a samples file is safetensors/],
      [{ op: 'fp16', samples: 'missing.safetensors' }, /has no file missing.safetensors/],
      [{ op: 'fp16', measure: { count: 0 } }, /measure.count must be a whole number from 1 to 64/],
      [{ op: 'fp16', measure: { shapes: { x: [1, -3] } } }, /measure.shapes.x/],
      [{ op: 'fp16', to: 'Not A Name@1' }, /./],
      [{ op: 'fp16', to: 'base@latest!' }, /./],
    ];
    for (const [body, message] of cases) {
      const res = await derive(server.url, 'base', '1.0.0', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, message, JSON.stringify(body));
    }
    const onnxOnly = await publishForm(server.url, 'onnx-only', { version: '1' }, [{ path: 'model.onnx', data: MODEL }]);
    assert.equal(onnxOnly.status, 201);
    assertError(await derive(server.url, 'onnx-only', '1', { op: 'cast' }), 400, 'INVALID_ARGUMENT');
    assertError(await derive(server.url, 'base', '9.9.9', { op: 'fp16' }), 404, 'VERSION_NOT_FOUND');
    assertError(await derive(server.url, 'nobody', '1', { op: 'fp16' }), 404, 'MODEL_NOT_FOUND');
    const taken = await derive(server.url, 'base', '1.0.0', { op: 'fp16', params: { maxFinite: 2e4 }, to: 'onnx-only@1' });
    assertError(taken, 409, 'VERSION_EXISTS');
    assertError(await call(server.url, 'GET', '/v1/jobs/0123456789abcdef01234567'), 404, 'JOB_NOT_FOUND');
    assertError(await call(server.url, 'GET', '/v1/jobs/..%2F..'), 404, 'JOB_NOT_FOUND');
  });

  test('a derivation that cannot be measured fails with the reason and publishes nothing', async () => {
    // the samples name an input the model does not have: ONNX Runtime refuses them
    const bad = floatSafetensors([{ name: 'z', shape: [1, 16] }]);
    const pub = await publishForm(server.url, 'badsamples', { version: '1' }, [
      { path: 'model.onnx', data: MODEL },
      { path: 'samples.safetensors', data: bad },
    ]);
    assert.equal(pub.status, 201);
    const res = await derive(server.url, 'badsamples', '1', { op: 'fp16', samples: 'samples.safetensors' });
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'INVALID_ARGUMENT');
    assert.match(job.error.message, /ONNX Runtime cannot run the parent model on the samples/);
    assert.equal(job.result, null);
    assertError(await call(server.url, 'GET', '/v1/models/badsamples/versions/1-fp16'), 404, 'VERSION_NOT_FOUND');
    // failed is not done: asking again makes a new job
    const again = await derive(server.url, 'badsamples', '1', { op: 'fp16', samples: 'samples.safetensors' });
    assert.equal(again.status, 202);
    assert.notEqual(again.body.id, res.body.id);
    assert.equal((await waitForJob(server.url, again.body.id)).state, 'failed');
  });

  test('cairn derive follows the job and prints the measured numbers; cairn show prints them for a derived version', async () => {
    const cli = async (...argv: string[]) => {
      let out = '';
      let err = '';
      const sink = (add: (s: string) => void) => new Writable({ write: (c, _e, cb) => (add(String(c)), cb()) });
      const code = await main(['--url', server.url, ...argv], { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), env: {} });
      return { code, out, err };
    };
    const run = await cli('derive', 'base@1.0.0', '--op', 'prune', '--param', 'sparsity=0.25', '--file', 'model.onnx', '--samples', 'samples.safetensors', '--to', 'base-sparse@1');
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^base-sparse@1 sha256:[0-9a-f]{64}\n/);
    assert.match(run.out, /pruned-from base@1\.0\.0/);
    assert.match(run.out, /prune \{"sparsity":0\.25\} by cairn derive 1 \(onnxruntime-node 1\.30\.0\)/);
    assert.match(run.out, /model\.onnx: .+ → .+, stored .+/);
    assert.match(run.out, /y: cosine 0\.9\d+, max \|err\| /);
    assert.match(run.out, /at least 0\.2\d* in each of 2 pruned tensor/);
    const json = await cli('derive', 'base@1.0.0', '--op', 'prune', '--param', 'sparsity=0.25', '--file', 'model.onnx', '--samples', 'samples.safetensors', '--json');
    assert.equal(json.code, 0, json.err);
    const doc = JSON.parse(json.out);
    assert.equal(doc.job.result.version, '1', 'the same derivation: the version made before');
    assert.equal(doc.version.parents[0].relation, 'pruned-from');
    const show = await cli('show', 'base-sparse@1');
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /  derived:     prune \{"sparsity":0\.25\} by cairn derive 1/);
    assert.match(show.out, /model\.onnx: .+\n\s+y: cosine /);
    const failed = await cli('derive', 'badsamples@1', '--op', 'int8', '--samples', 'samples.safetensors');
    assert.equal(failed.code, 1);
    assert.match(failed.err, /derive job [0-9a-f]{24} failed: ONNX Runtime cannot run the parent model/);
    const usage = await cli('derive', 'base@1.0.0', '--op', 'shrink');
    assert.equal(usage.code, 2);
  });

  test('namespaced models: acme/resnet@1.0.0 → acme/resnet-fp16@1.0.0 by HTTP and by cairn derive, the recipe in git under models/acme/resnet-fp16/', async () => {
    const nsParent = await publishParent(server.url, 'acme/resnet');
    assert.equal(nsParent.name, 'acme/resnet');
    const res = await derive(server.url, 'acme/resnet', '1.0.0', { op: 'fp16', samples: 'samples.safetensors', to: 'acme/resnet-fp16@1.0.0' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), `/v1/jobs/${res.body.id}`);
    assert.deepEqual([res.body.parent.name, res.body.target.name, res.body.target.version], ['acme/resnet', 'acme/resnet-fp16', '1.0.0']);
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual([job.result.name, job.result.version], ['acme/resnet-fp16', '1.0.0']);
    const doc = (await call(server.url, 'GET', '/v1/models/acme/resnet-fp16/versions/1.0.0')).body;
    assert.deepEqual([doc.parents[0].name, doc.parents[0].version, doc.parents[0].relation], ['acme/resnet', '1.0.0', 'converted-from']);
    assert.ok(doc.parents[0].recipe.results.files[0].measured.outputs[0].cosine >= 0.999);
    const y = await runMlp(await fileBytes(server.url, 'acme/resnet-fp16', '1.0.0', 'model.onnx'), new Float32Array(16).fill(0.5));
    assert.ok(cosine(y, await runMlp(MODEL, new Float32Array(16).fill(0.5))) > 0.999);
    const inGit = await gitVersionFile(server, 'acme/resnet-fp16', '1.0.0');
    assert.deepEqual(inGit.parents[0].recipe, doc.parents[0].recipe);
    // a name alone: that model, the parent's version; the namespace's slash is kept by the CLI
    let out = '';
    let err = '';
    const sink = (add: (s: string) => void) => new Writable({ write: (c, _e, cb) => (add(String(c)), cb()) });
    const code = await main(['--url', server.url, 'derive', 'acme/resnet@1.0.0', '--op', 'int8', '--samples', 'samples.safetensors', '--to', 'acme/resnet-int8'], {
      stdout: sink((s) => (out += s)),
      stderr: sink((s) => (err += s)),
      env: {},
    });
    assert.equal(code, 0, err);
    assert.match(out, /^acme\/resnet-int8@1\.0\.0 sha256:[0-9a-f]{64}\n/);
    assert.match(out, /quantized-from acme\/resnet@1\.0\.0/);
    const int8 = (await call(server.url, 'GET', '/v1/models/acme/resnet-int8/versions/1.0.0')).body;
    assert.equal(int8.parents[0].name, 'acme/resnet');
    const graph = (await call(server.url, 'GET', '/v1/models/acme/resnet/versions/1.0.0/lineage')).body;
    assert.deepEqual(graph.edges.filter((e: any) => e.to === 'acme/resnet@1.0.0').map((e: any) => `${e.from} ${e.relation}`).sort(), [
      'acme/resnet-fp16@1.0.0 converted-from',
      'acme/resnet-int8@1.0.0 quantized-from',
    ]);
  });

  test('cairn infer serves a derived version like any other', async () => {
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-derive-infer-'));
    const infer = await startInfer(['--url', server.url, '--cache-dir', cacheDir, 'base-int8@1.0.0']);
    try {
      await waitFor('the derived model loaded', async () => (await getJson(`${infer.url}/v2/health/ready`)).status === 200);
      const x = new Float32Array(16).map((_, i) => Math.cos(i));
      const res = await fetch(`${infer.url}/v2/models/base-int8/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: Array.from(x) }] }),
      });
      const body = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
      assert.equal(res.status, 200, JSON.stringify(body));
      const expected = await runMlp(await fileBytes(server.url, 'base-int8', '1.0.0', 'model.onnx'), x);
      assert.equal(body.outputs[0]!.name, 'y');
      body.outputs[0]!.data.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `y[${i}]: ${v} vs ${expected[i]}`));
    } finally {
      await infer.stop();
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  test('the web UI shows a derived version\'s recipe numbers on its page', { skip: browserUnavailable() }, async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/#/models/base-int8/versions/1.0.0`);
      const card = page.locator('[data-section="derived"]');
      await card.waitFor({ timeout: 20_000 });
      assert.match(await card.locator('h2').innerText(), /Derived\s+quantized-from\s+from base@1\.0\.0/);
      const row = card.locator('tr[data-derived="model.onnx"]');
      assert.match(await row.innerText(), /cosine 0\.99\d*/);
      assert.match(await row.innerText(), /median latency/);
      assert.match(await card.locator('tr[data-derived="weights.safetensors"]').innerText(), /round-trip max \|err\|/);
      await page.screenshot({ path: await screenshotPath('derived-version'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

describe('derive jobs: access', () => {
  let server: AuthServer;
  let aWriter: string;
  let aReader: string;
  let bWriter: string;
  before(async () => {
    server = await startAuthServer();
    aWriter = await createToken(server, { name: 'a-writer', scopes: ['write'], models: ['team-a-*'] });
    aReader = await createToken(server, { name: 'a-reader', scopes: ['read'], models: ['team-a-*'] });
    bWriter = await createToken(server, { name: 'b-writer', scopes: ['write'], models: ['team-b-*'] });
    await publishParent(server.url, 'team-a-mlp', bearer(aWriter));
    await publishParent(server.url, 'team-b-mlp', bearer(bWriter));
    assert.equal((await publishOne(server.url, bWriter, 'team-b-taken', '1.0.0')).status, 201);
  });
  after(async () => {
    await server?.stop();
  });

  test('write on the target and read on the parent are needed; the job is its creator\'s, and readable by who may read the target', async () => {
    const body = { op: 'int8', samples: 'samples.safetensors' };
    assertError(await derive(server.url, 'team-a-mlp', '1.0.0', body), 401, 'UNAUTHORIZED');
    assertError(await derive(server.url, 'team-a-mlp', '1.0.0', body, bearer(aReader)), 403, 'FORBIDDEN');
    assertError(await derive(server.url, 'team-b-mlp', '1.0.0', body, bearer(aWriter)), 403, 'FORBIDDEN');
    // into another team's model: refused before anything about it is looked up (not 409 for a taken version)
    assertError(await derive(server.url, 'team-a-mlp', '1.0.0', { ...body, to: 'team-b-taken@1.0.0' }, bearer(aWriter)), 403, 'FORBIDDEN');

    const res = await derive(server.url, 'team-a-mlp', '1.0.0', body, bearer(aWriter));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.created_by, 'a-writer');
    const job = await waitForJob(server.url, res.body.id, bearer(aWriter));
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const doc = await call(server.url, 'GET', '/v1/models/team-a-mlp/versions/1.0.0-int8', undefined, bearer(aReader));
    assert.equal(doc.body.created_by, 'a-writer', 'the derived version is its author\'s');
    assert.equal((await call(server.url, 'GET', `/v1/jobs/${job.id}`, undefined, bearer(aReader))).status, 200, 'a reader of the target sees the job');
    assert.equal((await call(server.url, 'GET', `/v1/jobs/${job.id}`, undefined, bearer(server.adminToken))).status, 200);
    const other = await call(server.url, 'GET', `/v1/jobs/${job.id}`, undefined, bearer(bWriter));
    const none = await call(server.url, 'GET', '/v1/jobs/0123456789abcdef01234567', undefined, bearer(bWriter));
    assertError(other, 404, 'JOB_NOT_FOUND');
    assert.equal(other.body.error.message.replace(job.id, 'X'), none.body.error.message.replace('0123456789abcdef01234567', 'X'), 'the same answer as for no job');
    // team b cannot learn of team a's derivation by asking for the same one on its own parent either: another parent digest
    const b = await derive(server.url, 'team-b-mlp', '1.0.0', body, bearer(bWriter));
    assert.equal(b.status, 202);
    assert.notEqual(b.body.id, job.id);
    assert.equal((await waitForJob(server.url, b.body.id, bearer(bWriter))).state, 'succeeded');
  });

  test('a namespace pattern: write on acme/* derives inside acme, not into the flat model acme nor into acme2/…', async () => {
    const acme = await createToken(server, { name: 'acme-writer', scopes: ['write'], models: ['acme/*'] });
    await publishParent(server.url, 'acme/mlp', bearer(acme));
    const body = { op: 'fp16', samples: 'samples.safetensors' };
    assertError(await derive(server.url, 'acme/mlp', '1.0.0', { ...body, to: 'acme@1.0.0' }, bearer(acme)), 403, 'FORBIDDEN');
    assertError(await derive(server.url, 'acme/mlp', '1.0.0', { ...body, to: 'acme2/mlp@1.0.0' }, bearer(acme)), 403, 'FORBIDDEN');
    assertError(await derive(server.url, 'acme/mlp', '1.0.0', { ...body, to: 'acme/mlp-fp16@1.0.0' }, bearer(aWriter)), 403, 'FORBIDDEN');
    const res = await derive(server.url, 'acme/mlp', '1.0.0', { ...body, to: 'acme/mlp-fp16@1.0.0' }, bearer(acme));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const job = await waitForJob(server.url, res.body.id, bearer(acme));
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.equal((await call(server.url, 'GET', '/v1/models/acme/mlp-fp16/versions/1.0.0', undefined, bearer(acme))).body.parents[0].name, 'acme/mlp');
    assertError(await call(server.url, 'GET', `/v1/jobs/${job.id}`, undefined, bearer(aWriter)), 404, 'JOB_NOT_FOUND');
  });
});
