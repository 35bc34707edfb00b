// Format analysis end to end: files published through the real server are
// recognised from their content, the version carries a summary, unsafe files
// are flagged (or refused under CAIRN_UNSAFE=reject), broken model files are
// refused with 422, and model lists filter on what was found.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { onnxModel } from './support/fixtures-onnx-tf.ts';
import { MALICIOUS, pytorchZip, STATE_DICT } from './support/fixtures-pickle-zip.ts';
import { useJoblibFixtures } from './support/fixtures-python.ts';
import { validGguf, validSafetensors } from './support/fixtures-safetensors-gguf.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';

const run = promisify(execFile);

async function publish(url: string, name: string, version: string, files: Record<string, Uint8Array | string>) {
  const form = new FormData();
  form.append('version', version);
  for (const [p, content] of Object.entries(files)) form.append('file', new Blob([content as BlobPart]), p);
  const res = await fetch(`${url}/v1/models/${name}/versions`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as any };
}

async function get(url: string): Promise<any> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return res.json();
}

const malicious = MALICIOUS['GLOBAL os.system (protocol 0)']!.bytes;

describe('format analysis through the server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('fs');
  });
  after(() => server.stop());

  test('each file carries its format and metadata; the version a summary', async () => {
    const r = await publish(server.url, 'mixed', '1.0', {
      'model.onnx': onnxModel(),
      'weights/model.safetensors': validSafetensors().bytes,
      'llm.gguf': validGguf().bytes,
      'README.md': '# hello',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const byPath = Object.fromEntries(r.body.files.map((f: any) => [f.path, f]));
    assert.equal(byPath['model.onnx'].format, 'onnx');
    assert.equal(byPath['model.onnx'].framework, 'onnx');
    assert.ok(byPath['model.onnx'].inputs.length > 0);
    assert.ok(byPath['model.onnx'].details.opsets ?? byPath['model.onnx'].details.opset_import);
    assert.equal(byPath['weights/model.safetensors'].format, 'safetensors');
    assert.ok(byPath['weights/model.safetensors'].parameters > 0);
    assert.equal(byPath['llm.gguf'].format, 'gguf');
    assert.equal(byPath['README.md'].format, 'unknown');
    assert.equal(byPath['README.md'].size, 7);
    assert.match(byPath['README.md'].digest, /^sha256:/);
    const s = r.body.summary;
    assert.deepEqual(s.formats, ['gguf', 'onnx', 'safetensors', 'unknown']);
    assert.equal(s.safety.verdict, 'safe');
    const total = ['model.onnx', 'weights/model.safetensors', 'llm.gguf'].reduce((n, p) => n + byPath[p].parameters, 0);
    assert.equal(s.parameters, total);
    // the same document is served later, and the lineage manifest carries the summary
    const doc = await get(`${server.url}/v1/models/mixed/versions/1.0`);
    assert.deepEqual(doc.summary, s);
    await server.cairn.mirror.kick();
    const { stdout } = await run('git', ['--git-dir', server.cairn.mirror.gitdir, 'show', 'main:models/mixed/versions/1.0.json']);
    assert.deepEqual(JSON.parse(stdout).summary, s);
  });

  test('a pickle importing os.system is published but flagged unsafe (CAIRN_UNSAFE=warn)', async () => {
    const r = await publish(server.url, 'sneaky', '1.0', { 'model.pkl': malicious, 'weights.pt': pytorchZip({ tensors: STATE_DICT }) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.summary.safety.verdict, 'unsafe');
    assert.deepEqual(r.body.summary.safety.unsafe_files.map((f: any) => f.path), ['model.pkl']);
    const pkl = r.body.files.find((f: any) => f.path === 'model.pkl');
    assert.equal(pkl.safety.verdict, 'unsafe');
    assert.ok(pkl.safety.findings.some((x: any) => x.global === 'os.system'));
    const pt = r.body.files.find((f: any) => f.path === 'weights.pt');
    assert.equal(pt.format, 'pytorch');
    assert.equal(pt.safety.verdict, 'safe');
    // cairn show says so plainly
    const { stdout } = await run(process.execPath, [cairnBin(), 'show', 'sneaky@1.0'], { env: { ...process.env, CAIRN_URL: server.url } });
    assert.match(stdout, /safety: +UNSAFE/);
    assert.match(stdout, /model\.pkl: os\.system/);
  });

  test('a truncated model file is refused with 422 INVALID_MODEL_FILE and nothing is published', async () => {
    const whole = validSafetensors().bytes;
    const r = await publish(server.url, 'broken', '1.0', { 'model.safetensors': whole.subarray(0, whole.length - 10) });
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, 'INVALID_MODEL_FILE');
    assert.match(r.body.error.message, /model\.safetensors/);
    assert.equal((await fetch(`${server.url}/v1/models/broken/versions/1.0`)).status, 404);
    const gguf = validGguf().bytes;
    const g = await publish(server.url, 'broken', '1.0', { 'x.gguf': gguf.subarray(0, 40) });
    assert.equal(g.status, 422);
  });

  test('model lists filter on format, framework and safety', async () => {
    const names = async (query: string) => (await get(`${server.url}/v1/models?${query}`)).models.map((m: any) => m.name);
    assert.deepEqual(await names('format=onnx'), ['mixed']);
    assert.deepEqual(await names('format=pytorch'), ['sneaky']);
    assert.deepEqual(await names('unsafe=true'), ['sneaky']);
    assert.deepEqual(await names('unsafe=false'), ['mixed']);
    assert.deepEqual(await names('framework=pytorch'), ['sneaky']);
    assert.equal((await fetch(`${server.url}/v1/models?unsafe=maybe`)).status, 400);
    const { stdout } = await run(process.execPath, [cairnBin(), 'ls', '--unsafe', '--json'], { env: { ...process.env, CAIRN_URL: server.url } });
    assert.deepEqual(JSON.parse(stdout).models.map((m: any) => m.name), ['sneaky']);
  });
});

describe('CAIRN_UNSAFE=reject', () => {
  test('a version with a file that runs code is refused with 422 UNSAFE_MODEL', async () => {
    const server = await startTestServer('fs', { unsafePolicy: 'reject' });
    try {
      const r = await publish(server.url, 'sneaky', '1.0', { 'model.pkl': malicious });
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, 'UNSAFE_MODEL');
      assert.match(r.body.error.message, /os\.system/);
      assert.equal((await fetch(`${server.url}/v1/models/sneaky/versions/1.0`)).status, 404);
      const ok = await publish(server.url, 'fine', '1.0', { 'weights.pt': pytorchZip({ tensors: STATE_DICT }) });
      assert.equal(ok.status, 201);
    } finally {
      await server.stop();
    }
  });
});

describe('joblib arrays whose dtype has an object field, written by joblib (Python venv: numpy, joblib)', () => {
  const python = useJoblibFixtures();

  test('CAIRN_UNSAFE=warn: files whose loading runs code are published and flagged unsafe; the harmless dump is safe', async (t) => {
    const fx = await python.get(t);
    if (!fx) return;
    assert.ok(fx.ran('attack') && fx.ran('crafted'), 'joblib.load runs both');
    const server = await startTestServer('fs');
    try {
      const r = await publish(server.url, 'objects', '1.0', { 'attack.joblib': fx.file('attack.joblib'), 'crafted.joblib': fx.file('crafted.joblib') });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.summary.safety.verdict, 'unsafe');
      assert.deepEqual(r.body.summary.safety.unsafe_files.map((f: any) => f.path).sort(), ['attack.joblib', 'crafted.joblib']);
      for (const f of r.body.files) {
        assert.equal(f.format, 'joblib');
        assert.ok(f.safety.findings.some((x: any) => x.global === 'os.system'), JSON.stringify(f.safety));
      }
      const ok = await publish(server.url, 'objects', '1.1', { 'model.joblib': fx.file('benign-mixed.joblib') });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.summary.safety.verdict, 'safe');
    } finally {
      await server.stop();
    }
  });

  test('CAIRN_UNSAFE=reject: refused with 422 UNSAFE_MODEL, nothing published; the harmless dump is accepted', async (t) => {
    const fx = await python.get(t);
    if (!fx) return;
    const server = await startTestServer('fs', { unsafePolicy: 'reject' });
    try {
      for (const name of ['crafted.joblib', 'attack.joblib']) {
        const r = await publish(server.url, 'objects', '1.0', { 'model.joblib': fx.file(name) });
        assert.equal(r.status, 422, `${name}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'UNSAFE_MODEL');
        assert.match(r.body.error.message, /os\.system/);
      }
      assert.equal((await fetch(`${server.url}/v1/models/objects/versions/1.0`)).status, 404);
      const ok = await publish(server.url, 'objects', '1.0', { 'model.joblib': fx.file('benign-nested.joblib') });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
    } finally {
      await server.stop();
    }
  });
});
