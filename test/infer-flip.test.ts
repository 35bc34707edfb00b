// An alias flipped under load: 8 clients send requests without pause (OIP
// and TF Serving, alternately) to the `production` label while it moves from
// v1 to v2 and back five times, the server following the registry by polling
// alone. Every request must succeed; every response must be wholly v1's or
// wholly v2's answer (both outputs, and OIP's model_version, from one
// version); after each move the new version must answer within 2 s, and
// once it has answered, every request sent after that must reach it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildFixtures, getJson, maxAbsDiff, publish, reference, refInput, setAlias, startInfer, waitFor, flatten, type Fixtures, type InferProcess, type RefTensor } from './support/infer.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const fixtures = await buildFixtures();
const CLIENTS = 8;
const MOVES = 10; // v1 → v2 and back, five times
const SWITCH_LIMIT_MS = 2000;

if ('skip' in fixtures) {
  test('alias flip under load', { skip: fixtures.skip }, () => {});
} else {
  const fx: Fixtures = fixtures;
  let registry: TestServer;
  let infer: InferProcess;
  let cacheDir: string;

  before(async () => {
    registry = await startTestServer('fs');
    await publish(registry.url, 'gemm', '1.0.0', { 'model.onnx': await fx.file('gemm-v1.onnx') }, ['production']);
    await publish(registry.url, 'gemm', '2.0.0', { 'model.onnx': await fx.file('gemm-v2.onnx') });
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-infer-flip-'));
    // polling alone (the default interval, 1 s): no webhook
    infer = await startInfer(['--url', registry.url, '--cache-dir', cacheDir, 'gemm']);
    await waitFor('ready', async () => (await getJson(`${infer.url}/v2/health/ready`)).status === 200);
    // server readiness is the default label (latest, 2.0.0); the clients ask for production
    await waitFor('production loaded', async () => (await getJson(`${infer.url}/v2/models/gemm/versions/production/ready`)).status === 200);
  });

  after(async () => {
    await infer?.stop();
    await registry?.stop();
    await fs.rm(fx.dir, { recursive: true, force: true });
    if (cacheDir) await fs.rm(cacheDir, { recursive: true, force: true });
  });

  test(`alias flip under load: ${CLIENTS} clients, production moved ${MOVES} times`, async (t) => {
    // each client sends its own input; both versions' answers to it, from Python onnxruntime
    const inputs = Array.from({ length: CLIENTS }, (_, c) => Float32Array.from({ length: 4 * (1 + (c % 2)) }, (_, i) => Math.sin(c * 7 + i)));
    const refs = await reference(
      fx.env,
      inputs.flatMap((x) => ['gemm-v1.onnx', 'gemm-v2.onnx'].map((m) => ({ model: path.join(fx.dir, m), feeds: { x: refInput('float32', [x.length / 4, 4], x) } }))),
    );
    const expected = inputs.map((_, c) => ({ '1.0.0': refs[2 * c]!, '2.0.0': refs[2 * c + 1]! }));
    const matches = (got: { y: unknown; norm: unknown }, want: Record<string, RefTensor>) =>
      maxAbsDiff(flatten(got.y), want.y!.data as ArrayLike<number>) <= 1e-5 && maxAbsDiff(flatten(got.norm), want.norm!.data as ArrayLike<number>) <= 1e-5;

    type Answer = { sent: number; received: number; version: string };
    const answers: Answer[] = [];
    const failures: string[] = [];
    let stop = false;

    const client = async (c: number) => {
      const x = inputs[c]!;
      const rows = x.length / 4;
      for (let i = 0; !stop; i++) {
        const sent = performance.now();
        const oip = i % 2 === 0;
        const res = oip
          ? await fetch(`${infer.url}/v2/models/gemm/versions/production/infer`, {
              method: 'POST',
              body: JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 4], datatype: 'FP32', data: Array.from(x) }] }),
            })
          : await fetch(`${infer.url}/v1/models/gemm/labels/production:predict`, {
              method: 'POST',
              body: JSON.stringify({ inputs: { x: Array.from({ length: rows }, (_, r) => Array.from(x.subarray(r * 4, r * 4 + 4))) } }),
            });
        const text = await res.text();
        const received = performance.now();
        if (res.status !== 200) {
          failures.push(`client ${c}: ${res.status} ${text.slice(0, 200)}`);
          continue;
        }
        const body = JSON.parse(text);
        const got = oip
          ? { y: body.outputs.find((o: { name: string }) => o.name === 'y').data, norm: body.outputs.find((o: { name: string }) => o.name === 'norm').data }
          : { y: body.outputs.y, norm: body.outputs.norm };
        const from = (['1.0.0', '2.0.0'] as const).filter((v) => matches(got, expected[c]![v]));
        if (from.length !== 1) failures.push(`client ${c}: an answer that is neither v1's nor v2's: ${text.slice(0, 200)}`);
        else if (oip && body.model_version !== from[0]) failures.push(`client ${c}: model_version ${body.model_version} but the outputs are ${from[0]}'s`);
        else answers.push({ sent, received, version: from[0]! });
      }
    };

    const running = Array.from({ length: CLIENTS }, (_, c) => client(c));
    const switches: number[] = [];
    const started = performance.now();
    try {
      await waitFor('load on the server', async () => answers.length > 100);
      let target = '1.0.0';
      for (let move = 0; move < MOVES; move++) {
        target = target === '1.0.0' ? '2.0.0' : '1.0.0';
        await setAlias(registry.url, 'gemm', 'production', target);
        const movedAt = performance.now();
        const first = await waitFor(
          `production to reach ${target}`,
          async () => answers.find((a) => a.sent >= movedAt && a.version === target),
          10_000,
          10,
        );
        switches.push(first.received - movedAt);
        // keep the load on a while longer, then check nothing sent after the switch went to the old version
        await new Promise((r) => setTimeout(r, 300));
        const stale = answers.filter((a) => a.sent > first.received && a.version !== target);
        assert.equal(stale.length, 0, `move ${move + 1}: ${stale.length} requests sent after ${target} answered still reached the old version`);
      }
    } finally {
      stop = true;
      await Promise.all(running);
    }
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`${answers.length} requests in ${seconds.toFixed(1)} s (${(answers.length / seconds).toFixed(0)}/s), ${failures.length} failed`);
    t.diagnostic(`switch after each move (ms): ${switches.map((s) => s.toFixed(0)).join(', ')}; max ${Math.max(...switches).toFixed(0)}`);
    assert.deepEqual(failures, []);
    for (const [i, s] of switches.entries()) assert.ok(s < SWITCH_LIMIT_MS, `move ${i + 1}: the new version answered after ${s.toFixed(0)} ms`);
    assert.ok(answers.some((a) => a.version === '1.0.0') && answers.some((a) => a.version === '2.0.0'));
    // both versions were unloaded and loaded again along the way, and drained before release
    const status = await getJson(`${infer.url}/status`);
    const gemm = status.body.models[0];
    assert.equal(gemm.labels.production.serving, '1.0.0');
    assert.ok(gemm.versions.every((v: { in_flight: number }) => v.in_flight === 0));
  });
}
