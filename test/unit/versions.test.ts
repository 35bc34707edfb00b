// Models and versions through the real routes of an in-process server on
// the in-memory driver and an in-memory SQLite database: multipart and JSON
// publishes, the version document and its refs, file reads with ETag and
// ranges across chunk boundaries, the archive, lists; aliases and deletes
// (tombstones); namespaced names; lineage, history (with the git mirror's commits)
// and diffs.
// test/http-api.test.ts, lineage.test.ts and diff.test.ts go deeper, on disk
// and S3.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { canonicalJson } from '../../src/canonical-json.ts';
import { compressibleBytes, digestOf, KiB, MiB, randomBytesFor } from '../support/bytes.ts';
import { assertError, bodyOf, call, filePath, publishForm, publishRawMultipart, pull } from '../support/http-client.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/wait-for.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer('memory');
});
after(async () => {
  await srv?.stop();
});

describe('publish (multipart) and read', () => {
  // several chunks (content-defined, ~2 MiB on average), a compressible file, an empty one
  const weights = randomBytesFor('unit-weights', 7 * MiB + 5);
  const files = [
    { path: 'weights.bin', data: weights },
    { path: 'tokenizer/vocab.txt', data: compressibleBytes(300 * KiB, 'vocab') },
    { path: 'empty.txt', data: new Uint8Array(0) },
  ];
  let doc: any;

  before(async () => {
    const res = await publishForm(srv.url, 'reader', { version: '1.0.0', message: 'first', aliases: ['staging'], metadata: '{"lr":0.1}' }, files);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), '/v1/models/reader/versions/1.0.0');
    doc = res.body;
  });

  test('the version document: number, files sorted by path with size and digest, its manifest digest', async () => {
    assert.equal(doc.number, 1);
    assert.deepEqual(doc.files.map((f: any) => [f.path, f.size, f.digest]), [
      ['empty.txt', 0, digestOf(new Uint8Array(0))],
      ['tokenizer/vocab.txt', 300 * KiB, digestOf(files[1]!.data)],
      ['weights.bin', weights.length, digestOf(weights)],
    ]);
    assert.equal(doc.size, weights.length + 300 * KiB);
    assert.deepEqual([doc.message, doc.metadata, doc.aliases], ['first', { lr: 0.1 }, ['staging']]);
    const manifest = {
      name: 'reader',
      version: '1.0.0',
      files: doc.files.map((f: any) => ({ path: f.path, size: f.size, digest: f.digest })),
      parents: [],
      metadata: { lr: 0.1 },
    };
    assert.equal(doc.digest, digestOf(Buffer.from(canonicalJson(manifest))));
  });

  test('the same document by version, alias, latest and manifest digest; unknown refs are 404', async () => {
    for (const ref of ['1.0.0', 'staging', 'latest', doc.digest]) {
      const res = await call(srv.url, 'GET', `/v1/models/reader/versions/${encodeURIComponent(ref)}`);
      assert.equal(res.status, 200, ref);
      assert.deepEqual(res.body, doc, ref);
    }
    assertError(await call(srv.url, 'GET', '/v1/models/reader/versions/9.9'), 404, 'VERSION_NOT_FOUND');
    assertError(await call(srv.url, 'GET', `/v1/models/reader/versions/sha256:${'0'.repeat(64)}`), 404, 'VERSION_NOT_FOUND');
    assertError(await call(srv.url, 'GET', '/v1/models/nobody/versions/1'), 404, 'MODEL_NOT_FOUND');
  });

  test('every file byte-identical with ETag and Content-Length; If-None-Match → 304; HEAD has no body', async () => {
    for (const f of files) {
      const res = await pull(srv.url, 'reader', '1.0.0', f.path);
      assert.equal(res.status, 200, f.path);
      assert.ok(res.bytes.equals(Buffer.from(f.data)), f.path);
      assert.equal(res.headers.get('etag'), `"${digestOf(f.data)}"`);
      assert.equal(res.headers.get('content-length'), String(f.data.length));
    }
    const etag = `"${digestOf(weights)}"`;
    const cached = await pull(srv.url, 'reader', 'latest', 'weights.bin', { 'if-none-match': etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.bytes.length, 0);
    const head = await fetch(srv.url + filePath('reader', '1.0.0', 'weights.bin'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(weights.length));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    assertError(await call(srv.url, 'GET', filePath('reader', '1.0.0', 'nope.bin')), 404, 'FILE_NOT_FOUND');
  });

  test('ranges: within a chunk, across chunk boundaries, open-ended, suffix; unsatisfiable → 416', async () => {
    const n = weights.length;
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 0],
      ['bytes=100-4195', 100, 4195],
      [`bytes=${MiB - 3}-${5 * MiB + 7}`, MiB - 3, 5 * MiB + 7],
      [`bytes=${n - 10}-`, n - 10, n - 1],
      ['bytes=-777', n - 777, n - 1],
      [`bytes=${n - 5}-${n + 100}`, n - 5, n - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await pull(srv.url, 'reader', '1.0.0', 'weights.bin', { range });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${n}`, range);
      assert.ok(res.bytes.equals(weights.subarray(start, end + 1)), range);
    }
    const beyond = await fetch(srv.url + filePath('reader', '1.0.0', 'weights.bin'), { headers: { range: `bytes=${n}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${n}`);
    assertError({ status: beyond.status, body: await beyond.json() }, 416, 'RANGE_NOT_SATISFIABLE');
  });

  test('the archive: a tar of every file in document order, byte-identical', async () => {
    const res = await fetch(`${srv.url}/v1/models/reader/versions/1.0.0/archive`);
    assert.equal(res.status, 200);
    const extract = tar.extract();
    extract.end(Buffer.from(await res.arrayBuffer()));
    const entries: Array<[string, Buffer]> = [];
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const piece of entry) parts.push(piece as Buffer);
      entries.push([entry.header.name, Buffer.concat(parts)]);
    }
    assert.deepEqual(entries.map(([name]) => name), doc.files.map((f: any) => f.path));
    for (const [name, data] of entries) assert.ok(data.equals(Buffer.from(files.find((f) => f.path === name)!.data)), name);
  });

  test('the stored content is known to HEAD /v1/blobs; republishing the version → 409 VERSION_EXISTS', async () => {
    assert.equal((await fetch(`${srv.url}/v1/blobs/${digestOf(weights)}`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${srv.url}/v1/blobs/${digestOf(Buffer.from('never stored'))}`, { method: 'HEAD' })).status, 404);
    assertError(await publishForm(srv.url, 'reader', { version: '1.0.0' }, [{ path: 'x', data: Buffer.from('x') }]), 409, 'VERSION_EXISTS');
    assert.ok((await pull(srv.url, 'reader', '1.0.0', 'weights.bin')).bytes.equals(weights), 'unchanged');
  });
});

describe('publish (JSON manifest) naming stored content', () => {
  test('files by digest, with aliases and metadata; the same content under two paths', async () => {
    const data = randomBytesFor('unit-json', 200 * KiB);
    assert.equal((await publishForm(srv.url, 'json-src', { version: '1' }, [{ path: 'a.bin', data }])).status, 201);
    const res = await call(srv.url, 'POST', '/v1/models/json-model/versions', {
      version: '2.0',
      message: 'by digest',
      aliases: ['prod'],
      metadata: { source: 'json' },
      files: [
        { path: 'b/model.bin', digest: digestOf(data) },
        { path: 'a.bin', digest: digestOf(data) },
      ],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.files.map((f: any) => f.path), ['a.bin', 'b/model.bin']);
    assert.deepEqual([res.body.aliases, res.body.metadata], [['prod'], { source: 'json' }]);
    assert.ok((await pull(srv.url, 'json-model', 'prod', 'b/model.bin')).bytes.equals(data));
  });

  test('an unknown digest, no files, a malformed body → 400 and nothing published', async () => {
    const url = '/v1/models/json-bad/versions';
    assertError(await call(srv.url, 'POST', url, { version: '1', files: [{ path: 'a', digest: `sha256:${'e'.repeat(64)}` }] }), 400, 'UNKNOWN_BLOB');
    assertError(await call(srv.url, 'POST', url, { version: '1', files: [] }), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'POST', url, { version: '1', files: [{ path: 'a', digest: 'sha256:xyz' }] }), 400, 'INVALID_DIGEST');
    const malformed = await fetch(srv.url + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version":' });
    assertError({ status: malformed.status, body: await malformed.json() }, 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'GET', '/v1/models/json-bad'), 404, 'MODEL_NOT_FOUND');
  });
});

describe('validation of a publish', () => {
  test('bad names, versions and paths are 400 with their code; a body neither multipart nor JSON is 415', async () => {
    const one = [{ path: 'f', data: Buffer.from('f') }];
    assertError(await publishForm(srv.url, 'Bad_Name', { version: '1' }, one), 400, 'INVALID_NAME');
    assertError(await publishForm(srv.url, 'valid', { version: '../x' }, one), 400, 'INVALID_VERSION');
    assertError(await publishForm(srv.url, 'valid', { version: 'latest' }, one), 400, 'INVALID_VERSION');
    assertError(await publishForm(srv.url, 'valid', {}, one), 400, 'INVALID_VERSION');
    assertError(await publishRawMultipart(srv.url, 'valid', { version: '1' }, [{ disposition: 'filename="../up.bin"', data: Buffer.from('x') }]), 400, 'INVALID_PATH');
    assertError(
      await publishForm(srv.url, 'valid', { version: '1' }, [
        { path: 'Same.bin', data: Buffer.from('a') },
        { path: 'same.bin', data: Buffer.from('b') },
      ]),
      400,
      'DUPLICATE_PATH',
    );
    assertError(await publishForm(srv.url, 'valid', { version: '1', metadata: '[1,2]' }, one), 400, 'INVALID_ARGUMENT');
    const text = await fetch(`${srv.url}/v1/models/valid/versions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    assertError({ status: text.status, body: await text.json() }, 415, 'UNSUPPORTED_MEDIA_TYPE');
    assertError(await call(srv.url, 'GET', '/v1/models/valid'), 404, 'MODEL_NOT_FOUND', 'nothing half-published');
  });
});

describe('lists', () => {
  test('models by name with q and pages; versions newest first; numbers in publish order', async () => {
    for (const v of ['1', '2', '3']) assert.equal((await publishForm(srv.url, 'listed-a', { version: v }, [{ path: 'f', data: Buffer.from(v) }])).status, 201);
    assert.equal((await publishForm(srv.url, 'listed-b', { version: '1' }, [{ path: 'f', data: Buffer.from('b') }])).status, 201);
    const page1 = await call(srv.url, 'GET', '/v1/models?q=listed&limit=1');
    assert.equal(page1.status, 200);
    assert.deepEqual(page1.body.models.map((m: any) => m.name), ['listed-a']);
    assert.equal(page1.body.models[0].latest_version, '3');
    const page2 = await call(srv.url, 'GET', `/v1/models?q=listed&limit=1&cursor=${encodeURIComponent(page1.body.next_cursor)}`);
    assert.deepEqual(page2.body.models.map((m: any) => m.name), ['listed-b']);
    assert.equal(page2.body.next_cursor, null);
    const versions = await call(srv.url, 'GET', '/v1/models/listed-a/versions');
    assert.deepEqual(versions.body.versions.map((v: any) => [v.version, v.number]), [['3', 3], ['2', 2], ['1', 1]]);
    const model = await call(srv.url, 'GET', '/v1/models/listed-a');
    assert.deepEqual([model.body.latest.version, model.body.counts.versions], ['3', 3]);
    assertError(await call(srv.url, 'GET', '/v1/models?limit=0'), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'GET', '/v1/models?cursor=garbage'), 400, 'INVALID_ARGUMENT');
  });
});

const publishOne = async (name: string, version: string, aliases: string[] = []) => {
  const res = await publishForm(srv.url, name, { version, aliases }, [{ path: 'v.txt', data: Buffer.from(`${name} ${version}`) }]);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
};
describe('namespaces', () => {
  test('acme/resnet beside a flat acme: its own document, files, aliases and versions; the namespace filter; a reserved word is 400 INVALID_NAME', async () => {
    await publishOne('ns-acme', '1.0');
    await publishOne('ns-acme/resnet', '1.0', ['production']);
    await publishOne('ns-acme/resnet', 'versions'); // a version may be called like a sub-resource
    assert.equal((await call(srv.url, 'GET', '/v1/models/ns-acme')).body.name, 'ns-acme');
    const model = await call(srv.url, 'GET', '/v1/models/ns-acme/resnet');
    assert.deepEqual([model.body.name, model.body.counts.versions], ['ns-acme/resnet', 2]);
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/ns-acme/versions')).body.versions.map((v: any) => v.version), ['1.0']);
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/ns-acme/resnet/versions/production')).body.version, '1.0');
    assert.equal((await pull(srv.url, 'ns-acme/resnet', 'versions', 'v.txt')).bytes.toString(), 'ns-acme/resnet versions');
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models?namespace=ns-acme')).body.models.map((m: any) => m.name), ['ns-acme/resnet']);
    const reserved = await publishForm(srv.url, 'ns-acme/tree', { version: '1' }, [{ path: 'f', data: Buffer.from('x') }]);
    assertError(reserved, 400, 'INVALID_NAME');
    assertError(await call(srv.url, 'GET', '/v1/models/ns-acme/nope'), 404, 'MODEL_NOT_FOUND');
  });
});

describe('aliases', () => {
  before(async () => {
    for (const v of ['1', '2']) await publishOne('aliased', v);
  });

  test('set, resolve, move (with the previous target), delete', async () => {
    const url = '/v1/models/aliased/aliases/production';
    assert.deepEqual((await call(srv.url, 'PUT', url, { version: '1' })).body, { alias: 'production', version: '1', previous: null });
    assert.ok((await pull(srv.url, 'aliased', 'production', 'v.txt')).bytes.equals(Buffer.from('aliased 1')));
    assert.deepEqual((await call(srv.url, 'PUT', url, { version: '2' })).body, { alias: 'production', version: '2', previous: '1' });
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/aliased/versions/2')).body.aliases, ['production']);
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/aliased/versions/1')).body.aliases, []);
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/aliased')).body.aliases, { production: '2' });
    assert.equal((await call(srv.url, 'DELETE', url)).status, 204);
    assertError(await call(srv.url, 'GET', '/v1/models/aliased/versions/production'), 404, 'VERSION_NOT_FOUND');
    assertError(await call(srv.url, 'DELETE', url), 404, 'ALIAS_NOT_FOUND');
  });

  test('refused: latest (reserved), a bad name, a name a version has, an unknown version or model, no version', async () => {
    const put = (alias: string, body: unknown, model = 'aliased') => call(srv.url, 'PUT', `/v1/models/${model}/aliases/${alias}`, body);
    assertError(await put('latest', { version: '1' }), 400, 'INVALID_ALIAS');
    assertError(await put('Bad_Alias', { version: '1' }), 400, 'INVALID_ALIAS');
    assertError(await put('2', { version: '1' }), 400, 'INVALID_ALIAS', 'an alias named like a version would shadow it');
    assertError(await put('staging', { version: '42' }), 404, 'VERSION_NOT_FOUND');
    assertError(await put('staging', { version: '1' }, 'no-such-model'), 404, 'MODEL_NOT_FOUND');
    assertError(await put('staging', {}), 400, 'INVALID_VERSION');
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/aliased')).body.aliases, {}, 'nothing set');
  });

  test('a version cannot take the name of an alias', async () => {
    assert.equal((await call(srv.url, 'PUT', '/v1/models/aliased/aliases/champion', { version: '1' })).status, 200);
    const res = await publishForm(srv.url, 'aliased', { version: 'champion' }, [{ path: 'v.txt', data: Buffer.from('shadow') }]);
    assert.ok(res.status === 400 || res.status === 409, `refused, got ${res.status}`);
    assert.equal((await call(srv.url, 'GET', '/v1/models/aliased/versions/champion')).body.version, '1');
  });
});

describe('deleting a version', () => {
  let v2: any;
  before(async () => {
    await publishOne('deleted', '1');
    v2 = await publishOne('deleted', '2', ['prod']);
  });

  test('409 VERSION_HAS_ALIASES while an alias points at it; 204 once the alias moved', async () => {
    assertError(await call(srv.url, 'DELETE', '/v1/models/deleted/versions/2'), 409, 'VERSION_HAS_ALIASES');
    assert.equal((await call(srv.url, 'GET', '/v1/models/deleted/versions/2')).status, 200, 'still there');
    assert.equal((await call(srv.url, 'PUT', '/v1/models/deleted/aliases/prod', { version: '1' })).status, 200);
    assert.equal((await call(srv.url, 'DELETE', '/v1/models/deleted/versions/2')).status, 204);
  });

  test('a tombstone: reads say VERSION_DELETED, the string stays taken, numbers are never reused, latest moves back', async () => {
    assertError(await call(srv.url, 'GET', '/v1/models/deleted/versions/2'), 404, 'VERSION_DELETED');
    assertError(await call(srv.url, 'GET', filePath('deleted', '2', 'v.txt')), 404, 'VERSION_DELETED');
    assertError(await call(srv.url, 'GET', '/v1/models/deleted/versions/2/archive'), 404, 'VERSION_DELETED');
    assertError(await call(srv.url, 'GET', `/v1/models/deleted/versions/${v2.digest}`), 404, 'VERSION_NOT_FOUND', 'by digest');
    assertError(await call(srv.url, 'DELETE', '/v1/models/deleted/versions/2'), 404, ['VERSION_NOT_FOUND', 'VERSION_DELETED'], 'deleted again');
    assertError(await call(srv.url, 'PUT', '/v1/models/deleted/aliases/prod', { version: '2' }), 404, ['VERSION_NOT_FOUND', 'VERSION_DELETED'], 'no alias to it');
    assertError(await publishForm(srv.url, 'deleted', { version: '2' }, [{ path: 'v.txt', data: Buffer.from('again') }]), 409, 'VERSION_EXISTS');
    assert.equal((await call(srv.url, 'GET', '/v1/models/deleted/versions/latest')).body.version, '1');
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models/deleted/versions')).body.versions.map((v: any) => v.version), ['1']);
    assert.equal((await publishOne('deleted', '3')).number, 3);
  });

  test('deleting the only version: the model stays, with no latest; unknown versions and models are 404', async () => {
    await publishOne('solo', '1');
    assert.equal((await call(srv.url, 'DELETE', '/v1/models/solo/versions/1')).status, 204);
    const model = await call(srv.url, 'GET', '/v1/models/solo');
    assert.deepEqual([model.status, model.body.latest, model.body.counts.versions], [200, null, 0]);
    assertError(await call(srv.url, 'GET', '/v1/models/solo/versions/latest'), 404, 'VERSION_NOT_FOUND');
    assertError(await call(srv.url, 'DELETE', '/v1/models/solo/versions/77'), 404, 'VERSION_NOT_FOUND');
    assertError(await call(srv.url, 'DELETE', '/v1/models/no-such-model/versions/1'), 404, 'MODEL_NOT_FOUND');
  });
});

async function publishWithParent(name: string, fields: Record<string, string>, data: Uint8Array) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([bodyOf(data)]), 'w.bin');
  const res = await fetch(`${srv.url}/v1/models/${name}/versions`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json() };
}

describe('lineage', () => {
  let base: any;
  let tuned: any;
  before(async () => {
    base = (await publishForm(srv.url, 'base', { version: '1', message: 'the base' }, [{ path: 'w.bin', data: Buffer.from('base weights') }])).body;
    tuned = await publishWithParent('tuned', { version: '1', parent: 'base@latest', relation: 'fine-tuned-from', recipe: '{"epochs":3}' }, Buffer.from('tuned weights'));
    assert.equal(tuned.status, 201, JSON.stringify(tuned.body));
  });

  test('a parent from multipart fields is pinned to its version and digest, with relation and recipe', () => {
    assert.deepEqual(tuned.body.parents, [{ name: 'base', version: '1', digest: base.digest, relation: 'fine-tuned-from', recipe: { epochs: 3 } }]);
  });

  test('a parent from JSON by digest; the graph holds ancestors and descendants across models', async () => {
    const q = await call(srv.url, 'POST', '/v1/models/tuned-q4/versions', {
      version: '1',
      files: [{ path: 'w.bin', digest: digestOf(Buffer.from('tuned weights')) }],
      parents: [{ ref: `tuned@${tuned.body.digest}`, relation: 'quantized-from', recipe: { bits: 4 } }],
    });
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const graph = await call(srv.url, 'GET', '/v1/models/tuned/versions/1/lineage');
    assert.equal(graph.status, 200);
    assert.deepEqual(graph.body.root, { name: 'tuned', version: '1' });
    assert.deepEqual(graph.body.nodes.map((n: any) => `${n.name}@${n.version}`).sort(), ['base@1', 'tuned-q4@1', 'tuned@1']);
    assert.deepEqual(graph.body.edges.map((e: any) => `${e.from} ${e.relation} ${e.to}`).sort(), ['tuned-q4@1 quantized-from tuned@1', 'tuned@1 fine-tuned-from base@1']);
    assertError(await call(srv.url, 'GET', '/v1/models/tuned/versions/9/lineage'), 404, 'VERSION_NOT_FOUND');
  });

  test('refused parents: unknown version or model, not a ref, an unknown relation — 400 and nothing published', async () => {
    assertError(await publishWithParent('orphan', { version: '1', parent: 'base@9' }, Buffer.from('x')), 400, 'INVALID_PARENT');
    const files = [{ path: 'w.bin', digest: base.files[0].digest }];
    const json = (parents: unknown[]) => call(srv.url, 'POST', '/v1/models/orphan/versions', { version: '1', files, parents });
    assertError(await json(['no-such-model@1']), 400, 'INVALID_PARENT');
    assertError(await json(['not a ref']), 400, 'INVALID_PARENT');
    assertError(await json([{ ref: 'base@1', relation: 'copied-from' }]), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'GET', '/v1/models/orphan'), 404, 'MODEL_NOT_FOUND');
  });
});

describe('history', () => {
  test('every change newest first, paginated, each with its commit from the start; git gets the same commit', async () => {
    assert.equal((await publishForm(srv.url, 'logged', { version: '1', message: 'first' }, [{ path: 'f', data: Buffer.from('1') }])).status, 201);
    assert.equal((await call(srv.url, 'PUT', '/v1/models/logged/aliases/stable', { version: '1' })).status, 200);
    assert.equal((await call(srv.url, 'DELETE', '/v1/models/logged/aliases/stable')).status, 204);
    const first = await call(srv.url, 'GET', '/v1/models/logged/history?limit=2');
    assert.equal(first.status, 200);
    const second = await call(srv.url, 'GET', `/v1/models/logged/history?limit=2&cursor=${encodeURIComponent(first.body.next_cursor)}`);
    assert.equal(second.body.next_cursor, null);
    const events = [...first.body.events, ...second.body.events];
    assert.deepEqual(events.map((e: any) => [e.event, e.subject]), [
      ['unalias', 'unalias logged@stable'],
      ['alias', 'alias logged@stable -> 1'],
      ['publish', 'publish logged@1'],
    ]);
    assert.equal(events[2].message, 'first');
    // each event has its commit id from the moment it is recorded; the git mirror writes that commit a moment later
    for (const e of events) assert.match(e.commit, /^[0-9a-f]{40}$/);
    const advertised = await waitFor('git to have the tag logged@1', async () => {
      const text = await (await fetch(`${srv.url}/git/lineage.git/info/refs?service=git-upload-pack`)).text();
      return /refs\/tags\/logged@1/.test(text) && text;
    });
    assert.ok(advertised.includes(events[2].commit), 'the tag names the commit the publish recorded');
    assertError(await call(srv.url, 'GET', '/v1/models/nobody/history'), 404, 'MODEL_NOT_FOUND');
    assertError(await call(srv.url, 'GET', '/v1/models/logged/history?cursor=!!!'), 400, 'INVALID_ARGUMENT');
  });
});

describe('diff', () => {
  const weights = randomBytesFor('unit-diff', 12 * MiB + 3);
  // v2: 100 bytes inserted near the start (every later offset shifts) and 4 KiB overwritten in the middle
  const weights2 = Buffer.concat([weights.subarray(0, 1000), randomBytesFor('unit-diff-insert', 100), weights.subarray(1000)]);
  randomBytesFor('unit-diff-overwrite', 4096).copy(weights2, 6 * MiB);
  const config = Buffer.from('{"layers": 12}\n');

  before(async () => {
    const publish = async (version: string, files: Array<{ path: string; data: Buffer }>) =>
      assert.equal((await publishForm(srv.url, 'diffed', { version }, files)).status, 201);
    await publish('1', [{ path: 'weights.bin', data: weights }, { path: 'config.json', data: config }, { path: 'notes.txt', data: Buffer.from('notes') }]);
    await publish('2', [{ path: 'weights.bin', data: weights2 }, { path: 'config.json', data: config }, { path: 'extra.bin', data: Buffer.from('extra') }]);
  });

  test('statuses by path; a shifted, partly changed file still shares most of its chunks', async () => {
    const res = await call(srv.url, 'GET', '/v1/models/diffed/versions/2/diff?from=1');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.files.map((f: any) => [f.path, f.status]), [
      ['config.json', 'unchanged'],
      ['extra.bin', 'added'],
      ['notes.txt', 'removed'],
      ['weights.bin', 'changed'],
    ]);
    const w = res.body.files.find((f: any) => f.path === 'weights.bin');
    assert.ok(w.shared_bytes >= weights2.length / 2 && w.shared_bytes < weights2.length, `shared ${w.shared_bytes} of ${weights2.length}`);
    const s = res.body.summary;
    assert.deepEqual([s.added, s.removed, s.changed, s.unchanged], [1, 1, 1, 1]);
    assert.equal(s.to_bytes, weights2.length + config.length + 5);
    assert.equal(s.shared_bytes, w.shared_bytes + config.length);
    assert.ok(s.new_stored_bytes > 0 && s.new_stored_bytes < weights2.length - w.shared_bytes + 4096 + 5, `new stored ${s.new_stored_bytes}`);
  });

  test('bad input: no from, an unknown version or model, a bad ref', async () => {
    assertError(await call(srv.url, 'GET', '/v1/models/diffed/versions/2/diff'), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'GET', '/v1/models/diffed/versions/2/diff?from=9'), 404, 'VERSION_NOT_FOUND');
    assertError(await call(srv.url, 'GET', '/v1/models/diffed/versions/2/diff?from=nope@1'), 404, 'MODEL_NOT_FOUND');
    assertError(await call(srv.url, 'GET', '/v1/models/diffed/versions/2/diff?from=diffed@bad%20ref'), 400, 'INVALID_REF');
  });
});
