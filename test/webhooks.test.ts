// Webhooks end to end: a real server, a real receiver on another port,
// signatures checked as a receiver would, failures retried, nothing lost
// across a restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytesFor } from './support/bytes.ts';
import { assertError, call, publishForm } from './support/http-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';
import { waitFor } from './support/wait-for.ts';

/** The first delivery of a hook, once `ready` holds for it (polled until it does). */
function deliveryOnce(srv: TestServer, hookId: number, what: string, ready: (d: any) => boolean, timeoutMs = 10_000): Promise<any> {
  return waitFor(`a delivery of hook ${hookId} ${what}`, async () => {
    const d = (await call(srv.url, 'GET', `/v1/webhooks/${hookId}/deliveries`)).body.deliveries[0];
    return d && ready(d) ? d : undefined;
  }, timeoutMs);
}

/** The dispatcher has nothing left to do: every hook has seen every event, and no delivery is pending. */
function dispatcherIdle(srv: TestServer): boolean {
  const row = srv.cairn.db.first<{ idle: number }>(
    "SELECT (SELECT coalesce(min(cursor), 0) FROM webhooks) >= (SELECT coalesce(max(id), 0) FROM events) AND NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE state = 'pending') AS idle",
  );
  return row?.idle === 1;
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A receiver that answers each request with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = [], port = 0) {
  const got: Received[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    got,
    statuses,
    async until(n: number, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (got.length < n) {
        if (Date.now() > deadline) throw new Error(`received ${got.length} of ${n} requests`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
      return got;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function verify(secret: string, r: Received): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`);
  const given = Buffer.from(String(r.headers['x-cairn-signature-256'] ?? ''));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const publish = (srv: TestServer, name: string, version: string) => publishForm(srv.url, name, { version }, [{ path: 'w.bin', data: randomBytesFor(`${name}${version}`, 100) }]);
const timing = { webhookTiming: { retryMs: 50, timeoutMs: 2000, maxAttempts: 3 } };
/** The receivers here listen on 127.0.0.1, which hooks may reach only when allowed. */
const LOOPBACK_RECEIVERS = { webhookAllowPrivate: true };

describe('webhooks', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer('fs', LOOPBACK_RECEIVERS, timing);
  });
  after(async () => {
    await srv?.stop();
  });

  test('a publish and an alias move reach the receiver, signed; events and models filter', async () => {
    const rx = await receiver();
    const created = await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url, models: ['team-*'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.match(created.body.secret, /^whsec_/);
    const hook = await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url, events: ['alias'] });
    assert.equal(hook.status, 201);
    assert.equal((await publish(srv, 'team-a', '1.0.0')).status, 201);
    assert.equal((await publish(srv, 'other', '1.0.0')).status, 201); // matches neither hook
    assert.equal((await call(srv.url, 'PUT', '/v1/models/team-a/aliases/production', { version: '1.0.0' })).status, 200);
    const got = await rx.until(3);
    await waitFor('every event seen by both hooks, every delivery answered', () => dispatcherIdle(srv)); // then nothing more can arrive
    assert.equal(got.length, 3, got.map((g) => g.body).join('\n'));
    const bodies = got.map((g) => JSON.parse(g.body));
    const publishes = bodies.filter((b) => b.event === 'publish');
    assert.deepEqual(publishes.map((b) => [b.model, b.version]), [['team-a', '1.0.0']]);
    assert.equal(bodies.filter((b) => b.event === 'alias').length, 2, 'both hooks get the alias move');
    const alias = bodies.find((b) => b.event === 'alias')!;
    assert.deepEqual([alias.model, alias.alias, alias.version, alias.subject], ['team-a', 'production', '1.0.0', 'alias team-a@production -> 1.0.0']);
    for (const r of got) {
      const secret = JSON.parse(r.body).event === 'publish' ? created.body.secret : null;
      if (secret) assert.ok(verify(secret, r), 'the signature verifies with the secret');
      assert.equal(r.headers['x-cairn-event'], JSON.parse(r.body).event);
      assert.equal(r.headers['x-cairn-delivery'], String(JSON.parse(r.body).delivery));
    }
    assert.ok(!verify('whsec_wrong', got[0]!));
    const listed = await call(srv.url, 'GET', '/v1/webhooks');
    assert.ok(listed.body.webhooks.every((w: Record<string, unknown>) => !('secret' in w)), 'the secret is never listed');
    for (const w of [created, hook]) assert.equal((await call(srv.url, 'DELETE', `/v1/webhooks/${w.body.id}`)).status, 204);
    await rx.close();
  });

  test('a namespace pattern (acme/*) gets the events of acme/… only: not the flat acme, not acme2/…', async () => {
    const rx = await receiver();
    const hook = await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url, models: ['acme/*'] });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    assert.deepEqual(hook.body.models, ['acme/*']);
    for (const name of ['acme', 'acme2/x', 'acme-x/y', 'acme/resnet']) assert.equal((await publish(srv, name, '1.0.0')).status, 201, name);
    assert.equal((await call(srv.url, 'PUT', '/v1/models/acme/resnet/aliases/production', { version: '1.0.0' })).status, 200);
    const got = await rx.until(2);
    await waitFor('every event seen by the hook, every delivery answered', () => dispatcherIdle(srv)); // then nothing more can arrive
    assert.deepEqual(got.map((g) => JSON.parse(g.body)).map((b) => [b.event, b.model, b.subject]), [
      ['publish', 'acme/resnet', 'publish acme/resnet@1.0.0'],
      ['alias', 'acme/resnet', 'alias acme/resnet@production -> 1.0.0'],
    ]);
    assertError(await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url, models: ['acme/*/x'] }), 400, 'INVALID_ARGUMENT');
    assert.equal((await call(srv.url, 'DELETE', `/v1/webhooks/${hook.body.id}`)).status, 204);
    await rx.close();
  });

  test('a failing receiver is retried with backoff until it answers 2xx; the deliveries show it', async () => {
    const rx = await receiver([500, 503]);
    const hook = (await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url })).body;
    assert.equal((await publish(srv, 'retried', '1')).status, 201);
    const got = await rx.until(3);
    assert.equal(new Set(got.map((g) => JSON.parse(g.body).delivery)).size, 1, 'the same delivery, three times');
    const deliveries = (await call(srv.url, 'GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries;
    assert.equal(deliveries.length, 1);
    assert.deepEqual([deliveries[0].state, deliveries[0].attempts, deliveries[0].last_status], ['delivered', 3, 200]);
    await call(srv.url, 'DELETE', `/v1/webhooks/${hook.id}`);
    await rx.close();
  });

  test('a receiver that never answers 2xx: failed after the last attempt; redeliver sends it again', async () => {
    const rx = await receiver([500, 500, 500]);
    const hook = (await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url })).body;
    assert.equal((await publish(srv, 'failing', '1')).status, 201);
    await rx.until(3);
    const d = await deliveryOnce(srv, hook.id, 'failed', (x) => x.state === 'failed');
    assert.deepEqual([d.state, d.attempts, d.last_status, d.last_error], ['failed', 3, 500, 'HTTP 500']);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /^cairn_webhook_deliveries_failed 1$/m, 'operators can alert on it');
    assert.match(metrics, /^cairn_webhook_deliveries_pending 0$/m);
    const again = await call(srv.url, 'POST', `/v1/webhooks/${hook.id}/redeliver`);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.requeued, 1);
    assert.equal(again.body.deliveries[0].state, 'delivered');
    assert.equal(rx.got.length, 4);
    await call(srv.url, 'DELETE', `/v1/webhooks/${hook.id}`);
    await rx.close();
  });

  test('a receiver that never answers holds back only its own hook; it times out and is retried', async () => {
    const hung: http.ServerResponse[] = [];
    const stuck = http.createServer((_req, res) => hung.push(res));
    await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
    const rx = await receiver();
    const slow = (await call(srv.url, 'POST', '/v1/webhooks', { url: `http://127.0.0.1:${(stuck.address() as AddressInfo).port}/` })).body;
    const fast = (await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url })).body;
    assert.equal((await publish(srv, 'side-by-side', '1')).status, 201);
    await rx.until(1);
    const meanwhile = (await call(srv.url, 'GET', `/v1/webhooks/${slow.id}/deliveries`)).body.deliveries[0];
    assert.deepEqual([meanwhile.state, meanwhile.attempts], ['pending', 0], 'the healthy hook got it while the other still hangs');
    const d = await deliveryOnce(srv, slow.id, 'attempted', (x) => x.attempts >= 1);
    assert.equal(d.last_error, 'no answer in 2000 ms');
    for (const h of [slow, fast]) await call(srv.url, 'DELETE', `/v1/webhooks/${h.id}`);
    for (const res of hung) res.destroy();
    stuck.closeAllConnections();
    await new Promise<void>((resolve) => stuck.close(() => resolve()));
    await rx.close();
  });

  test('bad input: 400 for a URL that is not http(s) or an unknown event; 404 for an unknown hook', async () => {
    assertError(await call(srv.url, 'POST', '/v1/webhooks', { url: 'file:///etc/passwd' }), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'POST', '/v1/webhooks', { url: 'http://u:p@example.com/' }), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'POST', '/v1/webhooks', { url: 'http://example.com/', events: ['publish', 'explode'] }), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'POST', '/v1/webhooks', { url: 'http://example.com/', models: ['Bad Name'] }), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'GET', '/v1/webhooks/999/deliveries'), 404, 'WEBHOOK_NOT_FOUND');
    assertError(await call(srv.url, 'GET', '/v1/webhooks/999/deliveries?limit=0'), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'DELETE', '/v1/webhooks/abc'), 404, 'WEBHOOK_NOT_FOUND');
  });
});

/** The cairn CLI as a user runs it; resolves with its exit code and output. */
function cli(srv: TestServer, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cairnBin(), ...args], { env: { ...process.env, CAIRN_URL: srv.url, CAIRN_TOKEN: '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('cairn webhook (CLI)', () => {
  test('add, ls, deliveries, redeliver, rm; a bad event kind is a usage error', async () => {
    const srv = await startTestServer('fs', LOOPBACK_RECEIVERS, timing);
    const rx = await receiver([500]);
    try {
      const added = await cli(srv, ['webhook', 'add', rx.url, '--events', 'publish', '--models', 'cli-*', '--json']);
      assert.equal(added.code, 0, added.stderr);
      const hook = JSON.parse(added.stdout);
      assert.match(hook.secret, /^whsec_/);
      const plain = await cli(srv, ['webhook', 'add', rx.url]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout.trim(), /^whsec_\S+$/, 'the secret alone on stdout');
      assert.match(plain.stderr, /shown only now/);
      const ls = await cli(srv, ['webhook', 'ls']);
      assert.match(ls.stdout, new RegExp(`^${hook.id}\\s+${rx.url.replace(/[.]/g, '\\.')}\\s+publish\\s+cli-\\*`, 'm'));
      assert.equal((await cli(srv, ['webhook', 'rm', String(hook.id + 1)])).code, 0);
      const ping = await cli(srv, ['webhook', 'ping', String(hook.id)]); // the receiver's first answer is a 500
      assert.equal(ping.code, 1, ping.stdout + ping.stderr);
      assert.match(ping.stdout, /not delivered: HTTP 500/);
      const pinged = await rx.until(1);
      assert.equal(JSON.parse(pinged[0]!.body).event, 'ping');
      assert.ok(verify(hook.secret, pinged[0]!), 'a ping is signed like a delivery');
      assert.equal((await cli(srv, ['webhook', 'ping', String(hook.id)])).code, 0);
      assert.equal((await call(srv.url, 'GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries.length, 0, 'pings are not deliveries');
      rx.got.length = 0;
      rx.statuses.push(500);
      assert.equal((await publish(srv, 'cli-model', '1')).status, 201);
      await rx.until(2); // a 500, then the retry
      let deliveries: any[] = [];
      for (let i = 0; i < 50 && deliveries[0]?.state !== 'delivered'; i++) {
        deliveries = JSON.parse((await cli(srv, ['webhook', 'deliveries', String(hook.id), '--json'])).stdout).deliveries;
      }
      assert.deepEqual([deliveries[0].state, deliveries[0].attempts], ['delivered', 2]);
      const table = await cli(srv, ['webhook', 'deliveries', String(hook.id)]);
      assert.match(table.stdout, /^ID\s+EVENT\s+STATE\s+ATTEMPTS/m);
      assert.match(table.stdout, /\bdelivered\s+2\s+200\b/);
      const again = await cli(srv, ['webhook', 'redeliver', String(hook.id)]);
      assert.match(again.stdout, /requeued 0 deliveries/);
      const bad = await cli(srv, ['webhook', 'add', rx.url, '--events', 'explode']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--events takes publish, alias, unalias, delete/);
      const missing = await cli(srv, ['webhook', 'rm', '999']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /WEBHOOK_NOT_FOUND|no webhook 999/);
      assert.equal((await cli(srv, ['webhook', 'rm', String(hook.id)])).code, 0);
      assert.match((await cli(srv, ['webhook', 'ls'])).stdout, /no webhooks/);
    } finally {
      await srv.stop();
      await rx.close();
    }
  });
});

describe('webhooks across a restart', () => {
  test('events while the receiver is down are delivered after the server restarts', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-hooks-'));
    // a port nobody listens on yet: the receiver comes up there later
    const probe = await receiver();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    let rx: Awaited<ReturnType<typeof receiver>> | undefined;
    let srv = await startTestServer('fs', { dataDir, ...LOOPBACK_RECEIVERS }, { webhookTiming: { retryMs: 60_000, timeoutMs: 2000 } });
    try {
      const hook = (await call(srv.url, 'POST', '/v1/webhooks', { url: probe.url })).body;
      assert.equal((await publish(srv, 'kept', '1')).status, 201);
      const d = await deliveryOnce(srv, hook.id, 'attempted', (x) => x.attempts >= 1);
      assert.equal(d.state, 'pending', 'refused: pending, next try in a minute');
      assert.ok(d.last_error, 'the reason is kept');
      await srv.close();
      // the pending delivery is still there after a restart; once the receiver is up, redeliver sends it at once
      srv = await startTestServer('fs', { dataDir, ...LOOPBACK_RECEIVERS }, { webhookTiming: { retryMs: 60_000, timeoutMs: 2000 } });
      rx = await receiver([], port);
      const again = await call(srv.url, 'POST', `/v1/webhooks/${hook.id}/redeliver`);
      assert.equal(again.body.deliveries[0].state, 'delivered');
      const [got] = await rx.until(1);
      assert.deepEqual([JSON.parse(got!.body).model, JSON.parse(got!.body).event], ['kept', 'publish']);
    } finally {
      await srv.stop();
      await rx?.close();
    }
  });
});

describe('webhooks reach only public addresses by default (CAIRN_WEBHOOK_ALLOW_PRIVATE)', () => {
  test('creating a hook to a loopback, private, link-local, CGNAT, unspecified or mapped address is 400', async () => {
    const srv = await startTestServer('fs', {}, timing);
    try {
      for (const url of [
        'http://127.0.0.1:9/hook',
        'http://localhost:9/hook',
        'http://169.254.169.254/latest/meta-data/',
        'http://10.1.2.3/',
        'http://172.16.0.1/',
        'http://192.168.1.1/',
        'http://100.64.0.1/',
        'http://0.0.0.0/',
        'http://2130706433/', // 127.0.0.1 as one number
        'http://[::1]/',
        'http://[::ffff:127.0.0.1]/',
        'http://[::ffff:a9fe:a9fe]/', // 169.254.169.254, IPv4-mapped
        'http://[fe80::1]/',
        'http://[fd00::1]/',
        'http://[64:ff9b::a00:1]/', // 10.0.0.1 through NAT64
        'http://224.0.0.1/',
      ]) {
        const res = await call(srv.url, 'POST', '/v1/webhooks', { url });
        assertError(res, 400, 'INVALID_ARGUMENT', url);
        assert.match(res.body.error.message, /CAIRN_WEBHOOK_ALLOW_PRIVATE/);
      }
      assert.deepEqual((await call(srv.url, 'GET', '/v1/webhooks')).body.webhooks, []);
    } finally {
      await srv.stop();
    }
  });

  test('checked again at delivery, after DNS resolution: a name that rebinds to loopback is refused without a connection; ping too', async () => {
    const rx = await receiver();
    const port = Number(new URL(rx.url).port);
    // a name that is public when the hook is created and loopback later (DNS rebinding)
    let answer = '93.184.216.34';
    const webhookLookup = async () => [{ address: answer, family: 4 }];
    const srv = await startTestServer('fs', {}, { ...timing, webhookLookup });
    let connections = 0;
    const probe = http.createServer((_req, res) => res.end());
    probe.on('connection', () => connections++);
    try {
      const created = await call(srv.url, 'POST', '/v1/webhooks', { url: `http://hooks.rebind.test:${port}/hook` });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      answer = '127.0.0.1';
      assert.equal((await publish(srv, 'rebound', '1')).status, 201);
      const d = await deliveryOnce(srv, created.body.id, 'failed', (x) => x.state === 'failed');
      assert.equal(d.state, 'failed', JSON.stringify(d));
      assert.equal(d.last_status, null);
      assert.match(d.last_error, /^refused: hooks\.rebind\.test is or resolves to a loopback, private, link-local or otherwise non-public address/);
      const ping = await call(srv.url, 'POST', `/v1/webhooks/${created.body.id}/ping`);
      assert.equal(ping.status, 200);
      assert.equal(ping.body.delivered, false);
      assert.equal(ping.body.error, d.last_error, 'a ping says the same, whether anything listens there or not');
      assert.equal(rx.got.length, 0, 'nothing was posted');
      // a closed port and an open one on a refused address answer exactly alike: no port scanning
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const open = (probe.address() as AddressInfo).port;
      answer = '93.184.216.34';
      const hooks = [];
      for (const p of [open, 9]) hooks.push((await call(srv.url, 'POST', '/v1/webhooks', { url: `http://scan.rebind.test:${p}/` })).body);
      answer = '127.0.0.1';
      const pings = [];
      for (const h of hooks) pings.push((await call(srv.url, 'POST', `/v1/webhooks/${h.id}/ping`)).body);
      assert.equal(pings[0].error.replace(String(open), 'P'), pings[1].error.replace('9', 'P'));
      assert.equal(connections, 0, 'no connection was made');
    } finally {
      await srv.stop();
      await rx.close();
      await new Promise<void>((resolve) => probe.close(() => resolve()));
    }
  });

  test('allowed: the connection goes to the address resolved and checked, with no second lookup', async () => {
    const rx = await receiver();
    const port = Number(new URL(rx.url).port);
    const lookups: string[] = [];
    // a name only this lookup knows: reaching the receiver proves the socket used the checked address
    const webhookLookup = async (host: string) => {
      lookups.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const srv = await startTestServer('fs', LOOPBACK_RECEIVERS, { ...timing, webhookLookup });
    try {
      const hook = (await call(srv.url, 'POST', '/v1/webhooks', { url: `http://pinned.invalid:${port}/hook` })).body;
      lookups.length = 0;
      const ping = await call(srv.url, 'POST', `/v1/webhooks/${hook.id}/ping`);
      assert.deepEqual(ping.body, { delivered: true, status: 200, error: null });
      const [got] = await rx.until(1);
      assert.equal(got!.headers.host, `pinned.invalid:${port}`);
      assert.ok(verify(hook.secret, got!));
      assert.deepEqual(lookups, ['pinned.invalid'], 'resolved once, for the check');
    } finally {
      await srv.stop();
      await rx.close();
    }
  });
});

describe('webhook secrets at rest', () => {
  /** The bytes of registry.db and its write-ahead log. */
  async function dbBytes(dataDir: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const f of ['registry.db', 'registry.db-wal']) parts.push(await fs.readFile(path.join(dataDir, f)).catch(() => Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
  async function modeOf(file: string): Promise<number> {
    return (await fs.stat(file)).mode & 0o777;
  }

  test('registry.db does not hold the secret in clear; it and webhook-key are 0600; deliveries still sign with it', async () => {
    const rx = await receiver();
    const srv = await startTestServer('fs', LOOPBACK_RECEIVERS, timing);
    try {
      const hook = (await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url })).body;
      assert.equal((await publish(srv, 'sealed', '1')).status, 201);
      const [got] = await rx.until(1);
      assert.ok(verify(hook.secret, got!), 'signed with the secret shown at creation');
      const bytes = await dbBytes(srv.dataDir);
      assert.ok(bytes.length > 0);
      assert.equal(bytes.indexOf(hook.secret), -1, 'the secret is not in registry.db');
      assert.equal(bytes.indexOf(hook.secret.slice('whsec_'.length)), -1);
      for (const f of ['registry.db', 'registry.db-wal', 'registry.db-shm', 'webhook-key']) {
        assert.equal(await modeOf(path.join(srv.dataDir, f)), 0o600, f);
      }
    } finally {
      await srv.stop();
      await rx.close();
    }
  });

  test('a replaced webhook-key: the hook cannot sign, and says so instead of sending an unsigned or wrongly signed POST', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-hooks-key-'));
    const rx = await receiver();
    let srv = await startTestServer('fs', { dataDir, ...LOOPBACK_RECEIVERS }, timing);
    try {
      const hook = (await call(srv.url, 'POST', '/v1/webhooks', { url: rx.url })).body;
      await srv.close();
      await fs.rm(path.join(dataDir, 'webhook-key'));
      srv = await startTestServer('fs', { dataDir, ...LOOPBACK_RECEIVERS }, timing);
      const ping = await call(srv.url, 'POST', `/v1/webhooks/${hook.id}/ping`);
      assert.equal(ping.body.delivered, false);
      assert.match(ping.body.error, /does not open with <data dir>\/webhook-key/);
      assert.equal(rx.got.length, 0);
    } finally {
      await srv.stop();
      await rx.close();
    }
  });

  test('a data dir from before: clear secrets are sealed at start (gone from the file), a 0644 registry.db becomes 0600', async () => {
    const { Database } = await import('../src/metadata/db.ts');
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-hooks-old-'));
    const oldMigrations = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-migrations-'));
    const rx = await receiver();
    const secret = `whsec_${'K'.repeat(32)}`;
    let srv: TestServer | undefined;
    try {
      const dir = path.resolve(import.meta.dirname, '../migrations');
      for (const f of await fs.readdir(dir)) if (Number(f.slice(0, 3)) < 9) await fs.copyFile(path.join(dir, f), path.join(oldMigrations, f));
      const file = path.join(dataDir, 'registry.db');
      const old = new Database(file);
      old.migrate(oldMigrations);
      old.run("INSERT INTO webhooks (url, secret, events, models, created_by, created_at, cursor) VALUES (?, ?, '[]', '[]', 'admin', ?, 0)", [rx.url, secret, new Date().toISOString()]);
      old.close();
      for (const f of await fs.readdir(dataDir)) await fs.chmod(path.join(dataDir, f), 0o644); // as a server before this change made them
      assert.notEqual((await dbBytes(dataDir)).indexOf(secret), -1, 'the old layout holds it in clear');

      srv = await startTestServer('fs', { dataDir, ...LOOPBACK_RECEIVERS }, timing);
      assert.equal((await dbBytes(dataDir)).indexOf(secret), -1, 'sealed, and the clear bytes overwritten');
      assert.equal(await modeOf(file), 0o600);
      const ping = await call(srv.url, 'POST', '/v1/webhooks/1/ping');
      assert.equal(ping.body.delivered, true, JSON.stringify(ping.body));
      const [got] = await rx.until(1);
      assert.ok(verify(secret, got!), 'the hook still signs with its old secret');
    } finally {
      await srv?.stop();
      await rx.close();
      await fs.rm(dataDir, { recursive: true, force: true });
      await fs.rm(oldMigrations, { recursive: true, force: true });
    }
  });
});
