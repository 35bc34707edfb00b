// Tokens and scopes through the real routes, in-process on the in-memory
// driver and SQLite with access control on: every route of the route table
// is called with no token, a read token, a write token limited to other
// models and the admin token, and must answer as its declared access says
// (a route added later is covered without a change here); then the token
// routes themselves.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scopeIncludes, type Scope } from '../../src/access.ts';
import { ROUTES } from '../../src/http/app.ts';
import type { Route } from '../../src/http/route.ts';
import { assertError, call, publishForm } from '../support/http-client.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
let admin: string;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function createToken(body: Record<string, unknown>): Promise<string> {
  const res = await call(srv.url, 'POST', '/v1/tokens', body, bearer(admin));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

before(async () => {
  srv = await startTestServer('memory', { auth: true });
  admin = (await fs.readFile(path.join(srv.dataDir, 'admin-token'), 'utf8')).trim();
});
after(async () => {
  await srv?.stop();
});

/** A concrete URL for a route: the model parameter names `model`, other parameters a placeholder (git's, a fetch). */
function urlOf(r: Route, model: string): string {
  const modelParam = r.access !== 'open' ? r.access.model : undefined;
  const git = r.method === 'post' ? 'git-upload-pack' : 'info/refs?service=git-upload-pack';
  return r.path
    .replace(/[{}]/g, '')
    .replace(/[:*]([A-Za-z_]\w*)/g, (_, param: string) => (param === modelParam ? model : r.path.startsWith('/git/') ? git : `x${param}`));
}

describe('every route answers as its declared access says', () => {
  const OTHER = 'team-b-model';
  let reader: string;
  let teamWriter: string;
  before(async () => {
    assert.equal((await publishForm(srv.url, OTHER, { version: '1' }, [{ path: 'f', data: Buffer.from('b') }], { headers: bearer(admin) })).status, 201);
    reader = await createToken({ name: 'reader', scopes: ['read'] });
    teamWriter = await createToken({ name: 'team-a-writer', scopes: ['write'], models: ['team-a-*'] });
  });

  /** Whether a caller holding `scope` on `models` may call `r` on model OTHER. */
  const allowed = (r: Route, scope: Scope | undefined, limited: boolean) => {
    if (r.access === 'open') return true;
    if (scope === undefined || !scopeIncludes(scope, r.access.scope)) return false;
    return !(limited && r.access.model !== undefined);
  };

  test('no token: 401 unless open; read, limited write and admin tokens: 403 exactly where the table says', async () => {
    const callers: Array<[string, string | undefined, Scope | undefined, boolean]> = [
      ['no token', undefined, undefined, false],
      ['read token', undefined, 'read', false],
      ['write token for team-a-*', undefined, 'write', true],
      ['admin token', undefined, 'admin', false],
    ];
    callers[1]![1] = reader;
    callers[2]![1] = teamWriter;
    callers[3]![1] = admin;
    let checked = 0;
    // The OCI front door (/v2) answers in the OCI protocol's own way (a token
    // challenge, OCI error bodies): test/oci.test.ts checks its access.
    const routes = ROUTES.filter((r) => !r.path.startsWith('/v2'));
    for (const r of routes) {
      const url = urlOf(r, OTHER);
      for (const [who, token, scope, limited] of callers) {
        const res = await fetch(srv.url + url, { method: r.method.toUpperCase(), headers: token ? bearer(token) : {}, redirect: 'manual' });
        const body = r.method === 'head' ? undefined : await res.text();
        const what = `${r.method.toUpperCase()} ${url} (${r.path}) with ${who}: ${res.status} ${body?.slice(0, 200)}`;
        if (r.access === 'open' && r.doc.errors?.includes('FORBIDDEN')) {
          // open to any caller but carrying its own credential (the Hub's signed LFS upload
          // links): a made-up link is refused by the route whoever calls
          assert.ok(res.status !== 401, what);
        } else if (allowed(r, scope, limited)) {
          assert.ok(res.status !== 401 && res.status !== 403, what);
        } else {
          assert.equal(res.status, token ? 403 : 401, what);
          // Cairn's error body, or the Hub's shape under /hf (error a string, the code beside it)
          const parsed = body ? JSON.parse(body) : undefined;
          if (parsed) assert.equal(typeof parsed.error === 'string' ? parsed.code : parsed.error.code, token ? 'FORBIDDEN' : 'UNAUTHORIZED', what);
        }
        checked++;
      }
    }
    assert.equal(checked, routes.length * callers.length);
    assert.ok(routes.length > 50, `${routes.length} routes checked`);
  });

  test('a token limited to some models lists those only, and publishes there only', async () => {
    const own = await publishForm(srv.url, 'team-a-model', { version: '1' }, [{ path: 'f', data: Buffer.from('a') }], { headers: bearer(teamWriter) });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.equal(own.body.created_by, 'team-a-writer', 'the author is the token name');
    assertError(await publishForm(srv.url, OTHER, { version: '2' }, [{ path: 'f', data: Buffer.from('a') }], { headers: bearer(teamWriter) }), 403, 'FORBIDDEN');
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models', undefined, bearer(teamWriter))).body.models.map((m: any) => m.name), ['team-a-model']);
    assert.deepEqual((await call(srv.url, 'GET', '/v1/models', undefined, bearer(reader))).body.models.map((m: any) => m.name), ['team-a-model', OTHER]);
  });
});

describe('tokens', () => {
  test('created with scopes, model patterns and an expiry; the secret shown once; listed without it; revoked', async () => {
    const res = await call(srv.url, 'POST', '/v1/tokens', { name: 'temp', scopes: ['read', 'write'], models: ['x-*'], expires_in_days: 7 }, bearer(admin));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const secret = res.body.token as string;
    assert.match(secret, /^cairn_[0-9A-Za-z]{32}$/);
    assert.deepEqual([res.body.name, res.body.scope, res.body.scopes, res.body.models, res.body.created_by], ['temp', 'write', ['read', 'write'], ['x-*'], 'admin']);
    assert.equal(res.body.prefix, secret.slice(0, 12));
    assert.ok(Date.parse(res.body.expires_at) > Date.now() + 6 * 86_400_000);
    const list = await call(srv.url, 'GET', '/v1/tokens', undefined, bearer(admin));
    assert.ok(list.body.tokens.some((t: any) => t.name === 'temp'));
    assert.ok(!JSON.stringify(list.body).includes(secret), 'the list holds no secret');
    assert.equal((await call(srv.url, 'GET', '/v1/models', undefined, bearer(secret))).status, 200);
    assert.equal((await call(srv.url, 'DELETE', '/v1/tokens/temp', undefined, bearer(admin))).status, 204);
    assertError(await call(srv.url, 'GET', '/v1/models', undefined, bearer(secret)), 401, 'UNAUTHORIZED');
    assertError(await call(srv.url, 'DELETE', '/v1/tokens/temp', undefined, bearer(admin)), 404, 'TOKEN_NOT_FOUND');
  });

  test('refused: a name in use, a bad name, an unknown scope, no scope; a bad token is 401 with a challenge', async () => {
    await createToken({ name: 'taken', scopes: ['read'] });
    assertError(await call(srv.url, 'POST', '/v1/tokens', { name: 'taken', scopes: ['read'] }, bearer(admin)), 409, 'TOKEN_EXISTS');
    assertError(await call(srv.url, 'POST', '/v1/tokens', { name: 'Bad Name', scopes: ['read'] }, bearer(admin)), 400, 'INVALID_NAME');
    assertError(await call(srv.url, 'POST', '/v1/tokens', { name: 'ok', scopes: ['root'] }, bearer(admin)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'POST', '/v1/tokens', { name: 'ok' }, bearer(admin)), 400, 'INVALID_ARGUMENT');
    for (const headers of [bearer(`cairn_${'x'.repeat(32)}`), bearer('nonsense'), { authorization: 'Digest abc' }]) {
      const res = await call(srv.url, 'GET', '/v1/models', undefined, headers);
      assertError(res, 401, 'UNAUTHORIZED', JSON.stringify(headers));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="cairn"');
    }
  });
});
