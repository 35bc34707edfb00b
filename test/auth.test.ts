// Access control end to end: tokens, scopes, model patterns, the first-start
// admin token, git over HTTP with Basic auth, anonymous reads, upload size and
// request rate limits, and the log of failed authentication. Real servers
// (same wiring as `cairn serve`) on fs storage: access control does not depend
// on where the bytes go.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { bearer, createToken, publish, recordingLogger, startAuthServer, type AuthServer } from './support/auth-server.ts';
import type { Config } from '../src/config.ts';
import type { Request, Response } from 'express';
import { authenticate } from '../src/http/auth.ts';
import type { Logger } from '../src/log.ts';
import { startServer, type RunningServer } from '../src/main.ts';
import { Database } from '../src/metadata/db.ts';
import { modelAllowed } from '../src/access.ts';
import { TokenQueries } from '../src/metadata/tokens.ts';
import { assertError, bodyOf, call, streamBody, type JsonResponse } from './support/http-client.ts';
import { cairnBin } from './support/build.ts';

const run = promisify(execFile);

function cli(server: AuthServer, token: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const env = { ...process.env, CAIRN_URL: server.url, CAIRN_TOKEN: token };
  return run(process.execPath, [cairnBin(), ...args], { env }).then(
    (r) => ({ ...r, code: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => ({ stdout: err.stdout, stderr: err.stderr, code: err.code }),
  );
}

function git(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('access control', () => {
  let server: AuthServer;
  before(async () => {
    server = await startAuthServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('first start writes an admin token to <data dir>/admin-token (0600) and logs where, never the token', async () => {
    const file = path.join(server.dataDir, 'admin-token');
    const stat = await fs.stat(file);
    assert.equal(stat.mode & 0o777, 0o600);
    assert.match(server.adminToken, /^cairn_[0-9A-Za-z]{32}$/);
    const warn = server.log.lines.find((l) => l.level === 'warn' && l.fields.file === file);
    assert.ok(warn, 'a warning names the file');
    assert.ok(!JSON.stringify(server.log.lines).includes(server.adminToken), 'the token is never logged');
    assert.ok(!server.log.lines.some((l) => /not implemented/.test(l.msg)), 'no "not implemented" warning');
    const res = await call(server.url, 'GET', '/v1/tokens', undefined, bearer(server.adminToken));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.tokens.map((t: { name: string; scope: string }) => [t.name, t.scope]), [['admin', 'admin']]);
  });

  test('401 without a token or with a bad one: JSON error and WWW-Authenticate', async () => {
    for (const headers of [{}, bearer('cairn_' + 'x'.repeat(32)), bearer('nonsense'), { authorization: 'Digest abc' }]) {
      const res = await call(server.url, 'GET', '/v1/models', undefined, headers);
      assertError(res, 401, 'UNAUTHORIZED', JSON.stringify(headers));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="cairn"');
    }
    assertError(await publish(server.url, undefined, 'm1', '1.0.0'), 401, 'UNAUTHORIZED');
    assertError(await call(server.url, 'POST', '/v1/uploads'), 401, 'UNAUTHORIZED');
    // health stays open, whatever the probe sends: it is answered before anyone is asked who they are
    for (const headers of [{}, bearer('cairn_' + 'x'.repeat(32)), { authorization: 'Digest abc' }]) {
      assert.equal((await call(server.url, 'GET', '/healthz', undefined, headers)).status, 200, JSON.stringify(headers));
      assert.equal((await call(server.url, 'GET', '/readyz', undefined, headers)).status, 200, JSON.stringify(headers));
    }
  });

  test('failed authentication is logged with method, path, address and token prefix, never the secret', async () => {
    const bad = `cairn_${'Q'.repeat(32)}`;
    const res = await call(server.url, 'GET', '/v1/models/abc', undefined, bearer(bad));
    assertError(res, 401, 'UNAUTHORIZED');
    const line = server.log.lines.filter((l) => l.msg === 'authentication failed').at(-1);
    assert.ok(line, 'logged');
    assert.equal(line.level, 'warn');
    assert.equal(line.fields.method, 'GET');
    assert.equal(line.fields.path, '/v1/models/abc');
    assert.match(String(line.fields.remote), /127\.0\.0\.1/);
    assert.equal(line.fields.token_prefix, bad.slice(0, 12));
    assert.ok(!JSON.stringify(server.log.lines).includes(bad), 'the presented secret is not logged');
  });

  test('a read token reads; publishing, uploads and tokens are 403', async () => {
    assert.equal((await publish(server.url, server.adminToken, 'shared-model', '1.0.0')).status, 201);
    const reader = await createToken(server, { name: 'reader', scopes: ['read'] });
    const h = bearer(reader);
    assert.equal((await call(server.url, 'GET', '/v1/models/shared-model', undefined, h)).status, 200);
    assert.equal((await call(server.url, 'GET', '/v1/models/shared-model/versions/1.0.0', undefined, h)).status, 200);
    const file = await fetch(`${server.url}/v1/models/shared-model/versions/1.0.0/files/weights.bin`, { headers: h });
    assert.equal(file.status, 200);
    assert.equal((await file.arrayBuffer()).byteLength, 256);
    assert.equal((await call(server.url, 'GET', '/v1/models/shared-model/history', undefined, h)).status, 200);
    assertError(await publish(server.url, reader, 'shared-model', '2.0.0'), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'PUT', '/v1/models/shared-model/aliases/prod', { version: '1.0.0' }, h), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'DELETE', '/v1/models/shared-model/versions/1.0.0', undefined, h), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'POST', '/v1/uploads', undefined, h), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'GET', '/v1/tokens', undefined, h), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'POST', '/v1/tokens', { name: 'x', scopes: ['admin'] }, h), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'POST', '/v1/admin/gc', {}, h), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'POST', '/v1/admin/verify', {}), 401, 'UNAUTHORIZED');
  });

  test('a write token limited to team-a-* publishes there only and lists only those models', async () => {
    const writer = await createToken(server, { name: 'team-a-ci', scopes: ['write'], models: ['team-a-*'] });
    const created = await publish(server.url, writer, 'team-a-x', '1.0.0');
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assertError(await publish(server.url, writer, 'team-b-x', '1.0.0'), 403, 'FORBIDDEN');
    assert.equal((await publish(server.url, server.adminToken, 'team-b-x', '1.0.0')).status, 201);
    assertError(await call(server.url, 'GET', '/v1/models/team-b-x', undefined, bearer(writer)), 403, 'FORBIDDEN');
    assertError(await call(server.url, 'GET', '/v1/models/team-b-x/versions/1.0.0/archive', undefined, bearer(writer)), 403, 'FORBIDDEN');
    const listed = await call(server.url, 'GET', '/v1/models', undefined, bearer(writer));
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.models.map((m: { name: string }) => m.name), ['team-a-x']);
    const all = await call(server.url, 'GET', '/v1/models', undefined, bearer(server.adminToken));
    assert.ok(all.body.models.some((m: { name: string }) => m.name === 'team-b-x'));
    // uploads are not per model: any write token may use them
    assert.equal((await call(server.url, 'POST', '/v1/uploads', undefined, bearer(writer))).status, 201);
    // the whole lineage holds every model: a limited token cannot clone it
    assertError(await call(server.url, 'GET', '/git/lineage.git/info/refs?service=git-upload-pack', undefined, bearer(writer)), 403, 'FORBIDDEN');
  });

  test('created_by and the git author are the token name', async () => {
    const token = await createToken(server, { name: 'alice.ml', scopes: ['write'] });
    const res = await publish(server.url, token, 'authored', '1.0.0');
    assert.equal(res.status, 201);
    assert.equal(res.body.created_by, 'alice.ml');
    const doc = await call(server.url, 'GET', '/v1/models/authored/versions/1.0.0', undefined, bearer(token));
    assert.equal(doc.body.created_by, 'alice.ml');
    await server.cairn.mirror.kick();
    const log = await git(['--git-dir', path.join(server.dataDir, 'lineage.git'), 'log', '-1', '--format=%an%n%s']);
    assert.equal(log.code, 0, log.stderr);
    assert.deepEqual(log.stdout.trim().split('\n'), ['alice.ml', 'publish authored@1.0.0']);
  });

  test('admin creates, lists and revokes tokens over REST; the secret is shown once and stored only hashed', async () => {
    const res = await call(server.url, 'POST', '/v1/tokens', { name: 'temp', scopes: ['read', 'write'], models: ['x-*'], expires_in_days: 7 }, bearer(server.adminToken));
    assert.equal(res.status, 201);
    const secret = res.body.token as string;
    assert.equal(res.body.name, 'temp');
    assert.equal(res.body.scope, 'write');
    assert.deepEqual(res.body.scopes, ['read', 'write']);
    assert.deepEqual(res.body.models, ['x-*']);
    assert.equal(res.body.created_by, 'admin');
    assert.ok(Date.parse(res.body.expires_at) > Date.now() + 6 * 86_400_000);
    assert.equal(res.body.prefix, secret.slice(0, 12));

    assertError(await call(server.url, 'POST', '/v1/tokens', { name: 'temp', scopes: ['read'] }, bearer(server.adminToken)), 409, 'TOKEN_EXISTS');
    assertError(await call(server.url, 'POST', '/v1/tokens', { name: 'Bad Name', scopes: ['read'] }, bearer(server.adminToken)), 400, 'INVALID_NAME');
    assertError(await call(server.url, 'POST', '/v1/tokens', { name: 'ok', scopes: ['root'] }, bearer(server.adminToken)), 400, 'INVALID_ARGUMENT');
    assertError(await call(server.url, 'POST', '/v1/tokens', { name: 'ok' }, bearer(server.adminToken)), 400, 'INVALID_ARGUMENT');

    const list = await call(server.url, 'GET', '/v1/tokens', undefined, bearer(server.adminToken));
    assert.equal(list.status, 200);
    const temp = list.body.tokens.find((t: { name: string }) => t.name === 'temp');
    assert.ok(temp);
    assert.equal(temp.token, undefined);
    assert.ok(!JSON.stringify(list.body).includes(secret), 'the list holds no secret');

    assert.equal((await call(server.url, 'GET', '/v1/models', undefined, bearer(secret))).status, 200);
    assert.equal((await call(server.url, 'DELETE', '/v1/tokens/temp', undefined, bearer(server.adminToken))).status, 204);
    assertError(await call(server.url, 'GET', '/v1/models', undefined, bearer(secret)), 401, 'UNAUTHORIZED');
    assertError(await call(server.url, 'DELETE', '/v1/tokens/temp', undefined, bearer(server.adminToken)), 404, 'TOKEN_NOT_FOUND');
    // the name is free again
    await createToken(server, { name: 'temp', scopes: ['read'] });

    // the database holds hashes only
    const db = Buffer.concat(
      await Promise.all(['registry.db', 'registry.db-wal'].map((f) => fs.readFile(path.join(server.dataDir, f)).catch(() => Buffer.alloc(0)))),
    );
    assert.ok(db.includes(Buffer.from(secret.slice(0, 12))), 'the prefix is there (sanity check of the search)');
    assert.ok(!db.includes(Buffer.from(secret)), 'the secret is not in the database');
    assert.ok(!db.includes(Buffer.from(server.adminToken)), 'nor the admin token');
  });

  test('cairn token create / ls / revoke with CAIRN_TOKEN', async () => {
    const created = await cli(server, server.adminToken, ['token', 'create', 'cli-made', '--scope', 'write', '--models', 'team-a-*', '--models', 'shared-*', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const doc = JSON.parse(created.stdout);
    assert.match(doc.token, /^cairn_/);
    assert.deepEqual(doc.models, ['shared-*', 'team-a-*']);
    assert.equal((await publish(server.url, doc.token, 'team-a-cli', '1.0.0')).status, 201);

    const plain = await cli(server, server.adminToken, ['token', 'create', 'cli-plain', '--scope', 'read']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout.trim(), /^cairn_[0-9A-Za-z]{32}$/);
    assert.match(plain.stderr, /only time/);

    const ls = await cli(server, server.adminToken, ['token', 'ls', '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    const names = JSON.parse(ls.stdout).tokens.map((t: { name: string }) => t.name);
    assert.ok(names.includes('cli-made') && names.includes('cli-plain'));
    assert.ok(!ls.stdout.includes(doc.token));
    const table = await cli(server, server.adminToken, ['token', 'ls']);
    assert.match(table.stdout, /cli-made\s+cairn_\w{6}…\s+write\s+shared-\*,team-a-\*/);

    const revoked = await cli(server, server.adminToken, ['token', 'revoke', 'cli-made']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assertError(await call(server.url, 'GET', '/v1/models', undefined, bearer(doc.token)), 401, 'UNAUTHORIZED');

    const denied = await cli(server, doc.token, ['token', 'ls']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /UNAUTHORIZED/);
    const forbidden = await cli(server, plain.stdout.trim(), ['token', 'ls', '--json']);
    assert.equal(forbidden.code, 1);
    assert.equal(JSON.parse(forbidden.stdout).error.code, 'FORBIDDEN');
    const usage = await cli(server, server.adminToken, ['token', 'create', 'x']);
    assert.equal(usage.code, 2);
  });

  test('git clone over HTTP: with the token as Basic password it works, without it fails', async () => {
    assert.equal((await publish(server.url, server.adminToken, 'cloned', '1.0.0')).status, 201);
    await server.cairn.mirror.kick();
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-clone-'));
    try {
      const u = new URL(server.url);
      const anon = await git(['clone', '-q', `${server.url}/git/lineage.git`, path.join(work, 'anon')]);
      assert.notEqual(anon.code, 0, 'clone without a token fails');
      const challenge = await fetch(`${server.url}/git/lineage.git/info/refs?service=git-upload-pack`);
      assert.equal(challenge.status, 401);
      assert.equal(challenge.headers.get('www-authenticate'), 'Basic realm="cairn"');
      const bad = await git(['clone', '-q', `http://cairn:cairn_${'z'.repeat(32)}@${u.host}/git/lineage.git`, path.join(work, 'bad')]);
      assert.notEqual(bad.code, 0, 'clone with a bad token fails');

      const ok = await git(['clone', '-q', `http://cairn:${server.adminToken}@${u.host}/git/lineage.git`, path.join(work, 'ok')]);
      assert.equal(ok.code, 0, ok.stderr);
      await fs.access(path.join(work, 'ok', 'models', 'cloned', 'versions', '1.0.0.json'));
      // the token as user name (git clone http://TOKEN@host/…) works as well
      const reader = await createToken(server, { name: 'git-reader', scopes: ['read'] });
      const user = await git(['clone', '-q', `http://${reader}@${u.host}/git/lineage.git`, path.join(work, 'user')]);
      assert.equal(user.code, 0, user.stderr);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
});

describe('access control: restarts, anonymous reads, CAIRN_AUTH=off', () => {
  test('the admin token is not recreated on restart', async () => {
    const first = await startAuthServer();
    const dataDir = first.dataDir;
    try {
      await first.close();
      const second = await startAuthServer({ dataDir });
      try {
        assert.equal(second.adminToken, first.adminToken, 'the file is unchanged');
        assert.ok(!second.log.lines.some((l) => l.fields.file), 'no new admin token announced');
        const res = await call(second.url, 'GET', '/v1/tokens', undefined, bearer(first.adminToken));
        assert.equal(res.status, 200);
        assert.equal(res.body.tokens.length, 1);
        // once every admin token is revoked, the next start makes a new one
        assert.equal((await call(second.url, 'DELETE', '/v1/tokens/admin', undefined, bearer(first.adminToken))).status, 204);
      } finally {
        await second.close();
      }
      const third = await startAuthServer({ dataDir });
      try {
        assert.notEqual(third.adminToken, first.adminToken);
        assert.equal((await fs.stat(path.join(dataDir, 'admin-token'))).mode & 0o777, 0o600);
        assert.equal((await call(third.url, 'GET', '/v1/tokens', undefined, bearer(third.adminToken))).status, 200);
      } finally {
        await third.close();
      }
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  test('anonymous reads only when CAIRN_ANONYMOUS_READ is on; writes still need a token', async () => {
    const closed = await startAuthServer();
    const open = await startAuthServer({ anonymousRead: true });
    try {
      for (const s of [closed, open]) assert.equal((await publish(s.url, s.adminToken, 'public-model', '1.0.0')).status, 201);
      assertError(await call(closed.url, 'GET', '/v1/models/public-model'), 401, 'UNAUTHORIZED');
      assert.equal((await call(open.url, 'GET', '/v1/models/public-model')).status, 200);
      const listed = await call(open.url, 'GET', '/v1/models');
      assert.deepEqual(listed.body.models.map((m: { name: string }) => m.name), ['public-model']);
      assertError(await publish(open.url, undefined, 'public-model', '2.0.0'), 401, 'UNAUTHORIZED');
      assertError(await call(open.url, 'GET', '/v1/tokens'), 401, 'UNAUTHORIZED');
      // a bad token is still refused, not downgraded to anonymous
      assertError(await call(open.url, 'GET', '/v1/models', undefined, bearer('cairn_nope')), 401, 'UNAUTHORIZED');
      assert.ok(open.log.lines.some((l) => l.level === 'warn' && /ANONYMOUS_READ/.test(l.msg)));
    } finally {
      await closed.stop();
      await open.stop();
    }
  });

  test('CAIRN_AUTH=off: everything open as anonymous, a loud warning, no admin token file', async () => {
    const off = await startAuthServer({ auth: false });
    try {
      const res = await publish(off.url, undefined, 'free', '1.0.0');
      assert.equal(res.status, 201);
      assert.equal(res.body.created_by, 'anonymous');
      assert.equal((await call(off.url, 'GET', '/v1/models')).status, 200);
      await assert.rejects(fs.access(path.join(off.dataDir, 'admin-token')));
      assert.ok(off.log.lines.some((l) => l.level === 'warn' && /CAIRN_AUTH=off/.test(l.msg) && /DISABLED/.test(l.msg)));
    } finally {
      await off.stop();
    }
  });
});

describe('limits', () => {
  let server: AuthServer;
  before(async () => {
    server = await startAuthServer({ maxUploadBytes: 4096, rateLimit: 600 });
  });
  after(async () => {
    await server?.stop();
  });

  test('a multipart file over CAIRN_MAX_UPLOAD_BYTES is 413', async () => {
    assert.equal((await publish(server.url, server.adminToken, 'small', '1.0.0', randomBytes(4096))).status, 201);
    assertError(await publish(server.url, server.adminToken, 'small', '2.0.0', randomBytes(4097)), 413, 'PAYLOAD_TOO_LARGE');
  });

  test('an upload session over CAIRN_MAX_UPLOAD_BYTES is 413, by Content-Length and by counted bytes', async () => {
    const h = bearer(server.adminToken);
    const start = await call(server.url, 'POST', '/v1/uploads', undefined, h);
    assert.equal(start.status, 201);
    const id = start.body.id as string;
    const patch = (data: Uint8Array, from: number) =>
      fetch(`${server.url}/v1/uploads/${id}`, {
        method: 'PATCH',
        headers: { ...h, 'content-type': 'application/octet-stream', 'content-range': `bytes ${from}-${from + data.length - 1}/*` },
        body: bodyOf(data),
      });
    let res = await patch(randomBytes(5000), 0);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');
    res = await patch(randomBytes(3000), 0);
    assert.equal(res.status, 202, await res.text());
    res = await patch(randomBytes(1100), 3000);
    assert.equal(res.status, 413);
    await res.arrayBuffer();
    // no Content-Length (chunked): counted as the bytes arrive
    async function* pieces() {
      for (let i = 0; i < 4; i++) yield randomBytes(512);
    }
    res = await fetch(`${server.url}/v1/uploads/${id}`, {
      method: 'PATCH',
      headers: { ...h, 'content-type': 'application/octet-stream' },
      body: streamBody(pieces()),
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    await res.arrayBuffer();
    const doc = await call(server.url, 'GET', `/v1/uploads/${id}`, undefined, h);
    assert.ok(doc.body.offset <= 4096, `the session holds ${doc.body.offset} bytes`);
  });

  test('over CAIRN_RATE_LIMIT requests a minute is 429 with Retry-After, per token', async () => {
    const limited = await startAuthServer({ rateLimit: 5 });
    try {
      const other = await createToken(limited, { name: 'other', scopes: ['read'] }); // 1 request of admin's 5
      const statuses: number[] = [];
      let last: JsonResponse | undefined;
      for (let i = 0; i < 6; i++) {
        last = await call(limited.url, 'GET', '/v1/models', undefined, bearer(limited.adminToken));
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
      assertError(last!, 429, 'RATE_LIMITED');
      assert.ok(Number(last!.headers.get('retry-after')) >= 1);
      assert.equal((await call(limited.url, 'GET', '/v1/models', undefined, bearer(other))).status, 200, 'another token has its own budget');
      assert.equal((await call(limited.url, 'GET', '/healthz')).status, 200, 'health checks are not limited');
    } finally {
      await limited.stop();
    }
  });
});

describe('failed authentication is limited per client address', () => {
  test('over the budget: 429 with Retry-After before any lookup, even of a valid token; other addresses go on', async () => {
    const server = await startAuthServer();
    try {
      const bad = bearer(`cairn_${'W'.repeat(32)}`);
      const statuses: number[] = [];
      let last: JsonResponse | undefined;
      for (let i = 0; i < 25; i++) {
        last = await call(server.url, 'GET', '/v1/models', undefined, bad);
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [...Array(20).fill(401), ...Array(5).fill(429)]);
      assertError(last!, 429, 'RATE_LIMITED');
      assert.ok(Number(last!.headers.get('retry-after')) >= 1);
      assertError(await call(server.url, 'GET', '/v1/models', undefined, bearer(server.adminToken)), 429, 'RATE_LIMITED');
      assert.equal((await call(server.url, 'GET', '/v1/models')).status, 401, 'without a token: not a failure, the usual 401');
      assert.equal((await call(server.url, 'GET', '/healthz')).status, 200);
      const lines = server.log.lines.filter((l) => l.msg.startsWith('authentication'));
      assert.equal(lines.length, 5, 'a few lines, not one per failure');
    } finally {
      await server.stop();
    }
  });

  test('the limiter and its log, with a clock: a flood writes a bounded number of lines, then one summary with the counts', () => {
    const db = new Database(':memory:');
    db.migrate();
    const tokens = new TokenQueries(db);
    const valid = tokens.create({ name: 'ci', scope: 'read', createdBy: 'test' }).token;
    let lookups = 0;
    const lookup = tokens.authenticate.bind(tokens);
    tokens.authenticate = (token: string) => {
      lookups++;
      return lookup(token);
    };
    let clock = 1_000_000;
    const log = recordingLogger();
    const middleware = authenticate({ tokens, anonymousRead: false, log, now: () => clock });
    /** Runs the middleware for one request; its outcome: 'ok', or the error code and Retry-After. */
    const send = (token: string, remote = '10.9.8.7') => {
      const headers: Record<string, string> = {};
      let outcome = '';
      const req = { headers: { authorization: `Bearer ${token}` }, socket: { remoteAddress: remote }, method: 'GET', path: '/v1/models' } as unknown as Request;
      const res = { set: (k: string, v: string) => (headers[k] = v) } as unknown as Response;
      middleware(req, res, (err?: unknown) => {
        outcome = err ? `${(err as { code: string }).code}${headers['Retry-After'] ? ` ${headers['Retry-After']}` : ''}` : 'ok';
      });
      return outcome;
    };
    const wrong = `cairn_${'V'.repeat(32)}`;
    for (let i = 0; i < 20; i++) assert.equal(send(wrong), 'UNAUTHORIZED');
    assert.equal(lookups, 20);
    assert.equal(send(wrong), 'RATE_LIMITED 6', '10 a minute: the next one in 6 s');
    assert.equal(send(valid), 'RATE_LIMITED 6', 'a valid token from that address waits too');
    assert.equal(lookups, 20, 'neither was looked up');
    assert.equal(send(valid, '10.9.8.6'), 'ok', 'another address is not held back');
    assert.equal(send(wrong, '::ffff:10.9.8.7'), 'RATE_LIMITED 6', 'the same address, IPv4-mapped');
    for (let i = 0; i < 10_000; i++) send(wrong);
    const authLines = () => log.lines.filter((l) => l.msg.startsWith('authentication'));
    assert.equal(authLines().length, 5, 'five lines per address and minute');
    assert.equal(lookups, 21, 'only the request from the other address was looked up');

    clock += 6_000; // one failure's worth refilled
    assert.equal(send(wrong), 'UNAUTHORIZED');
    assert.equal(send(wrong), 'RATE_LIMITED 6');

    clock += 60_000;
    assert.equal(send(valid), 'ok', 'refilled: valid tokens work again');
    assert.equal(send(wrong), 'UNAUTHORIZED');
    const summary = log.lines.find((l) => l.msg.startsWith('authentication failures'));
    assert.ok(summary, 'a summary line once the minute is over');
    assert.deepEqual([summary.fields.client, summary.fields.failed, summary.fields.rate_limited], ['10.9.8.7', 16, 10_004]);
    assert.equal(authLines().length, 7, 'the summary and the first failure of the new minute');

    // many addresses at once: at most 100 lines a minute in all, the rest counted
    clock += 120_000;
    for (let i = 0; i < 1000; i++) send(wrong, `2001:db8:${i.toString(16)}::1`);
    const flood = authLines().length;
    assert.ok(flood - 7 <= 101, `${flood - 7} lines for 1000 addresses`);
    clock += 60_000;
    send(wrong, '10.1.1.1');
    const unlogged = log.lines.find((l) => l.msg.startsWith('authentication failures not logged'));
    assert.ok(unlogged, 'what did not fit is counted');
    const flooded = log.lines.filter((l) => String(l.fields.remote ?? l.fields.client ?? '').startsWith('2001:db8:'));
    const counted = flooded.reduce((n, l) => n + (l.msg === 'authentication failed' ? 1 : Number(l.fields.failed)), 0) + Number(unlogged.fields.failures);
    assert.equal(counted, 1000, 'every failure is in a line or a count');
    assert.ok(authLines().length - flood <= 102, 'the next minute is bounded too');
    db.close();
  });
});

describe('model name patterns', () => {
  test('* is any run of characters, anything else itself', () => {
    const cases: Array<[string, string, boolean]> = [
      ['team-*', 'team-a', true],
      ['team-*', 'team-', true],
      ['team-*', 'tea', false],
      ['*-prod', 'x-prod', true],
      ['*-prod', 'x-prod2', false],
      ['a*c*e', 'abcde', true],
      ['a*c*e', 'abcdef', false],
      ['a*b', 'acb', true],
      ['a*b', 'acbd', false],
      ['*a*a*b', 'aaab', true],
      ['**', 'x', true],
      ['a.b', 'axb', false],
      ['exact', 'exact', true],
      ['exact', 'exactly', false],
    ];
    for (const [pattern, name, expected] of cases) assert.equal(modelAllowed([pattern], name), expected, `${pattern} ~ ${name}`);
    assert.equal(modelAllowed([], 'anything'), true);
    assert.equal(modelAllowed(['x-*'], '*'), false);
  });

  test('*a*a*a*a*a*a*b against a 128-character name takes milliseconds, not minutes', async () => {
    // in a child process with a deadline: the backtracking matcher this replaced would block for minutes
    const tokensModule = new URL('../src/access.ts', import.meta.url).href;
    const script = `const { modelAllowed } = await import(${JSON.stringify(tokensModule)});
      const name = 'a'.repeat(128);
      const started = performance.now();
      const matched = modelAllowed(['*a*a*a*a*a*a*b'], name) || modelAllowed(['*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b'], name);
      console.log(JSON.stringify({ matched, ms: performance.now() - started }));`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 20_000 });
    const result = JSON.parse(stdout) as { matched: boolean; ms: number };
    assert.equal(result.matched, false);
    assert.ok(result.ms < 50, `${result.ms} ms`);
  });
});
