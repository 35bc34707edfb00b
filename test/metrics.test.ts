// GET /metrics after a known sequence of requests on a real server: exact
// request counters by route pattern, exact body byte counts, pulls by
// version, and storage gauges that match the database. Plus the request log:
// one JSON line per request, carrying the id the response carries.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Logger } from '../src/log.ts';
import { startServer, type RunningServer } from '../src/main.ts';
import { compressibleBytes, randomBytesFor } from './support/bytes.ts';
import { bodyOf, filePath } from './support/http-client.ts';
import { waitFor } from './support/wait-for.ts';

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, any>;
}

function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** `name{labels}` → value, for every sample line. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** A multipart publish body, serialized up front so its exact length is known. */
async function multipartBody(version: string, files: Array<{ path: string; data: Uint8Array }>): Promise<{ body: Buffer; type: string }> {
  const form = new FormData();
  form.append('version', version);
  for (const f of files) form.append('file', new Blob([bodyOf(f.data)]), f.path);
  const req = new Request('http://localhost/', { method: 'POST', body: form });
  return { body: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}

function logLineFor(log: ReturnType<typeof recordingLogger>, id: string): Promise<LogLine> {
  return waitFor(`the request log line with request_id ${id}`, () => log.lines.find((l) => l.msg === 'request' && l.fields.request_id === id), 2_000, 10);
}

describe('metrics and request logs', () => {
  let server: RunningServer;
  let dataDir: string;
  const log = recordingLogger();
  const A = randomBytesFor('metrics-a', 3000);
  const B = compressibleBytes(5000);
  const C = randomBytesFor('metrics-c', 7000);
  let publishBytes = 0;
  let archiveBytes = 0;
  let notFoundBytes = 0;
  let metrics: Map<string, number>;

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-metrics-'));
    server = await startServer({ dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: false, unsafePolicy: 'warn' }, log);
    // 2 publishes (a.bin is in both: stored once)
    for (const [version, files] of [
      ['1.0.0', [{ path: 'a.bin', data: A }, { path: 'b.bin', data: B }]],
      ['2.0.0', [{ path: 'a.bin', data: A }, { path: 'c.bin', data: C }]],
    ] as const) {
      const { body, type } = await multipartBody(version, [...files]);
      const res = await fetch(`${server.url}/v1/models/m/versions`, { method: 'POST', headers: { 'content-type': type }, body: bodyOf(body) });
      assert.equal(res.status, 201, await res.text());
      publishBytes += body.length;
    }
    // 3 file pulls, one through `latest`
    for (const [ref, p, size] of [['1.0.0', 'a.bin', 3000], ['1.0.0', 'b.bin', 5000], ['latest', 'c.bin', 7000]] as const) {
      const res = await fetch(server.url + filePath('m', ref, p));
      assert.equal(res.status, 200);
      assert.equal((await res.arrayBuffer()).byteLength, size);
    }
    // 1 archive
    const archive = await fetch(`${server.url}/v1/models/m/versions/1.0.0/archive`);
    assert.equal(archive.status, 200);
    archiveBytes = (await archive.arrayBuffer()).byteLength;
    // 1 not found
    const missing = await fetch(`${server.url}/v1/models/nope`);
    assert.equal(missing.status, 404);
    notFoundBytes = (await missing.arrayBuffer()).byteLength;
    // 1 open upload session
    assert.equal((await fetch(`${server.url}/v1/uploads`, { method: 'POST' })).status, 201);
    // samples are taken when each response has finished, as its log line is written: wait for all 8
    await waitFor('a log line (and a sample) for each of the 8 requests', () => log.lines.filter((l) => l.msg === 'request').length >= 8);
    const scrape = await fetch(`${server.url}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(scrape.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    metrics = parseExposition(await scrape.text());
  });

  after(async () => {
    await server?.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('request counters by method, route pattern (not URL) and status', () => {
    const count = (method: string, route: string, status: number) => metrics.get(`cairn_http_requests_total{method="${method}",route="${route}",status="${status}"}`);
    assert.equal(count('POST', '/v1/models/:name/versions', 201), 2);
    assert.equal(count('GET', '/v1/models/:name/versions/:ref/files/*path', 200), 3);
    assert.equal(count('GET', '/v1/models/:name/versions/:ref/archive', 200), 1);
    assert.equal(count('GET', '/v1/models/:name', 404), 1);
    assert.equal(count('POST', '/v1/uploads', 201), 1);
    const requestSamples = [...metrics.keys()].filter((k) => k.startsWith('cairn_http_requests_total'));
    assert.equal(requestSamples.length, 5, requestSamples.join('\n'));
    assert.ok(!requestSamples.some((k) => k.includes('a.bin') || k.includes('nope')), 'raw URLs never become labels');
  });

  test('body bytes received and sent, exactly', () => {
    assert.equal(metrics.get('cairn_http_bytes_received_total{method="POST",route="/v1/models/:name/versions"}'), publishBytes);
    assert.equal(metrics.get('cairn_http_bytes_sent_total{method="GET",route="/v1/models/:name/versions/:ref/files/*path"}'), 3000 + 5000 + 7000);
    assert.equal(metrics.get('cairn_http_bytes_received_total{method="GET",route="/v1/models/:name/versions/:ref/files/*path"}'), 0);
    assert.equal(metrics.get('cairn_http_bytes_sent_total{method="GET",route="/v1/models/:name/versions/:ref/archive"}'), archiveBytes);
    assert.equal(metrics.get('cairn_http_bytes_sent_total{method="GET",route="/v1/models/:name"}'), notFoundBytes);
  });

  test('duration histogram: cumulative buckets, count and sum', () => {
    const name = 'cairn_http_request_duration_seconds';
    const labels = 'method="GET",route="/v1/models/:name/versions/:ref/files/*path"';
    assert.equal(metrics.get(`${name}_count{${labels}}`), 3);
    assert.equal(metrics.get(`${name}_bucket{${labels},le="+Inf"}`), 3);
    assert.ok(metrics.get(`${name}_sum{${labels}}`)! > 0);
    const buckets = [...metrics].filter(([k]) => k.startsWith(`${name}_bucket{${labels},`)).map(([, v]) => v);
    assert.ok(buckets.length > 5);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, 'buckets are cumulative');
    assert.equal(metrics.get(`${name}_count{method="POST",route="/v1/models/:name/versions"}`), 2);
  });

  test('pulls by model and resolved version (files and archives)', () => {
    assert.equal(metrics.get('cairn_pulls_total{model="m",version="1.0.0"}'), 3);
    assert.equal(metrics.get('cairn_pulls_total{model="m",version="2.0.0"}'), 1, '`latest` is counted as the version it resolved to');
    assert.equal([...metrics.keys()].filter((k) => k.startsWith('cairn_pulls_total')).length, 2);
  });

  test('storage gauges match the database: stored, logical, chunks, open uploads', () => {
    const db = server.cairn.db;
    const stored = db.first<{ n: number }>('SELECT sum(stored_size) AS n FROM chunks')!.n;
    const chunks = db.first<{ n: number }>('SELECT count(*) AS n FROM chunks')!.n;
    assert.equal(metrics.get('cairn_storage_bytes_stored'), stored);
    assert.equal(metrics.get('cairn_storage_bytes_logical'), 3000 + 5000 + 3000 + 7000);
    assert.ok(stored < 3000 + 5000 + 3000 + 7000, 'dedup and compression: stored is less than logical');
    assert.equal(metrics.get('cairn_storage_chunks'), chunks);
    assert.equal(metrics.get('cairn_upload_sessions_open'), 1);
    assert.ok(metrics.get('cairn_lineage_mirror_pending_events')! >= 0);
    assert.ok(metrics.get('cairn_lineage_mirror_oldest_pending_seconds')! >= 0);
    assert.equal(metrics.get('cairn_lineage_commit_mismatches'), 0);
    assert.ok(metrics.get('process_resident_memory_bytes')! > 1024 * 1024);
    const start = metrics.get('process_start_time_seconds')!;
    assert.ok(start <= Date.now() / 1000 && start > Date.now() / 1000 - process.uptime() - 5);
  });

  test('logical bytes count live versions only; the mirror drains to zero pending', async () => {
    assert.equal((await fetch(`${server.url}/v1/models/m/versions/2.0.0`, { method: 'DELETE' })).status, 204);
    const after = await waitFor('the mirror drained', async () => {
      const scraped = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
      return scraped.get('cairn_lineage_mirror_pending_events') === 0 && scraped;
    });
    assert.equal(after.get('cairn_storage_bytes_logical'), 3000 + 5000);
    assert.equal(after.get('cairn_lineage_mirror_pending_events'), 0);
    assert.equal(after.get('cairn_lineage_mirror_oldest_pending_seconds'), 0);
    assert.equal(after.get('cairn_http_requests_total{method="DELETE",route="/v1/models/:name/versions/:ref",status="204"}'), 1);
    assert.ok(after.get('cairn_http_requests_total{method="GET",route="/metrics",status="200"}')! >= 1);
  });

  test('one JSON log line per request, with the id the response carries', async () => {
    const given = await fetch(`${server.url}/v1/models/m`, { headers: { 'x-request-id': 'metrics-test-1' } });
    assert.equal(given.headers.get('x-request-id'), 'metrics-test-1');
    const body = Buffer.from(await given.arrayBuffer());
    const line = await logLineFor(log, 'metrics-test-1');
    assert.equal(line.level, 'info');
    assert.deepEqual(
      { method: line.fields.method, route: line.fields.route, path: line.fields.path, status: line.fields.status, bytes_in: line.fields.bytes_in, bytes_out: line.fields.bytes_out, actor: line.fields.actor },
      { method: 'GET', route: '/v1/models/:name', path: '/v1/models/m', status: 200, bytes_in: 0, bytes_out: body.length, actor: 'anonymous' },
    );
    assert.equal(typeof line.fields.duration_ms, 'number');
    assert.ok(line.fields.duration_ms >= 0);
    JSON.stringify(line.fields); // what createLogger writes: one JSON object

    // no id given: the server's own, in both places
    const generated = await fetch(`${server.url}/v1/models/nope/versions`);
    await generated.arrayBuffer();
    const id = generated.headers.get('x-request-id');
    assert.ok(id && id.length > 8);
    const missing = await logLineFor(log, id);
    assert.equal(missing.fields.status, 404);
    assert.equal(missing.fields.route, '/v1/models/:name/versions');

    // a route that does not exist
    const none = await fetch(`${server.url}/v1/nothing/here`);
    await none.arrayBuffer();
    const unmatched = await logLineFor(log, none.headers.get('x-request-id')!);
    assert.equal(unmatched.fields.route, 'unmatched');
    assert.equal(unmatched.fields.path, '/v1/nothing/here');
  });

  test('the publish log lines carry the body bytes received', () => {
    const publishes = log.lines.filter((l) => l.msg === 'request' && l.fields.method === 'POST' && l.fields.route === '/v1/models/:name/versions');
    assert.equal(publishes.length, 2);
    assert.equal(publishes[0]!.fields.bytes_in + publishes[1]!.fields.bytes_in, publishBytes);
    assert.ok(publishes.every((l) => l.fields.status === 201 && l.fields.bytes_out > 100));
  });
});
