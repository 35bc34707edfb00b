// The web UI end to end, in a real headless browser (Debian chromium driven by
// playwright-core) against a real server with auth on, seeded through the
// REST API: token prompt, search, model page with history and commits,
// version page with files, safety, lineage graph and copyable pull commands.
// Screenshots of each page go to test-output/screenshots/ (git-ignored).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { browserUnavailable, launchChromium, screenshotPath } from './support/browser.ts';
import { MALICIOUS } from './support/fixtures-pickle-zip.ts';
import { validSafetensors } from './support/fixtures-safetensors-gguf.ts';
import { bodyOf, call, sleep } from './support/http-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const skip = browserUnavailable();
if (skip) process.stderr.write(`# UI tests skipped: ${skip}\n`);

interface Seed {
  version: string;
  message?: string;
  aliases?: string[];
  parent?: string;
  relation?: string;
  metadata?: Record<string, unknown>;
  files: Array<{ path: string; data: Uint8Array }>;
}

async function publish(base: string, token: string, name: string, seed: Seed): Promise<any> {
  const form = new FormData();
  form.append('version', seed.version);
  if (seed.message) form.append('message', seed.message);
  for (const a of seed.aliases ?? []) form.append('alias', a);
  if (seed.parent) form.append('parent', seed.parent);
  if (seed.relation) form.append('relation', seed.relation);
  if (seed.metadata) form.append('metadata', JSON.stringify(seed.metadata));
  for (const f of seed.files) form.append('file', new Blob([bodyOf(f.data)]), f.path);
  const res = await fetch(`${base}/v1/models/${name}/versions`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } });
  const body = await res.json();
  assert.equal(res.status, 201, `publish ${name}@${seed.version}: ${JSON.stringify(body)}`);
  return body;
}

/** Waits until the git mirror has written a commit for every event of `name`. */
async function mirroredHistory(base: string, token: string, name: string): Promise<any[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await call(base, 'GET', `/v1/models/${name}/history`, undefined, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200);
    if (res.body.events.every((e: any) => e.commit)) return res.body.events;
    if (Date.now() > deadline) throw new Error(`history of ${name} still has uncommitted events: ${JSON.stringify(res.body.events)}`);
    await sleep(100);
  }
}

/** Waits until the page shows the current address, fully loaded. */
async function settled(page: Page, route: 'list' | 'model' | 'version'): Promise<void> {
  await page.waitForFunction((r) => {
    const main = document.getElementById('main');
    return main?.dataset.route === r && main.dataset.loaded === location.hash && !main.hasAttribute('aria-busy');
  }, route);
}

describe('web UI in a headless browser', { skip }, () => {
  let server: TestServer;
  let base: string;
  let token: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const unsafePickle = Object.values(MALICIOUS)[0]!.bytes;

  before(async () => {
    server = await startTestServer('fs', { auth: true });
    base = server.url;
    token = (await fs.readFile(path.join(server.dataDir, 'admin-token'), 'utf8')).trim();
    const st = validSafetensors().bytes;
    await publish(base, token, 'llama-base', { version: '1.0', message: 'first base model', aliases: ['production'], metadata: { license: 'apache-2.0', dataset: 'web-10b' }, files: [{ path: 'model.safetensors', data: st }, { path: 'config.json', data: new TextEncoder().encode('{"hidden":64}') }] });
    await publish(base, token, 'llama-base', { version: '1.1', message: 'more steps', files: [{ path: 'model.safetensors', data: st }] });
    await publish(base, token, 'llama-chat', {
      version: '2.0',
      message: 'quantized chat model',
      parent: 'llama-base@1.0',
      relation: 'quantized-from',
      metadata: { recipe: { bits: 4 } },
      files: [{ path: 'model.safetensors', data: st }, { path: 'legacy/optimizer.pkl', data: unsafePickle }],
    });
    await publish(base, token, 'llama-chat-lite', { version: '0.1', parent: 'llama-chat@2.0', relation: 'distilled-from', files: [{ path: 'model.safetensors', data: st }] });
    await publish(base, token, 'vision-tiny', { version: '0.3.0', message: 'unrelated model', files: [{ path: 'weights.safetensors', data: st }] });
    const alias = await call(base, 'PUT', '/v1/models/llama-chat/aliases/staging', { version: '2.0' }, { authorization: `Bearer ${token}` });
    assert.equal(alias.status, 200);

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    // the async clipboard API needs these in headless chromium
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/401|Unauthorized/.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
  });

  test('the UI files are served without a token; the API still needs one', async () => {
    for (const p of ['/', '/ui/app.js', '/ui/style.css']) {
      const res = await fetch(`${base}${p}`);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', p === '/' ? /text\/html/ : p.endsWith('.js') ? /javascript/ : /text\/css/);
      assert.ok(res.headers.get('content-security-policy'), `${p} has a CSP`);
    }
    assert.equal((await fetch(`${base}/v1/models`)).status, 401);
    const missing = await fetch(`${base}/ui/nope.js`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, 'ROUTE_NOT_FOUND');
  });

  test('without a token: a clear prompt; with it: the model list, search and filters', async () => {
    await page.goto(`${base}/`);
    const prompt = page.locator('[data-view="login"]');
    await prompt.waitFor();
    assert.match(await prompt.innerText(), /needs a token/);
    await page.screenshot({ path: await screenshotPath('login-prompt') });

    // enter the token in the top bar; it is kept in localStorage
    await page.fill('#token-input', token);
    await page.click('#token-form button[type="submit"]');
    await settled(page, 'list');
    assert.equal(await page.evaluate(() => localStorage.getItem('cairn.token')), token);
    const names = await page.locator('tr[data-model]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-model')));
    assert.deepEqual(names, ['llama-base', 'llama-chat', 'llama-chat-lite', 'vision-tiny']);
    await page.screenshot({ path: await screenshotPath('list') });

    await page.fill('input[name="q"]', 'chat');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-model]').length === 2 && location.hash.includes('q=chat'));
    await settled(page, 'list');
    assert.deepEqual(await page.locator('tr[data-model]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-model'))), ['llama-chat', 'llama-chat-lite']);

    await page.selectOption('select[name="unsafe"]', 'true');
    await page.waitForFunction(() => location.hash.includes('unsafe=true'));
    await settled(page, 'list');
    assert.deepEqual(await page.locator('tr[data-model]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-model'))), ['llama-chat']);
  });

  test('model page: aliases, versions and a history timeline with commit ids', async () => {
    await page.click('a.model-link:text-is("llama-chat")');
    await settled(page, 'model');
    assert.equal(await page.locator('h1').innerText(), 'llama-chat');
    assert.ok(await page.locator('.chip[data-alias="staging"]').isVisible(), 'the staging alias is shown');
    assert.deepEqual(await page.locator('tr[data-version]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-version'))), ['2.0']);

    const events = await mirroredHistory(base, token, 'llama-chat');
    assert.equal(events.length, 2); // alias, publish (newest first)
    // the page may have loaded before the mirror caught up: reload until the commits show
    await page.waitForFunction(async (n) => {
      if (document.querySelectorAll('.event[data-commit]:not([data-commit=""])').length === n) return true;
      window.dispatchEvent(new HashChangeEvent('hashchange'));
      await new Promise((r) => setTimeout(r, 200));
      return false;
    }, events.length, { polling: 300, timeout: 20_000 });
    await settled(page, 'model');
    const shown = await page.locator('.event').evaluateAll((els) => els.map((e) => ({
      event: e.getAttribute('data-event'),
      commit: e.getAttribute('data-commit'),
      short: e.querySelector('.commit-id')?.textContent,
      command: e.querySelector('.copy-text')?.textContent,
    })));
    assert.deepEqual(shown.map((s) => s.event), events.map((e) => e.event));
    for (const [i, s] of shown.entries()) {
      assert.equal(s.commit, events[i].commit, 'the commit is the history API commit');
      assert.equal(s.short, events[i].commit.slice(0, 7));
      assert.equal(s.command, `git show ${events[i].commit}`);
    }
    await page.screenshot({ path: await screenshotPath('model') });
  });

  test('version page: files, safety, summary, lineage graph, copyable pull command', async () => {
    await page.click('a.version-link:text-is("2.0")');
    await settled(page, 'version');
    assert.match(await page.locator('h1').innerText(), /llama-chat\s*@\s*2\.0/);

    // safety: the version and the pickle are unsafe, in red; the safetensors file is safe
    const unsafeBadge = page.locator('.page-head [data-safety="unsafe"]');
    assert.ok(await unsafeBadge.isVisible(), 'the unsafe badge is shown');
    const red = await unsafeBadge.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(red, 'rgb(198, 40, 40)');
    assert.equal(await page.locator('tr[data-file="legacy/optimizer.pkl"] [data-safety]').getAttribute('data-safety'), 'unsafe');
    assert.match(await page.locator('tr[data-file="legacy/optimizer.pkl"] .findings').innerText(), /os\.system/);
    assert.equal(await page.locator('tr[data-file="model.safetensors"] [data-safety]').getAttribute('data-safety'), 'safe');
    assert.match(await page.locator('tr[data-file="model.safetensors"]').innerText(), /safetensors/);

    // lineage: parent above, descendant below, edges labelled with the relation
    const graph = page.locator('svg.lineage');
    await graph.waitFor();
    const nodes = await graph.locator('.node').evaluateAll((els) => els.map((e) => ({
      key: e.getAttribute('data-node'),
      kind: e.getAttribute('data-kind'),
      y: Number(e.querySelector('rect')?.getAttribute('y')),
    })));
    const byKey = Object.fromEntries(nodes.map((n) => [n.key, n]));
    assert.equal(byKey['llama-chat@2.0']?.kind, 'root');
    assert.equal(byKey['llama-base@1.0']?.kind, 'ancestor');
    assert.equal(byKey['llama-chat-lite@0.1']?.kind, 'descendant');
    assert.ok(byKey['llama-base@1.0']!.y < byKey['llama-chat@2.0']!.y && byKey['llama-chat@2.0']!.y < byKey['llama-chat-lite@0.1']!.y, 'ancestors above, descendants below');
    const labels = await graph.locator('.edge-label').allTextContents();
    assert.deepEqual(labels.sort(), ['distilled-from', 'quantized-from']);

    await page.screenshot({ path: await screenshotPath('version') });
    await page.screenshot({ path: await screenshotPath('version-full'), fullPage: true });

    // what changed from the parent, with the bytes the two share
    const changes = page.locator('[data-section="changes"]');
    assert.match(await changes.locator('h2').innerText(), /^Changes from llama-base@1\.0$/);
    assert.match(await changes.locator('p').innerText(), /^\d+ changed, \d+ added, \d+ removed, \d+ unchanged · [\d.]+% of .+ already stored with it · .+ stored for the rest$/);

    // copy the pull command: the async clipboard API (permissions granted above)
    const pull = page.locator('[data-section="pull"] .copy').first();
    assert.equal(await pull.locator('.copy-text').innerText(), 'cairn pull llama-chat@2.0');
    await pull.locator('button').click();
    await page.waitForFunction(() => document.querySelector('[data-section="pull"] .copy-btn')?.textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'cairn pull llama-chat@2.0');
    const curls = await page.locator('[data-section="pull"] pre.copy-text').allTextContents();
    assert.ok(curls.some((c) => c.includes('Authorization: Bearer $CAIRN_TOKEN') && c.includes(`${base}/v1/models/llama-chat/versions/2.0/files/legacy/optimizer.pkl`)), curls.join('\n'));
    assert.ok(curls.some((c) => c.startsWith(`HF_ENDPOINT=${base}/hf `) && c.includes('snapshot_download("llama-chat", revision="2.0")')), curls.join('\n'));

    // following the lineage graph opens the parent
    await graph.locator('.node[data-node="llama-base@1.0"]').click();
    await settled(page, 'version');
    assert.match(await page.locator('h1').innerText(), /llama-base\s*@\s*1\.0/);
    assert.ok(await page.locator('.page-head [data-safety="safe"]').isVisible());
  });

  test('a token limited to some models: a parent it may not read is shown as hidden, and left out of the graph and the changes', async () => {
    const created = await call(base, 'POST', '/v1/tokens', { name: 'chat-reader', scopes: ['read'], models: ['llama-chat*'] }, { authorization: `Bearer ${token}` });
    assert.equal(created.status, 201);
    await page.evaluate((t) => localStorage.setItem('cairn.token', t), created.body.token as string);
    await page.goto(`${base}/#/models/llama-chat/versions/2.0`);
    await settled(page, 'version');
    assert.match(await page.locator('h1').innerText(), /llama-chat\s*@\s*2\.0/);
    const parents = await page.locator('ul.parents li').allInnerTexts();
    assert.equal(parents.length, 1);
    assert.match(parents[0]!, /^quantized-from\s+a version you may not read$/);
    const nodes = await page.locator('svg.lineage .node').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
    assert.deepEqual(nodes.sort(), ['llama-chat-lite@0.1', 'llama-chat@2.0']);
    assert.equal(await page.locator('[data-section="changes"]').count(), 0, 'no diff against a version it may not read (and no earlier version)');
    assert.doesNotMatch(await page.locator('#main').innerText(), /llama-base/);
    await page.screenshot({ path: await screenshotPath('version-hidden-parent') });
    await page.evaluate((t) => localStorage.setItem('cairn.token', t), token);
  });

  test('a rejected token brings the prompt back', async () => {
    await page.evaluate(() => localStorage.setItem('cairn.token', 'cairn_not-a-real-token'));
    await page.goto(`${base}/#/models/llama-base`);
    const prompt = page.locator('[data-view="login"]');
    await prompt.waitFor();
    assert.match(await prompt.innerText(), /not accepted/);
    await page.fill('#login-token', token);
    await page.click('[data-view="login"] button[type="submit"]');
    await settled(page, 'model');
    assert.equal(await page.locator('h1').innerText(), 'llama-base');
    assert.deepEqual(pageErrors, [], 'no script errors on any page');
  });

  test('namespaced models: listed, and #/models/acme/resnet[/versions/<v>] open them; #/models/acme/versions/<v> is the flat acme', async () => {
    const st = validSafetensors().bytes;
    await publish(base, token, 'acme', { version: '1.0', files: [{ path: 'flat.safetensors', data: st }] });
    await publish(base, token, 'acme/resnet', { version: '1.0', aliases: ['production'], files: [{ path: 'model.safetensors', data: st }] });
    await publish(base, token, 'acme/resnet', { version: '1.1', parent: 'acme/resnet@1.0', relation: 'fine-tuned-from', files: [{ path: 'model.safetensors', data: st }, { path: 'conf/a.json', data: new TextEncoder().encode('{}') }] });

    await page.goto(`${base}/#/?q=acme`);
    await settled(page, 'list');
    assert.deepEqual(await page.locator('tr[data-model]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-model'))), ['acme', 'acme/resnet']);
    await page.click('a.model-link:text-is("acme/resnet")');
    await settled(page, 'model');
    assert.equal(await page.evaluate(() => location.hash), '#/models/acme/resnet');
    assert.equal(await page.locator('h1').innerText(), 'acme/resnet');
    assert.ok(await page.locator('.chip[data-alias="production"]').isVisible());
    assert.deepEqual(await page.locator('tr[data-version]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-version'))), ['1.1', '1.0']);
    assert.equal(await page.locator('.event').count(), 2);

    await page.click('a.version-link:text-is("1.1")');
    await settled(page, 'version');
    assert.equal(await page.evaluate(() => location.hash), '#/models/acme/resnet/versions/1.1');
    assert.match(await page.locator('h1').innerText(), /acme\/resnet\s*@\s*1\.1/);
    assert.ok(await page.locator('tr[data-file="conf/a.json"]').isVisible());
    assert.equal(await page.locator('[data-section="pull"] .copy-text').first().innerText(), 'cairn pull acme/resnet@1.1');
    const curls = await page.locator('[data-section="pull"] pre.copy-text').allTextContents();
    assert.ok(curls.some((c) => c.includes(`${base}/v1/models/acme/resnet/versions/1.1/files/conf/a.json`)), curls.join('\n'));
    assert.match(await page.locator('[data-section="changes"] h2').innerText(), /^Changes from acme\/resnet@1\.0$/);
    const nodes = await page.locator('svg.lineage .node').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
    assert.deepEqual(nodes.sort(), ['acme/resnet@1.0', 'acme/resnet@1.1']);
    await page.screenshot({ path: await screenshotPath('version-namespaced') });

    // the lineage graph's parent link, then the flat model of the same first segment
    await page.locator('svg.lineage .node[data-node="acme/resnet@1.0"]').click();
    await settled(page, 'version');
    assert.equal(await page.evaluate(() => location.hash), '#/models/acme/resnet/versions/1.0');
    await page.goto(`${base}/#/models/acme/versions/1.0`);
    await settled(page, 'version');
    assert.match(await page.locator('h1').innerText(), /^acme\s*@\s*1\.0$/);
    assert.ok(await page.locator('tr[data-file="flat.safetensors"]').isVisible());
    // the encoded form of the same name opens the same page
    await page.goto(`${base}/#/models/acme%2Fresnet`);
    await settled(page, 'model');
    assert.equal(await page.locator('h1').innerText(), 'acme/resnet');
    assert.deepEqual(pageErrors, [], 'no script errors on any page');
  });
});
