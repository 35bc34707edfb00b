// The web UI's version page tells how to serve an ONNX version: the
// `cairn infer` command and predict requests built from the model's inputs.
// Here they are copied from the page in a real browser and run as a user
// would paste them (bash, node, curl) against the real `cairn infer` the
// first command starts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { browserUnavailable, launchChromium, screenshotPath } from './support/browser.ts';
import { buildFixtures, getJson, publish, startInfer, waitFor, type Fixtures, type InferProcess } from './support/infer.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const run = promisify(execFile);
const noBrowser = browserUnavailable();
const fixtures = noBrowser ? undefined : await buildFixtures();
const skip = noBrowser ?? (fixtures && 'skip' in fixtures ? fixtures.skip : false);

test('the version page gives a cairn infer command and predict requests that work as pasted', { skip }, async () => {
  const fx = fixtures as Fixtures;
  let registry: TestServer | undefined;
  let infer: InferProcess | undefined;
  let browser: Browser | undefined;
  const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-infer-ui-'));
  try {
    registry = await startTestServer('fs');
    await publish(registry.url, 'vad-like', '0.3.0', { 'stateful.onnx': await fx.file('stateful.onnx') });
    await publish(registry.url, 'weights-only', '1', { 'weights.bin': 'not a model' });

    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${registry.url}/#/models/vad-like/versions/0.3.0`);
    const serve = page.locator('[data-section="serve"]');
    await serve.waitFor();
    const [command, predict, oip] = await serve.locator('pre.copy-text').allTextContents();
    await page.screenshot({ path: await screenshotPath('version-serve'), fullPage: true });
    assert.equal(command, 'cairn infer vad-like@0.3.0');
    assert.match(predict!, /"x":z\(\[1,1\],0\),"state":z\(\[2,1,8\],0\),"sr":z\(\[\],0\)/);
    assert.match(oip!, /\{name:"sr",shape:\[\],datatype:"INT64",data:z\(\[1\],0\)\}/);

    // a version without an ONNX model has no such card
    await page.goto(`${registry.url}/#/models/weights-only/versions/1`);
    await page.waitForFunction(() => {
      const main = document.getElementById('main');
      return main?.dataset.loaded === location.hash && !main.hasAttribute('aria-busy');
    });
    await page.locator('[data-section="pull"]').waitFor();
    assert.equal(await page.locator('[data-section="serve"]').count(), 0);

    // run them: the command (with this test's registry, port and cache), then the requests as pasted
    infer = await startInfer([...command!.split(' ').slice(2), '--url', registry.url, '--cache-dir', cacheDir]);
    await waitFor('ready', async () => (await getJson(`${infer!.url}/v2/health/ready`)).status === 200);
    const port = new URL(infer.url).port;
    const paste = async (text: string) => JSON.parse((await run('bash', ['-c', text.replace('127.0.0.1:8500', `127.0.0.1:${port}`)])).stdout);
    const tf = await paste(predict!);
    assert.deepEqual(tf.outputs.y, [[0.5]], JSON.stringify(tf));
    const v2 = await paste(oip!);
    assert.equal(v2.model_name, 'vad-like');
    assert.equal(v2.model_version, '0.3.0');
    assert.deepEqual(v2.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape]), [['y', [1, 1]], ['stateN', [2, 1, 8]]]);
  } finally {
    await browser?.close();
    await infer?.stop();
    await registry?.stop();
    await fs.rm(cacheDir, { recursive: true, force: true });
    if (fixtures && !('skip' in fixtures)) await fs.rm(fixtures.dir, { recursive: true, force: true });
  }
});
