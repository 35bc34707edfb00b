// `cairn infer` end to end: a real registry, the real `cairn infer` process,
// small ONNX models built with Python's onnx, and Python onnxruntime (another
// process) as the reference for every output. The wire is checked against
// the protocols' published schemas (test/support/protocol-schemas.ts:
// OIP's open_inference_rest.yaml, TF Serving's api_rest.md and its protos);
// statuses against TF Serving's ToHTTPStatusCode (model_servers/http_server.cc)
// and OIP's inference_rest.md.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './support/child-server.ts';
import {
  buildFixtures,
  flatten,
  getJson,
  maxAbsDiff,
  postJson,
  publish,
  reference,
  refInput,
  setAlias,
  shapeOf,
  startInfer,
  waitFor,
  type Fixtures,
  type InferProcess,
  type RefTensor,
} from './support/infer.ts';
import { OIP, TF, validate, type Schema } from './support/protocol-schemas.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import type { Config } from '../src/config.ts';

const fixtures = await buildFixtures();
const TOLERANCE = 1e-5;

function assertSchema(value: unknown, schema: Schema, defs: Record<string, Schema>, what: string): void {
  const problems = validate(value, schema, defs);
  assert.deepEqual(problems, [], `${what} does not validate: ${problems.slice(0, 5).join('; ')}\n${JSON.stringify(value).slice(0, 500)}`);
}

function assertClose(got: unknown, want: RefTensor, what: string): void {
  assert.deepEqual(shapeOf(got), want.shape, `${what}: shape`);
  const diff = maxAbsDiff(flatten(got), want.data as ArrayLike<number>);
  assert.ok(diff <= TOLERANCE, `${what}: max abs diff ${diff} > ${TOLERANCE}`);
}

/** Deterministic floats in [-1, 1). */
function floats(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  });
}

/** Nested lists of a flat array in `shape`. */
function nest(flat: ArrayLike<number | boolean | string>, shape: number[]): unknown {
  if (shape.length === 0) return flat[0];
  let at = 0;
  const walk = (d: number): unknown => (d === shape.length ? flat[at++] : Array.from({ length: shape[d]! }, () => walk(d + 1)));
  return walk(0);
}

if ('skip' in fixtures) {
  test('cairn infer', { skip: fixtures.skip }, () => {});
} else {
  const fx: Fixtures = fixtures;
  const model = (name: string) => path.join(fx.dir, name);
  let registry: TestServer;
  let infer: InferProcess;
  let cacheDir: string;
  const gemmInput = floats(2 * 4, 1);

  before(async () => {
    registry = await startTestServer('fs');
    const r = registry.url;
    await publish(r, 'gemm', '1.0.0', { 'model.onnx': await fx.file('gemm-v1.onnx') }, ['production']);
    await publish(r, 'gemm', '2.0.0', { 'model.onnx': await fx.file('gemm-v2.onnx') });
    await publish(r, 'conv', '1.0.0', { 'conv.onnx': await fx.file('conv.onnx'), 'README.md': 'a conv net' });
    await publish(r, 'embed', '1', { 'embed.onnx': await fx.file('embed.onnx') });
    await publish(r, 'stateful', '1', { 'stateful.onnx': await fx.file('stateful.onnx') });
    await publish(r, 'strings', '1', { 'strings.onnx': await fx.file('strings.onnx') });
    await publish(r, 'half', '1', { 'half.onnx': await fx.file('half.onnx') });
    await publish(r, 'flaky', '1.0.0', { 'model.onnx': await fx.file('gemm-v1.onnx') });
    await publish(r, 'external', '1', { 'onnx/model.onnx': await fx.file('external/model.onnx'), 'onnx/weights.data': await fx.file('external/weights.data'), 'README.md': 'weights next to the graph' });
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-infer-cache-'));
    const config = path.join(cacheDir, '..', `${path.basename(cacheDir)}.json`);
    await fs.writeFile(
      config,
      JSON.stringify({
        models: ['gemm', { name: 'conv', batching: { max_batch_size: 8, max_delay_ms: 20 } }, 'embed', 'stateful', 'strings', 'half', 'flaky', 'external'],
        poll_seconds: 0.2,
        max_body_bytes: 1024 * 1024,
      }),
    );
    infer = await startInfer(['--config', config, '--url', r, '--cache-dir', cacheDir]);
    await waitFor('every model ready', async () => (await getJson(`${infer.url}/v2/health/ready`)).status === 200);
  });

  after(async () => {
    await infer?.stop();
    await registry?.stop();
    await fs.rm(fx.dir, { recursive: true, force: true });
    if (cacheDir) await fs.rm(cacheDir, { recursive: true, force: true });
  });

  describe('TF Serving REST: status and metadata', () => {
    test('status of every version matches api_rest.md\'s example, field by field', async () => {
      const { status, body } = await getJson(`${infer.url}/v1/models/gemm`);
      assert.equal(status, 200);
      assertSchema(body, TF.status!, TF, 'status');
      // api_rest.md: {"model_version_status": [{"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
      assert.deepEqual(body, {
        model_version_status: [
          { version: '2', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
          { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
        ],
      });
    });

    test('one version by number, and by label', async () => {
      const one = await getJson(`${infer.url}/v1/models/gemm/versions/1`);
      assert.equal(one.status, 200);
      assert.deepEqual(one.body, { model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
      const prod = await getJson(`${infer.url}/v1/models/gemm/labels/production`);
      assert.deepEqual(prod.body.model_version_status[0].version, '1');
      const latest = await getJson(`${infer.url}/v1/models/gemm/labels/latest`);
      assert.deepEqual(latest.body.model_version_status[0].version, '2');
    });

    test('unknown model, version and label: the errors TF Serving gives', async () => {
      const cases: Array<[string, number, RegExp]> = [
        ['/v1/models/nope', 404, /^Could not find any versions of model nope$/],
        ['/v1/models/gemm/versions/7', 404, /^Could not find version 7 of model gemm$/],
        ['/v1/models/gemm/versions/x1', 400, /Failed to convert version: x1 to numeric/],
        ['/v1/models/gemm/labels/nope', 400, /^Unrecognized servable version label: nope$/],
        ['/v1/models/nope/metadata', 404, /Could not find any versions of model nope/],
      ];
      for (const [p, code, message] of cases) {
        const { status, body } = await getJson(`${infer.url}${p}`);
        assert.equal(status, code, p);
        assertSchema(body, TF.error!, TF, p);
        assert.match(body.error, message, p);
      }
    });

    test('metadata: the ONNX signature as serving_default, with TF dtypes', async () => {
      const { status, body } = await getJson(`${infer.url}/v1/models/embed/metadata`);
      assert.equal(status, 200);
      assertSchema(body, TF.metadata!, TF, 'metadata');
      assert.deepEqual(body.model_spec, { name: 'embed', signature_name: '', version: '1' });
      const sig = body.metadata.signature_def.signature_def.serving_default;
      assert.equal(sig.method_name, 'tensorflow/serving/predict');
      assert.deepEqual(sig.inputs.ids, {
        dtype: 'DT_INT64',
        tensor_shape: { dim: [{ size: '-1', name: 'N' }, { size: '-1', name: 'L' }], unknown_rank: false },
        name: 'ids',
      });
      assert.deepEqual(Object.fromEntries(Object.entries(sig.outputs).map(([k, v]) => [k, (v as { dtype: string }).dtype])), { emb: 'DT_FLOAT', next: 'DT_INT64', big: 'DT_BOOL' });
      const v1 = await getJson(`${infer.url}/v1/models/gemm/versions/1/metadata`);
      assert.equal(v1.body.model_spec.version, '1');
      const prod = await getJson(`${infer.url}/v1/models/gemm/labels/production/metadata`);
      assert.equal(prod.body.model_spec.version, '1');
      assert.deepEqual(prod.body.metadata.signature_def.signature_def.serving_default.inputs.x.tensor_shape.dim, [
        { size: '-1', name: 'N' },
        { size: '4', name: '' },
      ]);
    });

    test('classify and regress are TF Example APIs: 501 (UNIMPLEMENTED)', async () => {
      const { status, body } = await postJson(`${infer.url}/v1/models/gemm:classify`, { examples: [] });
      assert.equal(status, 501);
      assertSchema(body, TF.error!, TF, 'classify');
    });
  });

  describe('TF Serving REST: predict equals Python onnxruntime', () => {
    test('gemm: row and columnar forms, latest, a version and a label', async () => {
      const [v1, v2] = await reference(fx.env, [
        { model: model('gemm-v1.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } },
        { model: model('gemm-v2.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } },
      ]);
      const rows = nest(gemmInput, [2, 4]) as number[][];
      // row form: one object per instance; each output split by rows
      const row = await postJson(`${infer.url}/v1/models/gemm:predict`, { instances: rows });
      assert.equal(row.status, 200, JSON.stringify(row.body));
      assertSchema(row.body, TF.predict_row!, TF, 'row');
      assert.equal(row.body.predictions.length, 2);
      assertClose(row.body.predictions.map((p: { y: unknown }) => p.y), v2!.y!, 'latest y');
      assertClose(row.body.predictions.map((p: { norm: unknown }) => p.norm), v2!.norm!, 'latest norm');
      // columnar: {"outputs": {name: tensor}}
      const col = await postJson(`${infer.url}/v1/models/gemm/versions/1:predict`, { inputs: { x: rows } });
      assert.equal(col.status, 200);
      assertSchema(col.body, TF.predict_columnar!, TF, 'columnar');
      assertClose(col.body.outputs.y, v1!.y!, 'v1 y');
      // a one-input model takes the bare value too, and a label
      const bare = await postJson(`${infer.url}/v1/models/gemm/labels/production:predict`, { signature_name: 'serving_default', inputs: rows });
      assertClose(bare.body.outputs.norm, v1!.norm!, 'production norm');
    });

    test('int64 in, float, int64 and bool out (exact)', async () => {
      const ids = BigInt64Array.from([0n, 3n, 9n, 6n, 2n, 7n]);
      const [want] = await reference(fx.env, [{ model: model('embed.onnx'), feeds: { ids: refInput('int64', [2, 3], ids) } }]);
      const { status, body } = await postJson(`${infer.url}/v1/models/embed:predict`, { inputs: { ids: [[0, 3, 9], [6, '2', 7]] } });
      assert.equal(status, 200, JSON.stringify(body));
      assertClose(body.outputs.emb, want!.emb!, 'emb');
      assert.deepEqual(body.outputs.next, [[1, 4, 10], [7, 3, 8]]);
      assert.deepEqual(body.outputs.big, [[false, false, true], [true, false, true]]);
      assert.deepEqual(flatten(body.outputs.big), Array.from(want!.big!.data as ArrayLike<boolean>));
    });

    test('stateful (silero-shaped): scalar and state inputs given whole in the row form', async () => {
      const x = floats(3 * 5, 3);
      const state = floats(2 * 3 * 8, 4);
      const [want] = await reference(fx.env, [
        { model: model('stateful.onnx'), feeds: { x: refInput('float32', [3, 5], x), state: refInput('float32', [2, 3, 8], state), sr: refInput('int64', [], BigInt64Array.from([16000n])) } },
      ]);
      const col = await postJson(`${infer.url}/v1/models/stateful:predict`, { inputs: { x: nest(x, [3, 5]), state: nest(state, [2, 3, 8]), sr: 16000 } });
      assert.equal(col.status, 200, JSON.stringify(col.body));
      assertClose(col.body.outputs.y, want!.y!, 'y');
      assertClose(col.body.outputs.stateN, want!.stateN!, 'stateN');
      // row form: x one row per instance; state and sr have no row per instance, so each instance holds them whole
      const stateNested = nest(state, [2, 3, 8]);
      const instances = [0, 1, 2].map((i) => ({ x: nest(x.subarray(i * 5, i * 5 + 5), [5]), state: stateNested, sr: 16000 }));
      const row = await postJson(`${infer.url}/v1/models/stateful:predict`, { instances });
      assert.equal(row.status, 200, JSON.stringify(row.body));
      assertSchema(row.body, TF.predict_row!, TF, 'row');
      assertClose(row.body.predictions.map((p: { y: unknown }) => p.y), want!.y!, 'row y');
      // stateN's dim 0 (2) is not one row per instance (3): every prediction holds it whole
      for (const p of row.body.predictions) assertClose(p.stateN, want!.stateN!, 'row stateN');
      const differ = await postJson(`${infer.url}/v1/models/stateful:predict`, { instances: [instances[0], { ...instances[1], sr: 8000 }, instances[2]] });
      assert.equal(differ.status, 400);
      assert.match(differ.body.error, /input 'sr' is given whole.*instance 1 differs/);
    });

    test('strings, {"b64"} in, and *_bytes outputs as {"b64"}', async () => {
      const { status, body } = await postJson(`${infer.url}/v1/models/strings:predict`, { instances: ['héllo', { b64: Buffer.from('wörld').toString('base64') }] });
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.predictions, [
        { text_out: 'héllo', text_bytes: { b64: Buffer.from('héllo').toString('base64') } },
        { text_out: 'wörld', text_bytes: { b64: Buffer.from('wörld').toString('base64') } },
      ]);
      const binary = await postJson(`${infer.url}/v1/models/strings:predict`, { instances: [{ b64: Buffer.from([0xff, 0xfe]).toString('base64') }] });
      assert.equal(binary.status, 400);
      assert.match(binary.body.error, /not UTF-8/);
    });

    test('float16 in and out; NaN and Infinity as TF Serving writes them', async () => {
      const res = await fetch(`${infer.url}/v1/models/half:predict`, { method: 'POST', body: '{"inputs": [[1.5, -2], [NaN, Infinity]]}' });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(text, '{"outputs":{"twice":[[3,-4],[NaN,Infinity]],"wide":[[1.5,-2],[NaN,Infinity]]}}');
    });

    test('a model with its weights in an external data file, in a sub-directory of the version', async () => {
      const [want] = await reference(fx.env, [{ model: model('gemm-v1.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } }]);
      const { status, body } = await postJson(`${infer.url}/v1/models/external:predict`, { inputs: nest(gemmInput, [2, 4]) });
      assert.equal(status, 200, JSON.stringify(body));
      assertClose(body.outputs.y, want!.y!, 'external y');
      const own = await getJson(`${infer.url}/status`);
      assert.equal(own.body.models.find((m: { name: string }) => m.name === 'external').versions[0].file, 'onnx/model.onnx');
    });

    test('conv net: nested 4-D tensors', async () => {
      const x = floats(3 * 64, 5);
      const [want] = await reference(fx.env, [{ model: model('conv.onnx'), feeds: { x: refInput('float32', [3, 1, 8, 8], x) } }]);
      const { status, body } = await postJson(`${infer.url}/v1/models/conv:predict`, { instances: nest(x, [3, 1, 8, 8]) });
      assert.equal(status, 200, JSON.stringify(body).slice(0, 300));
      assertClose(body.predictions, want!.y!, 'conv');
    });
  });

  describe('Open Inference Protocol v2', () => {
    test('server metadata, liveness, readiness', async () => {
      const meta = await getJson(`${infer.url}/v2`);
      assert.equal(meta.status, 200);
      assertSchema(meta.body, OIP.metadata_server_response!, OIP, 'server metadata');
      assert.equal(meta.body.name, 'cairn-infer');
      assert.deepEqual(await getJson(`${infer.url}/v2/health/live`), { status: 200, body: { live: true } });
      assert.deepEqual(await getJson(`${infer.url}/v2/health/ready`), { status: 200, body: { ready: true } });
      const ready = await getJson(`${infer.url}/v2/models/gemm/versions/1.0.0/ready`);
      assert.equal(ready.status, 200);
      assertSchema(ready.body, OIP.ready_model_response!, OIP, 'model ready');
      assert.deepEqual(ready.body, { name: 'gemm', ready: true });
    });

    test('model metadata: -1 for dynamic dims, OIP datatypes', async () => {
      const { status, body } = await getJson(`${infer.url}/v2/models/embed`);
      assert.equal(status, 200);
      assertSchema(body, OIP.metadata_model_response!, OIP, 'model metadata');
      assert.deepEqual(body, {
        name: 'embed',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'ids', datatype: 'INT64', shape: [-1, -1] }],
        outputs: [
          { name: 'emb', datatype: 'FP32', shape: [-1, -1, 4] },
          { name: 'next', datatype: 'INT64', shape: [-1, -1] },
          { name: 'big', datatype: 'BOOL', shape: [-1, -1] },
        ],
      });
      const gemm = await getJson(`${infer.url}/v2/models/gemm`);
      assert.deepEqual(gemm.body.versions.sort(), ['1.0.0', '2.0.0']);
      const unknown = await getJson(`${infer.url}/v2/models/nope`);
      assert.equal(unknown.status, 404);
      assertSchema(unknown.body, OIP.metadata_model_error_response!, OIP, 'unknown model');
    });

    test('infer: every model, versions by name, number and label, id echoed, outputs chosen', async () => {
      const x = floats(2 * 5, 11);
      const state = floats(2 * 2 * 8, 12);
      const [g1, g2, st, hf] = await reference(fx.env, [
        { model: model('gemm-v1.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } },
        { model: model('gemm-v2.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } },
        { model: model('stateful.onnx'), feeds: { x: refInput('float32', [2, 5], x), state: refInput('float32', [2, 2, 8], state), sr: refInput('int64', [], BigInt64Array.from([8000n])) } },
        { model: model('half.onnx'), feeds: { x: refInput('float16', [1, 2], Uint16Array.from([0x3c00, 0xc000])) } },
      ]);
      const gemm = (v: string) => postJson(`${infer.url}/v2/models/gemm${v}/infer`, { id: 'r1', inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: Array.from(gemmInput) }] });
      for (const [v, want, version] of [['', g2, '2.0.0'], ['/versions/1.0.0', g1, '1.0.0'], ['/versions/2', g2, '2.0.0'], ['/versions/production', g1, '1.0.0']] as const) {
        const { status, body } = await gemm(v);
        assert.equal(status, 200, JSON.stringify(body));
        assertSchema(body, OIP.inference_response!, OIP, `infer ${v}`);
        assert.equal(body.model_name, 'gemm');
        assert.equal(body.model_version, version);
        assert.equal(body.id, 'r1');
        const y = body.outputs.find((o: { name: string }) => o.name === 'y');
        assert.deepEqual(y.shape, [2, 3]);
        assert.equal(y.datatype, 'FP32');
        assert.ok(maxAbsDiff(y.data, want!.y!.data as ArrayLike<number>) <= TOLERANCE, v);
      }
      const stateful = await postJson(`${infer.url}/v2/models/stateful/infer`, {
        inputs: [
          { name: 'x', shape: [2, 5], datatype: 'FP32', data: nest(x, [2, 5]) },
          { name: 'state', shape: [2, 2, 8], datatype: 'FP32', data: Array.from(state) },
          { name: 'sr', shape: [], datatype: 'INT64', data: [8000] },
        ],
        outputs: [{ name: 'stateN' }],
      });
      assert.equal(stateful.status, 200, JSON.stringify(stateful.body));
      assertSchema(stateful.body, OIP.inference_response!, OIP, 'stateful');
      assert.deepEqual(stateful.body.outputs.map((o: { name: string }) => o.name), ['stateN']);
      assert.ok(maxAbsDiff(stateful.body.outputs[0].data, st!.stateN!.data as ArrayLike<number>) <= TOLERANCE);
      const half = await postJson(`${infer.url}/v2/models/half/infer`, { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP16', data: [1, -2] }] });
      assert.equal(half.status, 200, JSON.stringify(half.body));
      assert.deepEqual(half.body.outputs[0], { name: 'twice', datatype: 'FP16', shape: [1, 2], data: [2, -4] });
      assert.deepEqual(Array.from(hf!.twice!.data as Uint16Array), [0x4000, 0xc400]); // 2, -4 in half
      const nan = await postJson(`${infer.url}/v2/models/half/infer`, { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP16', data: ['NaN', '-Infinity'] }] });
      assertSchema(nan.body, OIP.inference_response!, OIP, 'non-finite');
      assert.deepEqual(nan.body.outputs[1].data, ['NaN', '-Infinity']);
    });

    test('binary tensor extension: raw bytes in and out', async () => {
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } }], outputs: [{ name: 'y', parameters: { binary_data: true } }, { name: 'norm' }] }));
      const body = Buffer.concat([header, Buffer.from(gemmInput.buffer)]);
      const res = await fetch(`${infer.url}/v2/models/gemm/versions/1/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.byteLength), 'content-type': 'application/octet-stream' }, body });
      assert.equal(res.status, 200);
      const bytes = Buffer.from(await res.arrayBuffer());
      const n = Number(res.headers.get('inference-header-content-length'));
      const json = JSON.parse(bytes.subarray(0, n).toString('utf8'));
      assertSchema(json, { ...OIP.inference_response!, properties: { ...OIP.inference_response!.properties, outputs: { type: 'array' } } }, OIP, 'binary header');
      assert.deepEqual(json.outputs[0], { name: 'y', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } });
      const y = new Float32Array(bytes.buffer.slice(bytes.byteOffset + n, bytes.byteOffset + n + 24));
      const [want] = await reference(fx.env, [{ model: model('gemm-v1.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } }]);
      assert.ok(maxAbsDiff(Array.from(y), want!.y!.data as ArrayLike<number>) === 0);
      assert.ok(maxAbsDiff(json.outputs[1].data, want!.norm!.data as ArrayLike<number>) <= TOLERANCE);
    });
  });

  describe('bad input: a 400 naming the input and what was expected; the server stays up', () => {
    const oip = (inputs: unknown) => postJson(`${infer.url}/v2/models/gemm/infer`, { inputs });
    const x = (over: Record<string, unknown> = {}) => ({ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4], ...over });

    test('OIP', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [[x({ datatype: 'INT32' })], /input 'x' is INT32; the model takes FP32/],
        [[x({ shape: [1, 5], data: [1, 2, 3, 4, 5] })], /input 'x': got shape \[1, 5\]; dimension 1 must be 4/],
        [[x({ shape: [4] })], /input 'x': got shape \[4\] \(rank 1\); the model takes rank 2/],
        [[x({ data: [1, 2, 3] })], /input 'x': "data" has 3 elements; shape \[1, 4\] needs 4/],
        [[x({ data: [1, 2, 'three', 4] })], /input 'x': element \[2\] is "three"; expected a number/],
        [[x({ data: [1, 2, null, 4] })], /input 'x': element \[2\] is null; expected a number/],
        [[], /missing input 'x': the model takes x float32\[-1, 4\]/],
        [[x(), { name: 'z', shape: [1], datatype: 'FP32', data: [1] }], /unknown input 'z'/],
        [[x(), x()], /input 'x' is given twice/],
        [[x({ shape: [1, -4] })], /input 'x': "shape" must be a list of non-negative integers/],
        ['x', /"inputs" must be a list/],
      ];
      for (const [inputs, message] of cases) {
        const { status, body } = await oip(inputs);
        assert.equal(status, 400, `${JSON.stringify(inputs)} → ${JSON.stringify(body)}`);
        assertSchema(body, OIP.inference_error_response!, OIP, 'error');
        assert.match(body.error, message);
      }
      const ints = await postJson(`${infer.url}/v2/models/embed/infer`, { inputs: [{ name: 'ids', shape: [1, 2], datatype: 'INT64', data: [1, 'NaN'] }] });
      assert.equal(ints.status, 400);
      assert.match(ints.body.error, /input 'ids': element \[1\] is "NaN"; expected an integer/);
      const big = await postJson(`${infer.url}/v2/models/embed/infer`, { inputs: [{ name: 'ids', shape: [1, 1], datatype: 'INT64', data: [2 ** 60] }] });
      assert.match(big.body.error, /within ±2\^53/);
      const oob = await postJson(`${infer.url}/v2/models/embed/infer`, { inputs: [{ name: 'ids', shape: [1, 1], datatype: 'INT64', data: [12] }] });
      assert.equal(oob.status, 400, 'the runtime refusing an index out of range is the input\'s fault');
      assert.match(oob.body.error, /the model failed on this input/);
      const notJson = await postJson(`${infer.url}/v2/models/gemm/infer`, '{"inputs": [');
      assert.equal(notJson.status, 400);
      assert.match(notJson.body.error, /not JSON/);
      const badOutput = await postJson(`${infer.url}/v2/models/gemm/infer`, { inputs: [x()], outputs: [{ name: 'nope' }] });
      assert.match(badOutput.body.error, /unknown output 'nope'/);
      const binaryShort = await fetch(`${infer.url}/v2/models/gemm/infer`, { method: 'POST', headers: { 'inference-header-content-length': '99999' }, body: '{}' });
      assert.equal(binaryShort.status, 400);
      const missingVersion = await postJson(`${infer.url}/v2/models/gemm/versions/9.9.9/infer`, { inputs: [x()] });
      assert.equal(missingVersion.status, 404);
    });

    test('TF Serving', async () => {
      const predict = (body: unknown, m = 'gemm') => postJson(`${infer.url}/v1/models/${m}:predict`, body);
      const cases: Array<[unknown, RegExp, string?]> = [
        [{ instances: [[1, 2, 3]] }, /input 'x': got shape \[1, 3\]; dimension 1 must be 4/],
        [{ instances: [[1, 2, 3, 4], [1, 2, 3]] }, /ragged|instance 1 has shape \[3\]/],
        [{ inputs: [[1, 2], [3]] }, /ragged nested list/],
        [{ inputs: { x: [[1, 2, 3, true]] } }, /element \[0\]\[3\] is true; expected a number/],
        [{ inputs: { y: [[1, 2, 3, 4]] } }, /'inputs' must be an object naming|unknown input 'y'/],
        [{ instances: [[1, 2, 3, 4]], inputs: [[1, 2, 3, 4]] }, /Not both/],
        [{}, /Missing 'inputs' or 'instances' key/],
        [{ instances: [] }, /'instances' must be a non-empty list/],
        [{ signature_name: 'other', instances: [[1, 2, 3, 4]] }, /Serving signature name: "other" not found/],
        [[1, 2], /must be a JSON object/],
        [{ instances: [{ x: 1 }] }, /the model takes rank 2|give one row/, 'stateful'],
        [{ inputs: { x: [[1]], state: [[[0]]] } }, /missing input 'sr'|input 'state'/, 'stateful'],
        [{ inputs: { x: [[1]], state: nest(new Float32Array(16), [2, 1, 8]), sr: 1.5 } }, /input 'sr': the value is 1.5; expected an integer/, 'stateful'],
      ];
      for (const [body, message, m] of cases) {
        const res = await predict(body, m);
        assert.equal(res.status, 400, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`);
        assertSchema(res.body, TF.error!, TF, 'error');
        assert.match(res.body.error, message);
      }
      const text = await fetch(`${infer.url}/v1/models/gemm:predict`, { method: 'POST', body: 'instances=1' });
      assert.equal(text.status, 400);
      assert.match(((await text.json()) as { error: string }).error, /JSON Parse error/);
      const unknown = await predict({ instances: [[1, 2, 3, 4]] }, 'nope');
      assert.equal(unknown.status, 404);
      assert.match(unknown.body.error, /Servable not found for request: Latest\(nope\)/);
      const version = await postJson(`${infer.url}/v1/models/gemm/versions/5:predict`, { instances: [[1, 2, 3, 4]] });
      assert.equal(version.status, 404);
      assert.match(version.body.error, /Servable not found for request: Specific\(gemm, 5\)/);
    });

    test('an oversized body is a 413; the server is still up and serving', async () => {
      const huge = JSON.stringify({ inputs: [x({ data: new Array(300_000).fill(0.5) })] });
      const res = await fetch(`${infer.url}/v2/models/gemm/infer`, { method: 'POST', body: huge });
      assert.equal(res.status, 413);
      assert.match(((await res.json()) as { error: string }).error, /at most 1048576/);
      // without a Content-Length (chunked): counted as it comes, 413 all the same
      const chunks = async function* () {
        for (let i = 0; i < 40; i++) yield new Uint8Array(64 * 1024).fill(0x20);
      };
      const chunked = await fetch(`${infer.url}/v2/models/gemm/infer`, { method: 'POST', body: chunks() as unknown as BodyInit, duplex: 'half' } as RequestInit);
      assert.equal(chunked.status, 413);
      assert.match(((await chunked.json()) as { error: string }).error, /over 1048576 bytes/);
      const ok = await oip([x()]);
      assert.equal(ok.status, 200);
      assert.equal((await getJson(`${infer.url}/healthz`)).status, 200);
    });
  });

  describe('dynamic batching', () => {
    test('concurrent requests are merged into fewer runs; each gets its own rows', async () => {
      const before = await metricValues(infer.url);
      const n = 24;
      const inputs = Array.from({ length: n }, (_, i) => floats(64, 100 + i));
      const refs = await reference(fx.env, inputs.map((x) => ({ model: model('conv.onnx'), feeds: { x: refInput('float32', [1, 1, 8, 8], x) } })));
      const answers = await Promise.all(inputs.map((x) => postJson(`${infer.url}/v2/models/conv/infer`, { inputs: [{ name: 'x', shape: [1, 1, 8, 8], datatype: 'FP32', data: Array.from(x) }] })));
      answers.forEach((a, i) => {
        assert.equal(a.status, 200);
        assert.deepEqual(a.body.outputs[0].shape, [1, 2, 8, 8]);
        assert.ok(maxAbsDiff(a.body.outputs[0].data, refs[i]!.y!.data as ArrayLike<number>) <= TOLERANCE, `request ${i}`);
      });
      const after = await metricValues(infer.url);
      const key = (s: string) => `cairn_infer_batch_size_${s}{model="conv",version="1.0.0"}`;
      const runs = (after[key('count')] ?? 0) - (before[key('count')] ?? 0);
      const rows = (after[key('sum')] ?? 0) - (before[key('sum')] ?? 0);
      assert.equal(rows, n, 'every row ran once');
      assert.ok(runs < n, `${n} requests ran in ${runs} runs: some were merged`);
      assert.ok(runs >= Math.ceil(n / 8), 'no run holds more than max_batch_size (8) rows');
    });

    test('a model whose inputs cannot stack (silero-shaped state) is not batched', async () => {
      const { body } = await getJson(`${infer.url}/status`);
      const byName = Object.fromEntries(body.models.map((m: { name: string; versions: Array<{ batching: boolean }> }) => [m.name, m.versions[0]!.batching]));
      assert.equal(byName.stateful, false);
      assert.equal(byName['conv'], true);
      assert.equal(byName.gemm, true);
    });
  });

  describe('versions that cannot serve', () => {
    test('a broken ONNX file and a version without one: status says why, the previous version keeps serving', async () => {
      await publish(registry.url, 'flaky', '2.0.0', { 'model.onnx': await fx.file('broken.onnx') }, ['canary']);
      await publish(registry.url, 'flaky', '3.0.0', { 'weights.bin': 'not a model', 'README.md': 'notes' }, ['staging']);
      const status = await waitFor('both failures in the status', async () => {
        const s = await getJson(`${infer.url}/v1/models/flaky`);
        return s.body.model_version_status?.length === 3 && s.body.model_version_status.every((v: { state: string }) => v.state !== 'LOADING') ? s : undefined;
      });
      assertSchema(status.body, TF.status!, TF, 'status');
      const [v3, v2, v1] = status.body.model_version_status;
      assert.equal(v3.version, '3');
      assert.equal(v3.state, 'END');
      assert.equal(v3.status.error_code, 'UNIMPLEMENTED');
      assert.match(v3.status.error_message, /^unsupported: no ONNX model among the version's files: .*weights\.bin/);
      assert.equal(v2.version, '2');
      assert.equal(v2.state, 'END');
      assert.equal(v2.status.error_code, 'INVALID_ARGUMENT');
      assert.match(v2.status.error_message, /NoSuchOperator/);
      assert.deepEqual(v1, { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } });
      // latest is 3.0.0, which cannot serve: the default keeps serving 1.0.0
      const res = await postJson(`${infer.url}/v2/models/flaky/infer`, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
      assert.equal(res.status, 200);
      assert.equal(res.body.model_version, '1.0.0');
      const canary = await postJson(`${infer.url}/v1/models/flaky/labels/canary:predict`, { instances: [[1, 2, 3, 4]] });
      assert.equal(canary.status, 404);
      assert.match(canary.body.error, /version 2\.0\.0 failed to load: .*NoSuchOperator/);
      const own = await getJson(`${infer.url}/status`);
      const flaky = own.body.models.find((m: { name: string }) => m.name === 'flaky');
      assert.deepEqual(flaky.labels.latest, { wanted: '3.0.0', serving: '1.0.0', number: 1 });
      assert.equal(flaky.versions.find((v: { version: string }) => v.version === '3.0.0').unsupported, true);
      assert.equal(own.body.ready, true);
    });
  });

  describe('operations', () => {
    test('/metrics: requests, errors, latency, batch sizes, events, cache bytes', async () => {
      const text = await (await fetch(`${infer.url}/metrics`)).text();
      const m = await metricValues(infer.url);
      assert.ok((m['cairn_infer_requests_total{model="gemm",version="2.0.0",protocol="oip",status="200"}'] ?? 0) >= 1, text.slice(0, 2000));
      assert.ok((m['cairn_infer_request_errors_total{model="gemm",version="2.0.0",protocol="oip",status="400"}'] ?? 0) >= 1);
      assert.ok((m['cairn_infer_request_duration_seconds_count{model="gemm",version="2.0.0"}'] ?? 0) >= 1);
      assert.ok((m['cairn_infer_request_duration_seconds_bucket{model="gemm",version="2.0.0",le="+Inf"}'] ?? 0) >= 1);
      assert.ok((m['cairn_infer_model_events_total{model="flaky",event="load_failed"}'] ?? 0) >= 2);
      assert.ok((m['cairn_infer_model_events_total{model="gemm",event="swap"}'] ?? 0) >= 2);
      assert.ok((m.cairn_infer_cache_bytes ?? 0) > 0);
      assert.match(text, /# TYPE cairn_infer_batch_size histogram/);
    });

    test('one JSON log line per request, with its id', async () => {
      const res = await fetch(`${infer.url}/v2/models/gemm/ready`, { headers: { 'x-request-id': 'probe-42' } });
      assert.equal(res.headers.get('x-request-id'), 'probe-42');
      const line = await waitFor('the log line', async () => infer.lines().find((l) => l.msg === 'request' && l.request_id === 'probe-42'));
      assert.equal(line.path, '/v2/models/gemm/ready');
      assert.equal(line.status, 200);
      assert.equal(typeof line.duration_ms, 'number');
      const own = await fetch(`${infer.url}/v2/health/live`);
      assert.match(own.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    });

    test('readiness waits for every model; a model that never loads keeps it false', async () => {
      // (and sessions on the event loop, --workers 0)
      const other = await startInfer(['--url', registry.url, '--cache-dir', cacheDir, '--poll', '0.2', '--workers', '0', 'gemm', 'missing-model']);
      try {
        await waitFor('gemm served', async () => (await getJson(`${other.url}/v2/models/gemm/ready`)).status === 200);
        const [want] = await reference(fx.env, [{ model: model('gemm-v2.onnx'), feeds: { x: refInput('float32', [2, 4], gemmInput) } }]);
        const res = await postJson(`${other.url}/v2/models/gemm/infer`, { inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: Array.from(gemmInput) }] });
        assert.equal(res.status, 200);
        assert.ok(maxAbsDiff(res.body.outputs[0].data, want!.y!.data as ArrayLike<number>) <= TOLERANCE);
        const bad = await postJson(`${other.url}/v2/models/gemm/infer`, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 'x'] }] });
        assert.equal(bad.status, 400);
        assert.equal((await getJson(`${other.url}/v2/health/ready`)).status, 503);
        const readyz = await getJson(`${other.url}/readyz`);
        assert.deepEqual(readyz, { status: 503, body: { ready: false, not_ready: ['missing-model'] } });
        assert.equal((await getJson(`${other.url}/v2/health/live`)).status, 200);
      } finally {
        await other.stop();
      }
    });

    test('the cache is reused across restarts: no file is fetched again', async () => {
      const pulls = async () => {
        const text = await (await fetch(`${registry.url}/metrics`)).text();
        return text.split('\n').filter((l) => l.startsWith('cairn_pulls_total')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      };
      const before = await pulls();
      const again = await startInfer(['--url', registry.url, '--cache-dir', cacheDir, 'gemm', 'conv']);
      try {
        await waitFor('ready', async () => (await getJson(`${again.url}/v2/health/ready`)).status === 200);
        assert.equal(await pulls(), before);
      } finally {
        await again.stop();
      }
    });

    test('a webhook from the registry moves a label at once (polling set to an hour)', async () => {
      // the registry refuses private webhook targets unless told otherwise (CAIRN_WEBHOOK_ALLOW_PRIVATE)
      const hooked = await startTestServer('fs', { webhookAllowPrivate: true } as unknown as Partial<Config>);
      await publish(hooked.url, 'gemm', '1.0.0', { 'model.onnx': await fx.file('gemm-v1.onnx') }, ['production']);
      await publish(hooked.url, 'gemm', '2.0.0', { 'model.onnx': await fx.file('gemm-v2.onnx') });
      const port = await freePort();
      const listener = await startInfer(['--url', hooked.url, '--cache-dir', cacheDir, '--poll', '3600', '--port', String(port), '--webhook-url', `http://127.0.0.1:${port}/webhooks/cairn`, 'gemm@production']);
      try {
        await waitFor('ready', async () => (await getJson(`${listener.url}/v2/health/ready`)).status === 200);
        const hooks = await getJson(`${hooked.url}/v1/webhooks`);
        assert.equal(hooks.body.webhooks.length, 1, 'registered itself');
        const version = async () => (await postJson(`${listener.url}/v2/models/gemm/infer`, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] })).body.model_version;
        assert.equal(await version(), '1.0.0');
        const moved = Date.now();
        await setAlias(hooked.url, 'gemm', 'production', '2.0.0');
        await waitFor('2.0.0 served', async () => (await version()) === '2.0.0', 5_000);
        assert.ok(Date.now() - moved < 2_000, `took ${Date.now() - moved} ms`);
        const status = await getJson(`${listener.url}/v1/models/gemm/labels/production`);
        assert.equal(status.body.model_version_status[0].version, '2');
        const forged = await fetch(`${listener.url}/webhooks/cairn`, { method: 'POST', body: '{"event":"alias","model":"gemm"}', headers: { 'x-cairn-signature-256': 'sha256=00' } });
        assert.equal(forged.status, 401);
      } finally {
        await listener.stop();
        const hooks = await getJson(`${hooked.url}/v1/webhooks`);
        assert.equal(hooks.body.webhooks.length, 0, 'removed itself on stop');
        await hooked.stop();
      }
    });
  });
}

/** `name{labels} value` lines of /metrics as a map. */
async function metricValues(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}
