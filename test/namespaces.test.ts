// Namespaced model names (`acme/resnet`) end to end through a real server:
// how a path is read where a namespace and a sub-resource look alike (every
// ambiguous case of README "Namespaces"), the reserved words, `main`, the
// lists and their cursors, the Hugging Face routes, the metrics labels, and
// token patterns (`acme/*`). The CLI, git and the web UI are in cli.test.ts,
// lineage.test.ts and ui.test.ts; the webhook patterns in webhooks.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkModelPatterns, modelAllowed, patternMatches } from '../src/access.ts';
import { checkAlias, checkAliasName, checkName, checkNewName, checkNewVersion, RESERVED_WORDS } from '../src/identifiers.ts';
import { bearer, createToken, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { assertError, call, publishForm } from './support/http-client.ts';
import { usePythonVenv } from './support/python.ts';

const text = (s: string) => new TextEncoder().encode(s);

describe('names and patterns (no server)', () => {
  test('a name is one part or two; no part of a new name is a reserved word; a flat legacy one is still a name', () => {
    for (const ok of ['resnet', 'acme/resnet', 'a.b-c_d/e.f', `${'a'.repeat(63)}/${'b'.repeat(64)}`]) assert.equal(checkName(ok), ok);
    for (const bad of ['', '/', 'acme/', '/resnet', 'a/b/c', 'Acme/resnet', 'acme//resnet', 'acme/re snet', `${'a'.repeat(64)}/${'b'.repeat(64)}`, 'acme/-x', 7]) {
      assert.throws(() => checkName(bad), { code: 'INVALID_NAME' }, JSON.stringify(bad));
    }
    for (const word of RESERVED_WORDS) {
      assert.throws(() => checkName(`acme/${word}`), (e: any) => e.code === 'INVALID_NAME' && e.message.includes(`"${word}" is a reserved word`), `acme/${word}`);
      assert.throws(() => checkName(`${word}/x`), { code: 'INVALID_NAME' }, `${word}/x`);
      assert.equal(checkName(word), word, 'a flat model from before the word was reserved stays addressable');
      assert.throws(() => checkNewName(word), { code: 'INVALID_NAME' }, `new model ${word}`);
    }
    assert.equal(checkNewName('acme/resnet'), 'acme/resnet');
    assert.equal(checkNewName('versions-v2'), 'versions-v2', 'only whole parts are reserved');
  });

  test('`main` is reserved for new aliases and versions; an alias `main` from before can still be named (to remove it)', () => {
    assert.throws(() => checkAlias('main'), { code: 'INVALID_ALIAS' });
    assert.throws(() => checkAlias('latest'), { code: 'INVALID_ALIAS' });
    assert.equal(checkAliasName('main'), 'main');
    assert.throws(() => checkAliasName('latest'), { code: 'INVALID_ALIAS' });
    assert.throws(() => checkAlias('acme/prod'), { code: 'INVALID_ALIAS' }, 'an alias is one part');
    assert.throws(() => checkNewVersion('main'), { code: 'INVALID_VERSION' });
    assert.equal(checkNewVersion('main-2'), 'main-2');
  });

  test('`*` matches within one part, never across the slash; `*` alone is every model', () => {
    const cases: Array<[string, string, boolean]> = [
      ['acme/*', 'acme/x', true],
      ['acme/*', 'acme/resnet.v2', true],
      ['acme/*', 'acme', false],
      ['acme/*', 'acme2/x', false],
      ['acme/*', 'acme-x/y', false],
      ['acme/*', 'team-a/x', false],
      ['acme*', 'acme2', true],
      ['acme*', 'acme/x', false],
      ['res*', 'research/secret', false],
      ['*/resnet', 'acme/resnet', true],
      ['*/resnet', 'resnet', false],
      ['*/*', 'acme/x', true],
      ['*/*', 'acme', false],
      ['*', 'acme', true],
      ['*', 'acme/x', true],
      ['a*e/r*t', 'acme/resnet', true],
      ['acme/resnet', 'acme/resnet', true],
      ['acme/resnet', 'acme/resnet2', false],
    ];
    for (const [pattern, name, expected] of cases) assert.equal(patternMatches(pattern, name), expected, `${pattern} ~ ${name}`);
    assert.equal(modelAllowed(['acme/*'], '*'), false, 'a namespace pattern is not every model');
    assert.equal(modelAllowed(['acme/*', '*'], 'x/y'), true);
    assert.deepEqual(checkModelPatterns(['acme/*', '*/resnet']), ['*/resnet', 'acme/*']);
    for (const bad of ['acme/*/x', 'acme/', '/x', 'Acme/*', `${'a'.repeat(64)}/${'b'.repeat(64)}`]) {
      assert.throws(() => checkModelPatterns([bad]), { code: 'INVALID_ARGUMENT' }, bad);
    }
  });
});

describe('namespaces through the HTTP API', () => {
  let server: AuthServer;
  let base: string;
  let admin: Record<string, string>;
  const get = (path: string, headers = admin) => call(base, 'GET', path, undefined, headers);
  const publish = (name: string, version: string, files: Record<string, string> = { 'w.bin': `${name}@${version}` }, headers = admin) =>
    publishForm(base, name, { version }, Object.entries(files).map(([path, data]) => ({ path, data: text(data) })), { headers });

  before(async () => {
    server = await startAuthServer();
    base = server.url;
    admin = bearer(server.adminToken);
    const seed: Array<[string, string, Record<string, string>?]> = [
      ['acme', '1.0'],
      ['acme', 'versions'], // a version string that is also a reserved word
      ['acme', 'resolve', { 'main/x': 'acme@resolve main/x' }],
      ['acme/resnet', '1.0', { 'w.bin': 'acme/resnet@1.0', 'versions/x': 'a file under versions/' }],
      ['acme/resnet', 'versions'],
      ['acme/vit', '0.1'],
      ['acme2/x', '1'],
      ['acme-x/y', '1'],
      ['team-a/x', '1'],
      ['resnet', '3.0'],
    ];
    for (const [name, version, files] of seed) {
      const r = await publish(name, version, files);
      assert.equal(r.status, 201, `${name}@${version}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.name, name);
    }
  });

  after(async () => {
    await server?.stop();
  });

  test('a publish answers with the name and a Location that reads back the same version', async () => {
    const r = await publish('acme/bert', '1.0');
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('location'), '/v1/models/acme/bert/versions/1.0');
    const back = await get(r.headers.get('location')!);
    assert.equal(back.status, 200);
    assert.equal(back.body.name, 'acme/bert');
    assert.equal(back.body.digest, r.body.digest);
  });

  test('a model: /v1/models/acme is the flat model, /v1/models/acme/resnet the namespaced one', async () => {
    assert.equal((await get('/v1/models/acme')).body.name, 'acme');
    const ns = await get('/v1/models/acme/resnet');
    assert.equal(ns.status, 200);
    assert.equal(ns.body.name, 'acme/resnet');
    assert.equal(ns.body.counts.versions, 2);
    assertError(await get('/v1/models/acme/nope'), 404, 'MODEL_NOT_FOUND');
  });

  test('versions: /v1/models/acme/versions are the versions of acme, not a model acme/versions', async () => {
    const flat = await get('/v1/models/acme/versions');
    assert.equal(flat.status, 200);
    assert.deepEqual(flat.body.versions.map((v: any) => v.version).sort(), ['1.0', 'resolve', 'versions']);
    const ns = await get('/v1/models/acme/resnet/versions');
    assert.deepEqual(ns.body.versions.map((v: any) => v.version), ['versions', '1.0']);
  });

  test('a version called `versions`: of acme at /v1/models/acme/versions/versions, of acme/resnet one segment further', async () => {
    const flat = await get('/v1/models/acme/versions/versions');
    assert.equal(flat.status, 200);
    assert.deepEqual([flat.body.name, flat.body.version], ['acme', 'versions']);
    const ns = await get('/v1/models/acme/resnet/versions/versions');
    assert.deepEqual([ns.body.name, ns.body.version], ['acme/resnet', 'versions']);
    // no route of acme takes versions/versions/x: the only reading is version x of a model acme/versions, which cannot exist
    assertError(await get('/v1/models/acme/versions/versions/x'), 400, 'INVALID_NAME');
  });

  test('files and archives of a namespaced version, a file path that starts with a reserved word included', async () => {
    const file = await fetch(`${base}/v1/models/acme/resnet/versions/1.0/files/versions/x`, { headers: admin });
    assert.equal(file.status, 200);
    assert.equal(await file.text(), 'a file under versions/');
    const w = await fetch(`${base}/v1/models/acme/resnet/versions/1.0/files/w.bin`, { headers: admin });
    assert.equal(await w.text(), 'acme/resnet@1.0');
    const archive = await fetch(`${base}/v1/models/acme/resnet/versions/1.0/archive`, { headers: admin });
    assert.equal(archive.status, 200);
    assert.match(archive.headers.get('content-disposition') ?? '', /filename=/);
    const tar = Buffer.from(await archive.arrayBuffer());
    assert.ok(tar.includes('a file under versions/') && tar.includes('acme/resnet@1.0'), 'both files in the tar');
  });

  test('aliases and history of a namespaced model are its own, not those of the flat model', async () => {
    const set = await call(base, 'PUT', '/v1/models/acme/resnet/aliases/production', { version: '1.0' }, admin);
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual((await get('/v1/models/acme/resnet')).body.aliases, { production: '1.0' });
    assert.deepEqual((await get('/v1/models/acme')).body.aliases, {});
    const viaAlias = await fetch(`${base}/v1/models/acme/resnet/versions/production/files/w.bin`, { headers: admin });
    assert.equal(await viaAlias.text(), 'acme/resnet@1.0');
    const nsHistory = await get('/v1/models/acme/resnet/history');
    assert.deepEqual(nsHistory.body.events.map((e: any) => e.subject), ['alias acme/resnet@production -> 1.0', 'publish acme/resnet@versions', 'publish acme/resnet@1.0']);
    const flatHistory = await get('/v1/models/acme/history');
    assert.ok(flatHistory.body.events.every((e: any) => / acme@/.test(e.subject)), JSON.stringify(flatHistory.body.events));
    assert.equal((await call(base, 'DELETE', '/v1/models/acme/resnet/aliases/production', undefined, admin)).status, 204);
    assert.deepEqual((await get('/v1/models/acme/resnet')).body.aliases, {});
  });

  test('parents, lineage and diff across namespaced and flat models', async () => {
    const child = await publishForm(base, 'acme/resnet-int8', { version: '1.0' }, [{ path: 'w.bin', data: text('int8') }], { headers: admin });
    assert.equal(child.status, 201);
    const r = await fetch(`${base}/v1/models/acme/tuned/versions`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '1', files: [{ path: 'w.bin', digest: child.body.files[0].digest }], parents: [{ ref: 'acme/resnet@1.0', relation: 'fine-tuned-from' }, { ref: 'acme@1.0' }] }),
    });
    assert.equal(r.status, 201, await r.clone().text());
    const doc = (await r.json()) as any;
    assert.deepEqual(doc.parents.map((p: any) => `${p.name}@${p.version}`), ['acme/resnet@1.0', 'acme@1.0']);
    const graph = await get('/v1/models/acme/resnet/versions/1.0/lineage');
    assert.ok(graph.body.nodes.some((n: any) => n.name === 'acme/tuned'), JSON.stringify(graph.body.nodes));
    const diff = await get(`/v1/models/acme/tuned/versions/1/diff?from=${encodeURIComponent('acme/resnet@1.0')}`);
    assert.equal(diff.status, 200, JSON.stringify(diff.body));
    assert.equal(diff.body.from.name, 'acme/resnet');
    assert.deepEqual(diff.body.files.map((f: any) => `${f.path} ${f.status}`), ['versions/x removed', 'w.bin changed']);
  });

  test('an encoded slash names the same model; encoded or not, a reserved word is never part of a name', async () => {
    const encoded = await get('/v1/models/acme%2Fresnet/versions/1.0');
    assert.equal(encoded.status, 200);
    assert.equal(encoded.body.name, 'acme/resnet');
    assert.equal((await fetch(`${base}/hf/acme%2Fresnet/resolve/1.0/w.bin`, { headers: admin })).status, 200);
    const reserved = await get('/v1/models/acme%2Fversions');
    assertError(reserved, 400, 'INVALID_NAME');
    assert.match(reserved.body.error.message, /"versions" is a reserved word/);
    assertError(await get('/v1/models/acme%2Fresnet%2Fx'), 400, 'INVALID_NAME');
  });

  test('creating a model whose namespace or name is a reserved word is 400 INVALID_NAME naming the word', async () => {
    const cases: Array<[string, string]> = [
      ['acme/versions', 'versions'], // POST /v1/models/acme/versions/versions: no route of acme takes it
      ['acme/tree', 'tree'],
      ['acme/manifests', 'manifests'],
      ['versions/resnet', 'versions'],
      ['history', 'history'],
      ['model.json', 'model.json'],
      ['acme/model.json', 'model.json'], // would be a directory and a file in the lineage tree
    ];
    for (const [name, word] of cases) {
      const r = await publish(name, '1.0');
      assertError(r, 400, 'INVALID_NAME', name);
      assert.ok(r.body.error.message.includes(`"${word}" is a reserved word`), `${name}: ${r.body.error.message}`);
    }
    // nothing was created
    const all = await get('/v1/models?limit=1000');
    for (const [name] of cases) assert.ok(!all.body.models.some((m: any) => m.name === name), name);
    // the same with a JSON manifest and through an alias route
    assertError(await call(base, 'PUT', '/v1/models/acme/aliases/aliases/x', { version: '1.0' }, admin), 400, 'INVALID_NAME');
    // three segments are no name at all
    assertError(await call(base, 'POST', '/v1/models/a/b/c/versions', { version: '1', files: [] }, admin), 404, 'ROUTE_NOT_FOUND');
  });

  test('the reserved-name answer needs the access of the route it would have been (no token: 401)', async () => {
    assertError(await call(base, 'POST', '/v1/models/acme/versions/versions', { version: '1', files: [] }), 401, 'UNAUTHORIZED');
    const reader = await createToken(server, { name: 'reader-for-reserved', scopes: ['read'] });
    assertError(await call(base, 'POST', '/v1/models/acme/versions/versions', { version: '1', files: [] }, bearer(reader)), 403, 'FORBIDDEN');
  });

  test('`main` cannot be a new alias or version (it is the latest version for Hugging Face clients)', async () => {
    const alias = await call(base, 'PUT', '/v1/models/acme/resnet/aliases/main', { version: '1.0' }, admin);
    assertError(alias, 400, 'INVALID_ALIAS');
    assert.match(alias.body.error.message, /'main' is reserved/);
    assertError(await publishForm(base, 'acme/resnet', { version: '2.0', aliases: ['main'] }, [{ path: 'w.bin', data: text('x') }], { headers: admin }), 400, 'INVALID_ALIAS');
    assertError(await publish('acme/resnet', 'main'), 400, 'INVALID_VERSION');
    // so /hf's main stays the latest version
    const info = await get('/hf/api/models/acme/resnet/revision/main');
    assert.equal(info.body.cairn.version, 'versions');
  });

  test('the list: q and namespace filters, pages and cursors over flat and namespaced names', async () => {
    const ns = await get('/v1/models?namespace=acme');
    assert.deepEqual(ns.body.models.map((m: any) => m.name), ['acme/bert', 'acme/resnet', 'acme/resnet-int8', 'acme/tuned', 'acme/vit']);
    assert.deepEqual((await get('/v1/models?namespace=acme&q=res')).body.models.map((m: any) => m.name), ['acme/resnet', 'acme/resnet-int8']);
    const q = await get('/v1/models?q=acme/');
    assert.deepEqual(q.body.models.map((m: any) => m.name), ['acme/bert', 'acme/resnet', 'acme/resnet-int8', 'acme/tuned', 'acme/vit']);
    assertError(await get('/v1/models?namespace=acme/x'), 400, 'INVALID_ARGUMENT');
    assertError(await get('/v1/models?namespace=Acme'), 400, 'INVALID_ARGUMENT');
    assert.deepEqual((await get('/v1/models?namespace=nobody')).body.models, []);
    // one at a time: every model once, in name order, namespaced among the flat
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await get(`/v1/models?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200);
      seen.push(...page.body.models.map((m: any) => m.name));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [...seen].sort());
    assert.deepEqual(seen.filter((n) => n.startsWith('acme')), ['acme', 'acme-x/y', 'acme/bert', 'acme/resnet', 'acme/resnet-int8', 'acme/tuned', 'acme/vit', 'acme2/x']);
  });

  test('Hugging Face routes take flat and namespaced repo ids', async () => {
    const info = await get('/hf/api/models/acme/resnet');
    assert.equal(info.status, 200);
    assert.equal(info.body.id, 'acme/resnet');
    assert.equal(info.body.modelId, 'acme/resnet');
    assert.deepEqual(info.body.siblings.map((s: any) => s.rfilename).sort(), ['w.bin']);
    assert.equal((await get('/hf/api/models/acme')).body.id, 'acme');
    const atRevision = await get('/hf/api/models/acme/resnet/revision/1.0');
    assert.deepEqual(atRevision.body.siblings.map((s: any) => s.rfilename).sort(), ['versions/x', 'w.bin']);
    const tree = await get('/hf/api/models/acme/resnet/tree/1.0');
    assert.deepEqual(tree.body.map((e: any) => `${e.type} ${e.path}`), ['directory versions', 'file w.bin']);
    const sub = await get('/hf/api/models/acme/resnet/tree/1.0/versions');
    assert.deepEqual(sub.body.map((e: any) => e.path), ['versions/x']);
    const file = await fetch(`${base}/hf/acme/resnet/resolve/1.0/versions/x`, { headers: admin });
    assert.equal(file.status, 200);
    assert.equal(await file.text(), 'a file under versions/');
    assert.match(file.headers.get('x-repo-commit') ?? '', /^[0-9a-f]{40}$/);
    // /hf/acme/resolve/resolve/main/x: file main/x of acme at revision `resolve`, not a model acme/resolve
    const flat = await fetch(`${base}/hf/acme/resolve/resolve/main/x`, { headers: admin });
    assert.equal(flat.status, 200);
    assert.equal(await flat.text(), 'acme@resolve main/x');
    const missing = await fetch(`${base}/hf/acme/nope/resolve/main/x`, { headers: admin });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-error-code'), 'RepoNotFound');
  });

  const hubPython = usePythonVenv(['huggingface_hub']);

  test('huggingface_hub (Python) downloads a namespaced repo and a flat one', async (t) => {
    const py = hubPython.get(t);
    if (!py) return;
    const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-ns-hf-'));
    try {
      const script = `
import json, os, sys
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
api = HfApi()
info = api.model_info("acme/resnet", revision="1.0")
snapshot = snapshot_download("acme/resnet", revision="1.0", cache_dir=sys.argv[1])
files = {}
for root, _, names in os.walk(snapshot):
    for n in names:
        p = os.path.join(root, n)
        files[os.path.relpath(p, snapshot)] = open(p).read()
flat = open(hf_hub_download("acme", "w.bin", revision="1.0", cache_dir=sys.argv[1])).read()
print(json.dumps({"id": info.id, "sha": info.sha, "siblings": sorted(s.rfilename for s in info.siblings), "files": files, "flat": flat}))
`;
      const env = { ...process.env, HF_ENDPOINT: `${base}/hf`, HF_TOKEN: server.adminToken, HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_XET: '1', HF_HOME: cache };
      const { stdout } = await py.run(script, [cache], { env });
      const got = JSON.parse(stdout.trim().split('\n').at(-1)!);
      assert.equal(got.id, 'acme/resnet');
      assert.match(got.sha, /^[0-9a-f]{40}$/);
      assert.deepEqual(got.siblings, ['versions/x', 'w.bin']);
      assert.deepEqual(got.files, { 'versions/x': 'a file under versions/', 'w.bin': 'acme/resnet@1.0' });
      assert.equal(got.flat, 'acme@1.0');
    } finally {
      await fs.rm(cache, { recursive: true, force: true });
    }
  });

  test('metrics and logs label a namespaced request with its declared route', async () => {
    await get('/v1/models/acme/resnet/versions');
    const metrics = await (await fetch(`${base}/metrics`, { headers: admin })).text();
    assert.match(metrics, /cairn_http_requests_total\{method="GET",route="\/v1\/models\/:name\/versions",status="200"\} \d+/);
    assert.doesNotMatch(metrics, /:namespace/);
    const line = [...server.log.lines].reverse().find((l) => l.msg === 'request' && l.fields.path === '/v1/models/acme/resnet/versions');
    assert.equal(line?.fields.route, '/v1/models/:name/versions');
  });
});

describe('token patterns over namespaces', () => {
  let server: AuthServer;
  let base: string;
  let acme: Record<string, string>;
  const models = async (headers: Record<string, string>, limit = 1000) => {
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call(base, 'GET', `/v1/models?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, undefined, headers);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      names.push(...page.body.models.map((m: any) => m.name));
      cursor = page.body.next_cursor;
    } while (cursor);
    return names;
  };

  before(async () => {
    server = await startAuthServer();
    base = server.url;
    for (const name of ['acme', 'acme/resnet', 'acme/vit', 'acme2/x', 'acme-x/y', 'team-a/x', 'research', 'zeta']) {
      const r = await publishForm(base, name, { version: '1' }, [{ path: 'w.bin', data: text(name) }], { headers: bearer(server.adminToken) });
      assert.equal(r.status, 201, `${name}: ${JSON.stringify(r.body)}`);
    }
    acme = bearer(await createToken(server, { name: 'acme-team', scopes: ['write'], models: ['acme/*'] }));
  });

  after(async () => {
    await server?.stop();
  });

  test('an `acme/*` token reads and writes acme/x; not the flat acme, not acme2/x, acme-x/y or team-a/x', async () => {
    assert.equal((await call(base, 'GET', '/v1/models/acme/resnet', undefined, acme)).status, 200);
    assert.equal((await fetch(`${base}/v1/models/acme/resnet/versions/1/files/w.bin`, { headers: acme })).status, 200);
    assert.equal((await fetch(`${base}/hf/acme/resnet/resolve/main/w.bin`, { headers: acme })).status, 200);
    const pushed = await publishForm(base, 'acme/new', { version: '1' }, [{ path: 'w.bin', data: text('new') }], { headers: acme });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    assert.equal((await call(base, 'PUT', '/v1/models/acme/resnet/aliases/prod', { version: '1' }, acme)).status, 200);
    for (const name of ['acme', 'acme2/x', 'acme-x/y', 'team-a/x']) {
      assertError(await call(base, 'GET', `/v1/models/${name}`, undefined, acme), 403, 'FORBIDDEN', name);
      assertError(await call(base, 'GET', `/v1/models/${name}/versions`, undefined, acme), 403, 'FORBIDDEN', name);
      assertError(await publishForm(base, name, { version: '2' }, [{ path: 'w.bin', data: text('x') }], { headers: acme }), 403, 'FORBIDDEN', name);
      assert.equal((await fetch(`${base}/hf/${name}/resolve/main/w.bin`, { headers: acme })).status, 403, name);
    }
    // spelled with an encoded slash, the name is the same and so is the answer
    assertError(await call(base, 'GET', '/v1/models/acme2%2Fx', undefined, acme), 403, 'FORBIDDEN');
    assert.equal((await call(base, 'GET', '/v1/models/acme%2Fresnet', undefined, acme)).status, 200);
    // a parent outside the patterns is refused before anything is looked up
    const r = await fetch(`${base}/v1/models/acme/child/versions`, {
      method: 'POST',
      headers: { ...acme, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '1', files: [{ path: 'w.bin', digest: pushed.body.files[0].digest }], parents: ['acme2/x@1'] }),
    });
    assert.equal(r.status, 403);
  });

  test('its lists and their cursors hold its models only, page by page', async () => {
    const expected = ['acme/new', 'acme/resnet', 'acme/vit'];
    assert.deepEqual(await models(acme), expected);
    assert.deepEqual(await models(acme, 1), expected, 'one model a page: the cursors step through its models only');
    assert.deepEqual((await call(base, 'GET', '/v1/models?namespace=acme2', undefined, acme)).body.models, []);
    // HEAD /v1/blobs: content of a model outside the patterns is as if not stored
    const other = await call(base, 'GET', '/v1/models/team-a/x/versions/1', undefined, bearer(server.adminToken));
    assert.equal((await fetch(`${base}/v1/blobs/${other.body.files[0].digest}`, { method: 'HEAD', headers: acme })).status, 404);
    const own = await call(base, 'GET', '/v1/models/acme/vit/versions/1', undefined, acme);
    assert.equal((await fetch(`${base}/v1/blobs/${own.body.files[0].digest}`, { method: 'HEAD', headers: acme })).status, 200);
  });

  test('`*` reads every model, namespaced too; a flat pattern keeps to flat names; `*/…` crosses namespaces', async () => {
    const everything = bearer(await createToken(server, { name: 'all', scopes: ['read'], models: ['*'] }));
    assert.deepEqual(await models(everything), await models(bearer(server.adminToken)));
    assert.ok((await models(everything)).includes('acme/resnet'));
    const flat = bearer(await createToken(server, { name: 'flat-a', scopes: ['read'], models: ['a*', 'res*'] }));
    assert.deepEqual(await models(flat), ['acme', 'research']);
    assertError(await call(base, 'GET', '/v1/models/acme/resnet', undefined, flat), 403, 'FORBIDDEN');
    const anyX = bearer(await createToken(server, { name: 'any-x', scopes: ['read'], models: ['*/x'] }));
    assert.deepEqual(await models(anyX, 1), ['acme2/x', 'team-a/x']);
  });

  test('a token pattern is a name with wildcards: one slash at most', async () => {
    for (const models of [['acme/*/x'], ['acme/'], ['/x']]) {
      const r = await call(base, 'POST', '/v1/tokens', { name: `bad-${Math.random().toString(36).slice(2, 8)}`, scopes: ['read'], models }, bearer(server.adminToken));
      assertError(r, 400, 'INVALID_ARGUMENT', JSON.stringify(models));
    }
  });
});
