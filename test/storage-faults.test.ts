// Storage faults, end to end, against a real S3 server: a throwaway Ceph
// cluster of this test's own (other ports, so the S3 server other suites use
// is never disturbed) whose RADOS Gateway is SIGKILLed mid-download and
// mid-upload, then started again. The real `cairn serve` runs as a child
// process and is never restarted. Checked: a client gets 503
// STORAGE_UNAVAILABLE or a cut connection, never a complete body with wrong
// bytes; nothing is half-visible; /readyz is 503 while S3 is down and 200
// again once it is back; the same publish then succeeds and pulls identical;
// every recorded chunk exists in S3.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { digestOf, KiB, MiB, randomBytesFor } from './support/bytes.ts';
import { killRgw, startFaultCluster, startRgw, stopFaultCluster, type FaultCluster } from './support/ceph-fault.ts';
import { pieces, rawRequest, s3ChildEnv, spawnServer, type ChildServer, type RawResponse } from './support/child-server.ts';
import { filePath, sleep, streamedMultipart } from './support/http-client.ts';
import { checkDataDir, s3Chunks, s3Driver } from './support/invariants.ts';
import { waitFor } from './support/wait-for.ts';

const enabled = Boolean(process.env.CAIRN_S3_ENDPOINT) || Boolean(process.env.CI);
if (!enabled) {
  process.stderr.write('# storage faults: skipped — CAIRN_S3_ENDPOINT unset (no Ceph on this machine?); see scripts/s3-server.sh. In CI this suite always runs.\n');
}
const PORTS = {
  rgw: Number(process.env.CAIRN_FAULT_RGW_PORT ?? 7520),
  monV2: Number(process.env.CAIRN_FAULT_MON_V2 ?? 3340),
  monV1: Number(process.env.CAIRN_FAULT_MON_V1 ?? 6829),
};
const CYCLES = Number(process.env.CAIRN_FAULT_CYCLES ?? 3);
const BUCKET = 'cairn-fault-test';
const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

type Outcome = { kind: 'status'; res: RawResponse } | { kind: 'cut'; message: string; received: number };

/** GET with a hook once `pauseAfter` bytes arrived: the body is paused while `whilePaused` runs. */
function pausedDownload(url: string, pauseAfter: number, whilePaused: () => Promise<void>, timeoutMs = 60_000): Promise<Outcome & { expected?: number; bytes?: Buffer }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Outcome & { expected?: number; bytes?: Buffer }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => {
      req.destroy(new Error(`download hung for ${timeoutMs} ms`));
    }, timeoutMs);
    const req = http.get(url, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      let received = 0;
      let paused = false;
      const expected = Number(res.headers['content-length'] ?? -1);
      res.on('data', (d: Buffer) => {
        parts.push(d);
        received += d.length;
        if (!paused && received >= pauseAfter && res.statusCode === 200) {
          paused = true;
          res.pause();
          whilePaused().then(() => res.resume(), () => res.resume());
        }
      });
      const cut = (message: string) => finish({ kind: 'cut', message, received, expected });
      res.on('aborted', () => cut('aborted'));
      res.on('error', (err) => cut(err.message));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        if (expected >= 0 && body.length !== expected) return cut(`ended after ${body.length} of ${expected} bytes`);
        let json: any;
        try {
          json = res.statusCode === 200 ? undefined : JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined;
        }
        finish({ kind: 'status', res: { status: res.statusCode ?? 0, headers: res.headers, body, json }, expected, bytes: body });
      });
    });
    req.on('error', (err) => finish({ kind: 'cut', message: err.message, received: 0 }));
  });
}

function multipartPublish(base: string, model: string, version: string, files: Array<{ path: string; data: Buffer }>, onSent?: (n: number) => void): Promise<RawResponse> {
  const boundary = `----cairn-fault-${randomBytes(8).toString('hex')}`;
  return rawRequest(
    `${base}/v1/models/${model}/versions`,
    'POST',
    { 'content-type': `multipart/form-data; boundary=${boundary}` },
    streamedMultipart(boundary, { version }, files.map((f) => ({ path: f.path, source: pieces(f.data, 256 * KiB) }))),
    onSent,
  );
}

async function readyz(base: string): Promise<RawResponse> {
  return rawRequest(`${base}/readyz`, 'GET', {});
}

async function waitReady(base: string, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  await waitFor('/readyz 200 with S3 back', async () => (await readyz(base)).status === 200, timeoutMs, 200);
  return Date.now() - t0;
}

describe('storage faults (s3): the S3 server goes away mid-transfer and comes back', { skip: enabled ? false : 'CAIRN_S3_ENDPOINT unset', timeout: 900_000 }, () => {
  const clusterDir = path.join(os.tmpdir(), `cairn-fault-s3-${process.pid}`);
  let cluster: FaultCluster | undefined;
  let server: ChildServer | undefined;
  let dataDir: string;
  const prefix = `fault-${process.pid}-${randomBytes(4).toString('hex')}/`;

  before(async () => {
    cluster = await startFaultCluster(clusterDir, PORTS);
    // the AWS SDK reads credentials from the environment (the checker's client too)
    process.env.AWS_ACCESS_KEY_ID ??= cluster.env.AWS_ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY ??= cluster.env.AWS_SECRET_ACCESS_KEY;
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-fault-data-'));
    server = await spawnServer({
      dataDir,
      env: { ...s3ChildEnv(BUCKET, prefix, cluster.endpoint), AWS_ACCESS_KEY_ID: cluster.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: cluster.env.AWS_SECRET_ACCESS_KEY },
    });
  });

  after(async () => {
    await server?.stop();
    await stopFaultCluster({ dir: clusterDir, ports: PORTS }); // the whole throwaway cluster, data included
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  test(`${CYCLES} cycles: RGW killed mid-download and mid-upload; 503 or cut, never wrong bytes; service resumes without restart`, async (t) => {
    const base = server!.url;
    const violations: string[] = [];
    const tally = { faults: 0, survived: 0, checks: 0, cutDownloads: 0, downloads503: 0, uploads503: 0, uploadsCut: 0, readyz503: 0, recoveries: 0 };
    const recoverMs: number[] = [];
    const note = (ok: boolean, message: string) => {
      tally.checks++;
      if (!ok) violations.push(message);
    };
    const isUnavailable = (r: RawResponse) => r.status === 503 && r.json?.error?.code === 'STORAGE_UNAVAILABLE';

    // a multi-chunk file to download (chunks average 2 MiB; read-ahead is a few chunks)
    const big = randomBytesFor('fault-download', 40 * MiB);
    const bigDigest = digestOf(big);
    const pub = await multipartPublish(base, 'dl', '1.0.0', [{ path: 'big.bin', data: big }]);
    assert.equal(pub.status, 201, pub.body.toString());

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // (b) RGW dies mid-download
      let killedAt = 0;
      const dl = await pausedDownload(base + filePath('dl', '1.0.0', 'big.bin'), (1 + cycle * 3) * MiB, async () => {
        await killRgw(cluster!);
        killedAt = Date.now();
        await sleep(300); // the outage lasts a moment while the download is held (the scenario)
      });
      tally.faults++;
      if (dl.kind === 'cut') {
        tally.cutDownloads++;
        tally.survived++;
        note(!dl.message.includes('hung'), `cycle ${cycle} download: ${dl.message}`);
      } else if (dl.res.status === 200) {
        // the whole body arrived: then it must be the right bytes
        note(sha(dl.res.body) === bigDigest, `cycle ${cycle} download: a complete body with WRONG bytes (${sha(dl.res.body)})`);
        tally.survived++;
      } else {
        note(false, `cycle ${cycle} download: status ${dl.res.status} after headers? ${dl.res.body.toString().slice(0, 200)}`);
      }
      note(killedAt > 0, `cycle ${cycle}: RGW was not killed during the download`);

      // while S3 is down
      const rz = await readyz(base);
      note(rz.status === 503 && typeof rz.json?.checks?.storage === 'string' && rz.json.checks.storage !== 'ok' && rz.json.checks.db === 'ok', `cycle ${cycle}: /readyz with S3 down: ${rz.status} ${rz.body.toString()}`);
      if (rz.status === 503) tally.readyz503++;
      const fresh = await rawRequest(base + filePath('dl', '1.0.0', 'big.bin'), 'GET', {}).catch((err: Error) => err);
      tally.faults++;
      if (fresh instanceof Error) tally.survived++;
      else if (isUnavailable(fresh)) {
        tally.downloads503++;
        tally.survived++;
      } else note(false, `cycle ${cycle}: download with S3 down: ${fresh.status} ${fresh.body.length} bytes ${fresh.body.toString().slice(0, 200)}`);
      const small = randomBytesFor(`fault-small-${cycle}`, 300 * KiB);
      const down = await multipartPublish(base, 'small', `0.${cycle}`, [{ path: 'w.bin', data: small }]).catch((err: Error) => err);
      tally.faults++;
      if (down instanceof Error) tally.survived++;
      else if (isUnavailable(down)) {
        tally.uploads503++;
        tally.survived++;
      } else note(false, `cycle ${cycle}: publish with S3 down: ${down.status} ${down.body.toString().slice(0, 300)}`);
      const smallVisible = await rawRequest(`${base}/v1/models/small/versions/0.${cycle}`, 'GET', {});
      note(smallVisible.status === 404, `cycle ${cycle}: a publish refused while S3 was down is visible: ${smallVisible.status}`);
      // an upload session while down: the session survives with a consistent offset
      const session = await rawRequest(`${base}/v1/uploads`, 'POST', {});
      note(session.status === 201, `cycle ${cycle}: POST /v1/uploads with S3 down (metadata only): ${session.status}`);
      const sessionData = randomBytesFor(`fault-session-${cycle}`, 5 * MiB);
      const patch = await rawRequest(`${base}/v1/uploads/${session.json.id}`, 'PATCH', { 'content-type': 'application/octet-stream' }, pieces(sessionData)).catch((err: Error) => err);
      tally.faults++;
      if (patch instanceof Error || isUnavailable(patch)) tally.survived++;
      else note(false, `cycle ${cycle}: PATCH with S3 down: ${patch.status} ${patch.body.toString().slice(0, 300)}`);

      // (c) S3 comes back: Cairn recovers without a restart
      await startRgw(cluster!);
      recoverMs.push(await waitReady(base));
      tally.recoveries++;
      const again = await rawRequest(base + filePath('dl', '1.0.0', 'big.bin'), 'GET', {});
      note(again.status === 200 && sha(again.body) === bigDigest, `cycle ${cycle}: download after S3 came back: ${again.status} ${sha(again.body)}`);
      const retrySmall = await multipartPublish(base, 'small', `0.${cycle}`, [{ path: 'w.bin', data: small }]);
      note(retrySmall.status === 201, `cycle ${cycle}: publish after S3 came back: ${retrySmall.status} ${retrySmall.body.toString().slice(0, 300)}`);
      // the session resumes from the offset the server reports
      const at = await rawRequest(`${base}/v1/uploads/${session.json.id}`, 'GET', {});
      note(at.status === 200 && at.json.offset >= 0 && at.json.offset <= sessionData.length, `cycle ${cycle}: session after the fault: ${at.status} ${at.body.toString()}`);
      if (at.status === 200) {
        const offset = at.json.offset as number;
        if (offset < sessionData.length) {
          const rest = await rawRequest(`${base}/v1/uploads/${session.json.id}`, 'PATCH', { 'content-type': 'application/octet-stream', 'content-range': `bytes ${offset}-${sessionData.length - 1}/*` }, pieces(sessionData.subarray(offset)));
          note(rest.status === 202, `cycle ${cycle}: resumed PATCH: ${rest.status} ${rest.body.toString().slice(0, 300)}`);
        }
        const fin = await rawRequest(`${base}/v1/uploads/${session.json.id}?digest=${encodeURIComponent(digestOf(sessionData))}`, 'PUT', {});
        note(fin.status === 201, `cycle ${cycle}: finishing the resumed session: ${fin.status} ${fin.body.toString().slice(0, 300)}`);
      }

      // (a) RGW dies mid-upload of a large multipart publish
      const files = [
        { path: 'weights/a.bin', data: randomBytesFor(`fault-up-${cycle}-a`, 24 * MiB) },
        { path: 'weights/b.bin', data: randomBytesFor(`fault-up-${cycle}-b`, 20 * MiB) },
      ];
      const killAfter = (4 + cycle * 5) * MiB;
      let killing: Promise<void> | undefined;
      const up = await multipartPublish(base, 'up', `1.${cycle}`, files, (n) => {
        if (n >= killAfter && !killing) killing = killRgw(cluster!);
      }).catch((err: Error) => err);
      await killing;
      tally.faults++;
      if (up instanceof Error) {
        tally.uploadsCut++;
        tally.survived++;
      } else if (isUnavailable(up)) {
        tally.uploads503++;
        tally.survived++;
      } else note(false, `cycle ${cycle}: publish with RGW killed mid-upload: ${up.status} ${up.body.toString().slice(0, 300)}`);
      note(killing !== undefined, `cycle ${cycle}: RGW was not killed during the upload`);
      const half = await rawRequest(`${base}/v1/models/up/versions/1.${cycle}`, 'GET', {});
      note(half.status === 404, `cycle ${cycle}: the interrupted version is visible: ${half.status} ${half.body.toString().slice(0, 200)}`);

      await startRgw(cluster!);
      recoverMs.push(await waitReady(base));
      tally.recoveries++;
      const retry = await multipartPublish(base, 'up', `1.${cycle}`, files);
      note(retry.status === 201, `cycle ${cycle}: the same publish after S3 came back: ${retry.status} ${retry.body.toString().slice(0, 300)}`);
      for (const f of files) {
        const pulled = await rawRequest(base + filePath('up', `1.${cycle}`, f.path), 'GET', {});
        note(pulled.status === 200 && sha(pulled.body) === digestOf(f.data), `cycle ${cycle}: pull ${f.path} after recovery: ${pulled.status} ${sha(pulled.body)}`);
      }
      const report = await checkDataDir(dataDir, s3Chunks(s3Driver(BUCKET, prefix, cluster!.endpoint)));
      tally.checks += report.checks;
      for (const v of report.violations) violations.push(`cycle ${cycle}: ${v}`);
    }

    const line =
      `storage faults s3: ${tally.faults} faults injected (${CYCLES * 2} RGW kills mid-transfer + requests while down), ${tally.survived} survived ` +
      `(${tally.cutDownloads} downloads cut, ${tally.downloads503} downloads 503, ${tally.uploads503} uploads 503 STORAGE_UNAVAILABLE, ${tally.uploadsCut} uploads cut), ` +
      `${tally.readyz503} × /readyz 503 while down, ${tally.recoveries} recoveries without restarting cairn (readyz back in ${recoverMs.join('/')} ms), ` +
      `${tally.checks} checks, ${violations.length} violations`;
    t.diagnostic(line);
    console.log(`# ${line}`);
    assert.deepEqual(violations, [], `violations:\n${violations.join('\n')}\n--- server log tail:\n${server!.logTail().slice(-4000)}`);
    assert.equal(tally.survived, tally.faults);
  });
});
