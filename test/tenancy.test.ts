// Tenancy: with a token limited to team-a-*, an attacker who knows (or
// guesses) what team-b-* holds gets nothing of it through any route — not by
// digest (HEAD /v1/blobs, JSON publish), not through lineage (parents at
// publish, version documents, graphs, diffs), not through list cursors, not
// through another token's upload session — and every answer is the one a
// thing that does not exist gets, so none is an oracle. Real servers, the
// same wiring as `cairn serve`.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { bearer, createToken, publish, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { assertError, bodyOf, call, filePath, publishForm, type JsonResponse } from './support/http-client.ts';

const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The small file an attacker would guess: a config whose digest gives its content away. */
const TEAM_B_CONFIG = Buffer.from('{"architectures": ["TeamBSecretModel"], "hidden_size": 4096}\n');

describe('tenancy: a token for team-a-* gets nothing of team-b-*', () => {
  let server: AuthServer;
  let aWriter: string;
  let aReader: string;
  let bWriter: string;
  /** write on every model: works as before */
  let anyWriter: string;
  let teamBVersionDigest: string;

  const head = (token: string, digest: string) => fetch(`${server.url}/v1/blobs/${digest}`, { method: 'HEAD', headers: bearer(token) });
  const publishJson = (token: string, name: string, body: Record<string, unknown>) => call(server.url, 'POST', `/v1/models/${name}/versions`, body, bearer(token));
  const get = (token: string, path: string) => call(server.url, 'GET', path, undefined, bearer(token));

  before(async () => {
    server = await startAuthServer();
    aWriter = await createToken(server, { name: 'a-writer', scopes: ['write'], models: ['team-a-*'] });
    aReader = await createToken(server, { name: 'a-reader', scopes: ['read'], models: ['team-a-*'] });
    bWriter = await createToken(server, { name: 'b-writer', scopes: ['write'], models: ['team-b-*'] });
    anyWriter = await createToken(server, { name: 'any-writer', scopes: ['write'] });
    const secret = await publishForm(
      server.url,
      'team-b-secret',
      { version: '1.0.0', aliases: ['production'] },
      [
        { path: 'config.json', data: TEAM_B_CONFIG },
        { path: 'weights.bin', data: randomBytes(512) },
      ],
      { headers: bearer(bWriter) },
    );
    assert.equal(secret.status, 201, JSON.stringify(secret.body));
    teamBVersionDigest = secret.body.digest;
    assert.equal((await publish(server.url, aWriter, 'team-a-base', '1.0.0')).status, 201);
  });
  after(async () => {
    await server?.stop();
  });

  test('HEAD /v1/blobs answers 404 for content of a team the token cannot read, exactly as for content nobody stored', async () => {
    const digest = sha256(TEAM_B_CONFIG);
    const nobody = sha256(randomBytes(64));
    assert.equal((await head(bWriter, digest)).status, 200, 'team-b may read a version holding it');
    assert.equal((await head(anyWriter, digest)).status, 200, 'a token for every model: as before');
    const probe = await head(aWriter, digest);
    const missing = await head(aWriter, nobody);
    assert.equal(probe.status, 404);
    assert.equal(missing.status, 404);
    assert.equal(probe.headers.get('content-length'), missing.headers.get('content-length'), 'the same answer, byte for byte in length');
    assert.equal(probe.headers.get('etag'), null);
  });

  test('a JSON publish cannot name team-b content by digest (UNKNOWN_BLOB, as for unknown content), so its bytes cannot be pulled', async () => {
    const digest = sha256(TEAM_B_CONFIG);
    const stolen = await publishJson(aWriter, 'team-a-stolen', { version: '1.0.0', files: [{ path: 'config.json', digest }] });
    assertError(stolen, 400, 'UNKNOWN_BLOB');
    const nobody = sha256(randomBytes(64));
    const missing = await publishJson(aWriter, 'team-a-stolen', { version: '1.0.0', files: [{ path: 'config.json', digest: nobody }] });
    assertError(missing, 400, 'UNKNOWN_BLOB');
    assert.equal(stolen.body.error.message.replace(digest, 'D'), missing.body.error.message.replace(nobody, 'D'));
    const pulled = await fetch(server.url + filePath('team-a-stolen', '1.0.0', 'config.json'), { headers: bearer(aWriter) });
    assert.equal(pulled.status, 404);
    assert.ok(!(await pulled.text()).includes('TeamBSecretModel'));
  });

  test('content the token uploaded itself (session or multipart part) is its to name; a live version it can read makes it usable too', async () => {
    // team-b stores bytes in a multipart publish that then fails: stored, and team-b's
    const content = randomBytes(300);
    const failed = await publishForm(server.url, 'team-b-secret', { version: '1.0.0' }, [{ path: 'w.bin', data: content }], { fieldsAfterFiles: true, headers: bearer(bWriter) });
    assertError(failed, 409, 'VERSION_EXISTS');
    assert.equal((await head(bWriter, sha256(content))).status, 200, 'uploaded by team-b: no version holds it');
    assert.equal((await head(aWriter, sha256(content))).status, 404);
    assert.equal((await head(anyWriter, sha256(content))).status, 200);

    // a version team-a may read holds it, while it is live
    const gone = randomBytes(200);
    assert.equal((await publish(server.url, server.adminToken, 'team-a-gone', '1.0.0', gone)).status, 201);
    assert.equal((await head(aWriter, sha256(gone))).status, 200);
    assert.equal((await call(server.url, 'DELETE', '/v1/models/team-a-gone/versions/1.0.0', undefined, bearer(server.adminToken))).status, 204);
    assert.equal((await head(aWriter, sha256(gone))).status, 404, 'a deleted version no longer vouches for it');

    // team-a holding the same bytes as team-b proves it by uploading them: then it may use them
    const digest = sha256(TEAM_B_CONFIG);
    const session = await call(server.url, 'POST', '/v1/uploads', undefined, bearer(aWriter));
    assert.equal(session.status, 201);
    const finished = await fetch(`${server.url}/v1/uploads/${session.body.id}?digest=${digest}`, {
      method: 'PUT',
      headers: { ...bearer(aWriter), 'content-type': 'application/octet-stream' },
      body: bodyOf(TEAM_B_CONFIG),
    });
    assert.equal(finished.status, 201, await finished.text());
    assert.equal((await head(aWriter, digest)).status, 200);
    const own = await publishJson(aWriter, 'team-a-own', { version: '1.0.0', files: [{ path: 'config.json', digest }] });
    assert.equal(own.status, 201, JSON.stringify(own.body));
  });

  test('a team-b parent is refused at publish (403, by name alone: versions, aliases and missing models alike)', async () => {
    const weights = (await get(aWriter, '/v1/models/team-a-base/versions/1.0.0')).body.files[0].digest as string;
    const messages = new Set<string>();
    for (const parent of ['team-b-secret@latest', 'team-b-secret@production', `team-b-secret@${teamBVersionDigest}`, 'team-b-nothing@1.0.0', 'team-b-secret@nothing']) {
      const res = await publishJson(aWriter, 'team-a-derived', { version: '1.0.0', files: [{ path: 'weights.bin', digest: weights }], parents: [{ ref: parent, relation: 'fine-tuned-from' }] });
      assertError(res, 403, 'FORBIDDEN', parent);
      messages.add(res.body.error.message.replaceAll(parent, 'P').replaceAll(parent.split('@')[0]!, 'N'));
    }
    assert.equal(messages.size, 1, [...messages].join(' | '));
    // multipart parents too
    const form = new FormData();
    form.append('version', '1.0.0');
    form.append('parent', 'team-b-secret@production');
    form.append('file', new Blob([bodyOf(randomBytes(64))]), 'weights.bin');
    const res = await fetch(`${server.url}/v1/models/team-a-derived/versions`, { method: 'POST', body: form, headers: bearer(aWriter) });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
    assertError(await get(aWriter, '/v1/models/team-a-derived'), 404, 'MODEL_NOT_FOUND');
    // a parent it may read is fine
    const ok = await publishJson(aWriter, 'team-a-derived', { version: '1.0.0', files: [{ path: 'weights.bin', digest: weights }], parents: [{ ref: 'team-a-base@1.0.0' }] });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
  });

  test('version documents and lineage graphs hide versions, edges and recipes of models the reader cannot read', async () => {
    // lineage across teams, made by a token that may read both
    const weights = (await get(server.adminToken, '/v1/models/team-a-base/versions/1.0.0')).body.files[0].digest as string;
    const files = [{ path: 'weights.bin', digest: weights }];
    const made = [
      await publishJson(server.adminToken, 'team-a-child', { version: '1.0.0', files, parents: [{ ref: 'team-b-secret@production', relation: 'fine-tuned-from', recipe: { lr: 'team-b-private-recipe' } }] }),
      await publishJson(server.adminToken, 'team-b-grandchild', { version: '1.0.0', files, parents: [{ ref: 'team-a-child@1.0.0', relation: 'distilled-from', recipe: { note: 'team-b-private-two' } }] }),
      await publishJson(server.adminToken, 'team-a-far', { version: '1.0.0', files, parents: [{ ref: 'team-b-grandchild@1.0.0', relation: 'quantized-from' }] }),
      await publishJson(server.adminToken, 'team-a-grandchild', { version: '1.0.0', files, parents: [{ ref: 'team-a-child@1.0.0', relation: 'quantized-from', recipe: { bits: 4 } }] }),
    ];
    for (const m of made) assert.equal(m.status, 201, JSON.stringify(m.body));
    const leaks = (body: unknown) => {
      const text = JSON.stringify(body);
      return ['team-b', 'private', teamBVersionDigest.slice(7)].filter((s) => text.includes(s));
    };

    const doc = await get(aReader, '/v1/models/team-a-child/versions/1.0.0');
    assert.equal(doc.status, 200);
    assert.deepEqual(doc.body.parents, [{ name: 'hidden', version: 'hidden', digest: 'hidden', relation: 'fine-tuned-from', recipe: null, hidden: true }]);
    assert.deepEqual(leaks(doc.body), []);
    const far = await get(aReader, '/v1/models/team-a-far/versions/1.0.0');
    assert.deepEqual(leaks(far.body), []);
    assert.equal(far.body.parents[0].hidden, true);

    const graph = await get(aReader, '/v1/models/team-a-child/versions/1.0.0/lineage');
    assert.equal(graph.status, 200);
    assert.deepEqual(graph.body.nodes.map((n: { name: string }) => n.name).sort(), ['team-a-child', 'team-a-grandchild']);
    assert.deepEqual(graph.body.edges, [{ from: 'team-a-grandchild@1.0.0', to: 'team-a-child@1.0.0', relation: 'quantized-from', recipe: { bits: 4 } }]);
    assert.deepEqual(leaks(graph.body), []);
    // the walk does not go on through a hidden version: team-a-far is reached only through team-b-grandchild
    const farGraph = await get(aReader, '/v1/models/team-a-far/versions/1.0.0/lineage');
    assert.deepEqual(farGraph.body.nodes.map((n: { name: string }) => n.name), ['team-a-far']);
    assert.deepEqual(farGraph.body.edges, []);

    // a token that may read both sees everything, recipes included
    const full = await get(server.adminToken, '/v1/models/team-a-child/versions/1.0.0/lineage');
    assert.deepEqual(full.body.nodes.map((n: { name: string }) => n.name).sort(), ['team-a-child', 'team-a-far', 'team-a-grandchild', 'team-b-grandchild', 'team-b-secret']);
    assert.ok(JSON.stringify(full.body).includes('team-b-private-recipe'));
    const fullDoc = await get(server.adminToken, '/v1/models/team-a-child/versions/1.0.0');
    assert.deepEqual(fullDoc.body.parents, [{ name: 'team-b-secret', version: '1.0.0', digest: teamBVersionDigest, relation: 'fine-tuned-from', recipe: { lr: 'team-b-private-recipe' } }]);
  });

  test('every other route and front door answers a team-a reader about team-b models as about models that do not exist', async () => {
    const routes = (name: string, ref: string) => [
      `/v1/models/${name}`,
      `/v1/models/${name}/versions`,
      `/v1/models/${name}/versions/${ref}`,
      `/v1/models/${name}/versions/${ref}/files/config.json`,
      `/v1/models/${name}/versions/${ref}/archive`,
      `/v1/models/${name}/versions/${ref}/lineage`,
      `/v1/models/${name}/versions/${ref}/diff?from=team-a-base@1.0.0`,
      `/v1/models/team-a-base/versions/1.0.0/diff?from=${name}@${ref}`,
      `/v1/models/${name}/history`,
      `/hf/api/models/${name}`,
      `/hf/api/models/${name}/revision/main`,
      `/hf/api/models/${name}/tree/main`,
      `/hf/${name}/resolve/main/config.json`,
    ];
    const existing = routes('team-b-secret', 'production');
    const missing = routes('team-b-nothing', 'production');
    // under /hf errors are in the Hub's shape: `{"error": "<message>", "code"}` and X-Error-Code
    const messageOf = (res: { status: number; headers: Headers; body: any }, path: string): string => {
      if (!path.startsWith('/hf/')) {
        assertError(res, 403, 'FORBIDDEN', path);
        return res.body.error.message;
      }
      assert.equal(res.status, 403, path);
      assert.equal(res.body.code, 'FORBIDDEN', path);
      assert.equal(res.headers.get('x-error-code'), 'GatedRepo', path);
      assert.equal(typeof res.body.error, 'string', path);
      return res.body.error;
    };
    for (const [i, path] of existing.entries()) {
      const res = await get(aReader, path);
      const other = await get(aReader, missing[i]!);
      assert.equal(messageOf(res, path).replaceAll('team-b-secret', 'X'), messageOf(other, missing[i]!).replaceAll('team-b-nothing', 'X'), path);
      assert.ok(!JSON.stringify(res.body).includes(teamBVersionDigest.slice(7)), path);
    }
    const head = await fetch(server.url + filePath('team-b-secret', '1.0.0', 'config.json'), { method: 'HEAD', headers: bearer(aReader) });
    assert.equal(head.status, 403);
    assertError(await get(aReader, '/git/lineage.git/info/refs?service=git-upload-pack'), 403, 'FORBIDDEN');
    const search = await get(aReader, '/v1/models?q=secret');
    assert.deepEqual(search.body.models, []);
    assert.equal(search.body.next_cursor, null);
  });
});

describe('tenancy: list cursors', () => {
  let server: AuthServer;
  let aReader: string;
  before(async () => {
    server = await startAuthServer();
    aReader = await createToken(server, { name: 'a-reader', scopes: ['read'], models: ['team-a-*'] });
    // interleaved with other teams' names, before, between and after team-a's
    for (const name of ['aaa-first', 'team-a-one', 'team-a-three', 'team-b-hidden-one', 'team-b-hidden-two', 'team-a-two', 'zzz-last']) {
      assert.equal((await publish(server.url, server.adminToken, name, '1.0.0')).status, 201);
    }
    for (const version of ['2.0.0', '3.0.0']) assert.equal((await publish(server.url, server.adminToken, 'team-a-one', version)).status, 201);
  });
  after(async () => {
    await server?.stop();
  });

  /** Every page of `path` with limit=1, following next_cursor. */
  async function pages(path: string, key: string, token: string): Promise<Array<{ items: any[]; cursor: string | null }>> {
    const out: Array<{ items: any[]; cursor: string | null }> = [];
    let cursor: string | null = null;
    do {
      const res: JsonResponse = await call(server.url, 'GET', `${path}?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, undefined, bearer(token));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      cursor = res.body.next_cursor;
      out.push({ items: res.body[key], cursor });
      assert.ok(out.length < 50, 'paging ends');
    } while (cursor);
    return out;
  }

  test('paging GET /v1/models as a scoped reader: only its models, one a page, and cursors that name nothing', async () => {
    const seen = await pages('/v1/models', 'models', aReader);
    assert.deepEqual(seen.map((p) => p.items.map((m: { name: string }) => m.name)), [['team-a-one'], ['team-a-three'], ['team-a-two']]);
    const cursors = seen.map((p) => p.cursor).filter((c): c is string => c !== null);
    assert.equal(cursors.length, 2);
    for (const cursor of cursors) {
      for (const decoded of [Buffer.from(cursor, 'base64url'), Buffer.from(cursor, 'base64')]) {
        assert.ok(!decoded.includes('team-'), `cursor ${cursor} reveals a name`);
      }
    }
    // the admin sees all seven, with the same kind of cursor
    const all = await pages('/v1/models', 'models', server.adminToken);
    assert.equal(all.length, 7);
  });

  test('a tampered, forged or foreign cursor is 400', async () => {
    const first = await call(server.url, 'GET', '/v1/models?limit=1', undefined, bearer(aReader));
    const cursor = first.body.next_cursor as string;
    const flipped = cursor.slice(0, 20) + (cursor[20] === 'A' ? 'B' : 'A') + cursor.slice(21);
    const forged = Buffer.from(JSON.stringify('team-b-hidden-one')).toString('base64url');
    for (const bad of [flipped, forged, cursor.slice(0, 10), 'not a cursor', `${cursor}AA`]) {
      assertError(await call(server.url, 'GET', `/v1/models?limit=1&cursor=${encodeURIComponent(bad)}`, undefined, bearer(aReader)), 400, 'INVALID_ARGUMENT', bad);
    }
    // a cursor of one list is no good for another
    assertError(await call(server.url, 'GET', `/v1/models/team-a-one/history?limit=1&cursor=${encodeURIComponent(cursor)}`, undefined, bearer(aReader)), 400, 'INVALID_ARGUMENT');
    const versions = await call(server.url, 'GET', '/v1/models/team-a-one/versions?limit=1', undefined, bearer(aReader));
    assertError(await call(server.url, 'GET', `/v1/models/team-a-two/versions?limit=1&cursor=${encodeURIComponent(versions.body.next_cursor)}`, undefined, bearer(aReader)), 400, 'INVALID_ARGUMENT');
  });

  test('versions and history page with opaque cursors too', async () => {
    const versions = await pages('/v1/models/team-a-one/versions', 'versions', aReader);
    assert.deepEqual(versions.map((p) => p.items.map((v: { version: string }) => v.version)), [['3.0.0'], ['2.0.0'], ['1.0.0']]);
    const history = await pages('/v1/models/team-a-one/history', 'events', aReader);
    assert.deepEqual(history.map((p) => p.items.map((e: { version: string }) => e.version)), [['3.0.0'], ['2.0.0'], ['1.0.0']]);
    for (const { cursor } of [...versions, ...history]) {
      if (cursor) assert.doesNotMatch(Buffer.from(cursor, 'base64url').toString('latin1'), /^\d+$/, 'not a base64 of the number');
    }
  });

  test('a cursor outlives a restart (the key is kept in the database)', async () => {
    const first = await call(server.url, 'GET', '/v1/models?limit=1', undefined, bearer(aReader));
    await server.close();
    const again = await startAuthServer({ dataDir: server.dataDir });
    server = again;
    const next = await call(again.url, 'GET', `/v1/models?limit=1&cursor=${encodeURIComponent(first.body.next_cursor)}`, undefined, bearer(aReader));
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.deepEqual(next.body.models.map((m: { name: string }) => m.name), ['team-a-three']);
  });
});

describe('tenancy: upload sessions belong to the token that started them', () => {
  let server: AuthServer;
  before(async () => {
    server = await startAuthServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('another token (another team, or one for every model) cannot read, append to, finish or cancel it: 404 as for no session', async () => {
    const owner = await createToken(server, { name: 'b-writer', scopes: ['write'], models: ['team-b-*'] });
    const others = {
      'team-a writer': await createToken(server, { name: 'a-writer', scopes: ['write'], models: ['team-a-*'] }),
      'writer of every model': await createToken(server, { name: 'any-writer', scopes: ['write'] }),
      admin: server.adminToken,
    };
    const start = await call(server.url, 'POST', '/v1/uploads', undefined, bearer(owner));
    assert.equal(start.status, 201);
    const id = start.body.id as string;
    const data = randomBytes(1000);
    const send = (token: string, method: string, path: string, body?: Uint8Array) =>
      fetch(server.url + path, { method, headers: { ...bearer(token), 'content-type': 'application/octet-stream' }, body: body && bodyOf(body) });
    assert.equal((await send(owner, 'PATCH', `/v1/uploads/${id}`, data.subarray(0, 600))).status, 202);

    const nobody = randomBytes(16).toString('base64url');
    for (const [who, token] of Object.entries(others)) {
      for (const [method, body, query] of [
        ['GET', undefined, ''],
        ['PATCH', data.subarray(600), ''],
        ['PUT', data.subarray(600), `?digest=${sha256(data)}`],
        ['PUT', undefined, `?digest=${sha256(data.subarray(0, 600))}`],
        ['DELETE', undefined, ''],
      ] as const) {
        const theirs = await send(token, method, `/v1/uploads/${id}${query}`, body);
        const none = await send(token, method, `/v1/uploads/${nobody}${query}`, body);
        type ErrorBody = { error: { code: string; message: string } };
        const a = (await theirs.json()) as ErrorBody;
        const b = (await none.json()) as ErrorBody;
        assert.equal(theirs.status, 404, `${who} ${method}: ${JSON.stringify(a)}`);
        assert.equal(a.error.code, 'UPLOAD_NOT_FOUND');
        assert.equal(none.status, 404);
        assert.equal(a.error.message.replace(id, 'X'), b.error.message.replace(nobody, 'X'), `${who} ${method}`);
      }
    }
    // untouched: the owner goes on and finishes
    const state = await call(server.url, 'GET', `/v1/uploads/${id}`, undefined, bearer(owner));
    assert.equal(state.body.offset, 600);
    const done = await send(owner, 'PUT', `/v1/uploads/${id}?digest=${sha256(data)}`, data.subarray(600));
    assert.equal(done.status, 201, await done.text());
    assert.equal((await fetch(`${server.url}/v1/blobs/${sha256(data)}`, { method: 'HEAD', headers: bearer(owner) })).status, 200);
    assert.equal((await fetch(`${server.url}/v1/blobs/${sha256(data)}`, { method: 'HEAD', headers: bearer(others['team-a writer']) })).status, 404);
  });

  test('with CAIRN_AUTH=off sessions work as before', async () => {
    const off = await startAuthServer({ auth: false });
    try {
      const start = await call(off.url, 'POST', '/v1/uploads');
      assert.equal(start.status, 201);
      const data = randomBytes(100);
      const done = await fetch(`${off.url}/v1/uploads/${start.body.id}?digest=${sha256(data)}`, { method: 'PUT', body: bodyOf(data), headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(done.status, 201);
      assert.equal((await fetch(`${off.url}/v1/blobs/${sha256(data)}`, { method: 'HEAD' })).status, 200);
      const res = await call(off.url, 'POST', '/v1/models/free/versions', { version: '1.0.0', files: [{ path: 'x.bin', digest: sha256(data) }] });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    } finally {
      await off.stop();
    }
  });
});
