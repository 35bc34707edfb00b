// Crash safety, end to end, on fs and on the real S3 server: the real
// `cairn serve` in a child process is SIGKILLed at random moments (seeded)
// during multipart publishes and upload-session pushes, restarted on the same
// data dir, and every invariant is checked after each kill:
//   - every acknowledged (201) version is listed and pulls byte-identical;
//   - no version exists that was not attempted;
//   - an interrupted version is either absent or complete and byte-identical;
//   - SQLite integrity_check / foreign_key_check; every chunk row has its
//     object in storage (with its recorded size); every blob's chunk list is whole;
//   - the interrupted push, run again, succeeds (201, or 409 with the bytes sent).
// Plus: concurrent publishes of one name@version give exactly one 201, one 409.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { digestOf, KiB, MiB, randomBytesFor } from './support/bytes.ts';
import { filePath, sleep, streamedMultipart } from './support/http-client.ts';
import { pieces, rawRequest, s3ChildEnv, spawnServer, type ChildServer, type RawResponse } from './support/child-server.ts';
import { prng } from './support/prng.ts';
import { checkDataDir, emptyPrefix, fsChunks, s3Chunks, s3Driver, type ChunkExists } from './support/invariants.ts';
import { storageKinds, TEST_BUCKET } from './support/server.ts';
import type { S3Driver } from '../src/blobs/s3-driver.ts';

const ROUNDS = Number(process.env.CAIRN_CRASH_ROUNDS ?? 18);
const SEED = Number(process.env.CAIRN_CRASH_SEED ?? 0xca1e);
const MODELS = ['crash-a', 'crash-b'];

interface PushFile {
  path: string;
  data: Buffer;
  digest: string;
}

interface Push {
  model: string;
  version: string;
  mode: 'multipart' | 'session';
  files: PushFile[];
  /** upload session per file path (session mode), kept across a crash to resume */
  sessions: Map<string, string>;
}

const key = (p: { model: string; version: string }) => `${p.model}@${p.version}`;
const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function makePush(rng: () => number, model: string, version: string, tag: string): Push {
  const n = 1 + Math.floor(rng() * 3);
  const files: PushFile[] = [];
  for (let i = 0; i < n; i++) {
    const size = Math.floor((64 + rng() * 2_500) * KiB);
    const data = randomBytesFor(`${tag}-${model}-${version}-${i}`, size);
    files.push({ path: i === 0 ? 'model.bin' : `shards/part-${i}.bin`, data, digest: digestOf(data) });
  }
  return { model, version, mode: rng() < 0.5 ? 'multipart' : 'session', files, sessions: new Map() };
}

/** Runs a push to completion (or until the connection breaks). Returns the publish response. */
async function runPush(base: string, push: Push, onSent: (n: number) => void): Promise<RawResponse & { resumed: number }> {
  let sent = 0;
  const count = (n: number) => onSent(sent + n);
  if (push.mode === 'multipart') {
    const boundary = `----cairn-crash-${randomBytes(8).toString('hex')}`;
    const body = streamedMultipart(boundary, { version: push.version }, push.files.map((f) => ({ path: f.path, source: pieces(f.data) })));
    const res = await rawRequest(`${base}/v1/models/${push.model}/versions`, 'POST', { 'content-type': `multipart/form-data; boundary=${boundary}` }, body, count);
    return { ...res, resumed: 0 };
  }
  let resumed = 0;
  for (const f of push.files) {
    const head = await rawRequest(`${base}/v1/blobs/${f.digest}`, 'HEAD', {});
    if (head.status === 200) {
      sent += f.data.length;
      continue;
    }
    let id = push.sessions.get(f.path);
    let offset = 0;
    if (id) {
      const got = await rawRequest(`${base}/v1/uploads/${id}`, 'GET', {});
      if (got.status === 200) {
        offset = got.json.offset as number;
        resumed++;
      } else {
        assert.equal(got.status, 404, `GET upload session: ${got.status} ${got.body.toString()}`);
        id = undefined;
      }
    }
    if (!id) {
      const created = await rawRequest(`${base}/v1/uploads`, 'POST', {});
      assert.equal(created.status, 201, `POST /v1/uploads: ${created.body.toString()}`);
      id = created.json.id as string;
      push.sessions.set(f.path, id);
    }
    if (offset < f.data.length) {
      const patched = await rawRequest(
        `${base}/v1/uploads/${id}`,
        'PATCH',
        { 'content-type': 'application/octet-stream', 'content-range': `bytes ${offset}-${f.data.length - 1}/*` },
        pieces(f.data.subarray(offset)),
        (n) => count(offset + n),
      );
      assert.equal(patched.status, 202, `PATCH upload: ${patched.status} ${patched.body.toString()}`);
    }
    sent += f.data.length;
    const put = await rawRequest(`${base}/v1/uploads/${id}?digest=${encodeURIComponent(f.digest)}`, 'PUT', {});
    assert.equal(put.status, 201, `PUT upload: ${put.status} ${put.body.toString()}`);
    assert.equal(put.json.digest, f.digest);
  }
  const manifest = Buffer.from(JSON.stringify({ version: push.version, files: push.files.map((f) => ({ path: f.path, digest: f.digest })) }));
  const res = await rawRequest(`${base}/v1/models/${push.model}/versions`, 'POST', { 'content-type': 'application/json', 'content-length': String(manifest.length) }, manifest);
  return { ...res, resumed };
}

interface Tally {
  checks: number;
  violations: string[];
}

/** A listed version must match the push exactly: same files, digests, and every byte on pull. */
async function verifyVersion(base: string, push: Push, tally: Tally, pullBytes: boolean, what: string): Promise<void> {
  const res = await rawRequest(`${base}/v1/models/${push.model}/versions/${encodeURIComponent(push.version)}`, 'GET', {});
  tally.checks++;
  if (res.status !== 200) {
    tally.violations.push(`${what} ${key(push)}: GET version ${res.status} ${res.body.toString().slice(0, 200)}`);
    return;
  }
  const got = (res.json.files as Array<{ path: string; digest: string; size: number }>).map((f) => `${f.path} ${f.digest} ${f.size}`).sort();
  const want = push.files.map((f) => `${f.path} ${f.digest} ${f.data.length}`).sort();
  tally.checks++;
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    tally.violations.push(`${what} ${key(push)}: files ${JSON.stringify(got)} != sent ${JSON.stringify(want)}`);
    return;
  }
  if (!pullBytes) return;
  for (const f of push.files) {
    tally.checks++;
    try {
      const pulled = await rawRequest(base + filePath(push.model, push.version, f.path), 'GET', {});
      if (pulled.status !== 200 || sha(pulled.body) !== f.digest) {
        tally.violations.push(`${what} ${key(push)}/${f.path}: pull ${pulled.status}, ${pulled.body.length} bytes, ${sha(pulled.body)} != ${f.digest}`);
      }
    } catch (err) {
      tally.violations.push(`${what} ${key(push)}/${f.path}: pull failed: ${(err as Error).message}`);
    }
  }
}

/** All versions the server lists, as `model@version`. */
async function listed(base: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const model of MODELS) {
    const res = await rawRequest(`${base}/v1/models/${model}/versions?limit=1000`, 'GET', {});
    if (res.status === 404) continue;
    assert.equal(res.status, 200, res.body.toString());
    for (const v of res.json.versions as Array<{ version: string }>) out.add(`${model}@${v.version}`);
  }
  return out;
}

for (const kind of storageKinds) {
  describe(`crash safety (${kind}): real server, SIGKILL at random moments`, { timeout: 240_000 }, () => {
    let dataDir: string;
    let server: ChildServer | undefined;
    let driver: S3Driver | undefined;
    let chunks: ChunkExists;
    let env: Record<string, string | undefined> = {};
    const prefix = `crash-${process.pid}-${randomBytes(4).toString('hex')}/`;

    before(async () => {
      dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `cairn-crash-${kind}-`));
      if (kind === 's3') {
        env = s3ChildEnv(TEST_BUCKET, prefix);
        driver = s3Driver(TEST_BUCKET, prefix);
        chunks = s3Chunks(driver);
      } else {
        chunks = fsChunks(dataDir);
      }
      server = await spawnServer({ dataDir, env });
    });

    after(async () => {
      await server?.stop();
      if (driver) await emptyPrefix(driver).catch(() => 0);
      await fs.rm(dataDir, { recursive: true, force: true });
    });

    test(`${ROUNDS} rounds of pushes, each cut by SIGKILL, then every invariant`, async (t) => {
      const rng = prng(SEED + (kind === 's3' ? 1 : 0));
      const attempted = new Map<string, Push>();
      const acked = new Set<string>();
      const tally: Tally = { checks: 0, violations: [] };
      let kills = 0;
      let interrupted = 0;
      let completedAnyway = 0;
      let rerun201 = 0;
      let rerun409 = 0;
      let resumedSessions = 0;
      let dbChecks = 0;
      const byBytes = { n: 0 };

      for (let round = 0; round < ROUNDS; round++) {
        const base = server!.url;
        const width = 1 + Math.floor(rng() * 2);
        const pushes = Array.from({ length: width }, (_, i) => makePush(rng, MODELS[i]!, `1.${round}.${i}`, `${kind}-${SEED}`));
        for (const p of pushes) attempted.set(key(p), p);
        const total = pushes.reduce((n, p) => n + p.files.reduce((m, f) => m + f.data.length, 0), 0);
        // kill after a random delay, or once a random share of the bytes went out
        const killAtBytes = rng() < 0.4 ? Math.floor(rng() * total) : undefined;
        const delay = Math.floor(rng() * 600);
        let trigger!: () => void;
        const triggered = new Promise<void>((r) => (trigger = r));
        const sentBy = pushes.map(() => 0);
        const outcomes = pushes.map((p, i) =>
          runPush(base, p, (n) => {
            sentBy[i] = n;
            if (killAtBytes !== undefined && sentBy.reduce((a, b) => a + b, 0) >= killAtBytes) trigger();
          }).then(
            (res) => ({ res, err: undefined }),
            (err: Error) => ({ res: undefined, err }),
          ),
        );
        const all = Promise.all(outcomes);
        if (killAtBytes !== undefined) {
          byBytes.n++;
          await Promise.race([triggered, all]);
        } else {
          await Promise.race([sleep(delay), all]); // the kill comes at a random moment (the point)
        }
        await server!.kill();
        kills++;
        const results = await all;
        server = await spawnServer({ dataDir, env });
        const now = server.url;

        const pending: Push[] = [];
        for (const [i, r] of results.entries()) {
          const p = pushes[i]!;
          if (r.res?.status === 201) {
            acked.add(key(p));
            completedAnyway++;
          } else {
            if (r.res) {
              // a full answer other than 201 before the kill is a bug (or a harness error)
              tally.violations.push(`round ${round} ${key(p)}: publish answered ${r.res.status} ${r.res.body.toString().slice(0, 200)}`);
            }
            interrupted++;
            pending.push(p);
          }
        }

        // invariants after the crash, before anything is re-run
        const seen = await listed(now);
        tally.checks++;
        for (const k of seen) if (!attempted.has(k)) tally.violations.push(`round ${round}: ${k} is listed but was never pushed`);
        for (const k of acked) {
          tally.checks++;
          if (!seen.has(k)) tally.violations.push(`round ${round}: acknowledged ${k} is not listed after the crash`);
        }
        const ackedList = [...acked];
        const sample = new Set(ackedList.filter((k) => pushes.some((p) => key(p) === k)));
        for (let i = 0; i < 3 && ackedList.length > 0; i++) sample.add(ackedList[Math.floor(rng() * ackedList.length)]!);
        for (const k of ackedList) await verifyVersion(now, attempted.get(k)!, tally, sample.has(k), `round ${round} acked`);
        for (const p of pending) {
          // not acknowledged: absent, or present in full
          if (seen.has(key(p))) await verifyVersion(now, p, tally, true, `round ${round} unacked-but-present`);
        }
        const report = await checkDataDir(dataDir, chunks);
        dbChecks++;
        tally.checks += report.checks;
        for (const v of report.violations) tally.violations.push(`round ${round} after kill: ${v}`);

        // the same push, run again, succeeds
        for (const p of pending) {
          let res;
          try {
            res = await runPush(now, p, () => {});
          } catch (err) {
            tally.violations.push(`round ${round} ${key(p)}: re-run failed: ${(err as Error).message}`);
            continue;
          }
          resumedSessions += res.resumed;
          tally.checks++;
          if (res.status === 201) {
            rerun201++;
          } else if (res.status === 409 && res.json?.error?.code === 'VERSION_EXISTS' && seen.has(key(p))) {
            rerun409++;
          } else {
            tally.violations.push(`round ${round} ${key(p)}: re-run answered ${res.status} ${res.body.toString().slice(0, 300)}`);
            continue;
          }
          acked.add(key(p));
          await verifyVersion(now, p, tally, true, `round ${round} re-run`);
        }
        if (tally.violations.length > 20) break;
      }

      // final sweep: every acknowledged version, every byte; every invariant
      const seen = await listed(server!.url);
      for (const k of seen) {
        tally.checks++;
        if (!acked.has(k)) tally.violations.push(`final: ${k} listed but never acknowledged (all pushes were re-run to 201)`);
      }
      for (const k of acked) await verifyVersion(server!.url, attempted.get(k)!, tally, true, 'final');
      const report = await checkDataDir(dataDir, chunks);
      dbChecks++;
      tally.checks += report.checks;
      for (const v of report.violations) tally.violations.push(`final: ${v}`);

      const line =
        `crash harness ${kind}: ${kills} SIGKILLs (${byBytes.n} after N bytes sent, ${kills - byBytes.n} after a delay), ` +
        `${attempted.size} pushes, ${interrupted} interrupted and re-run (${rerun201}×201, ${rerun409}×409 already complete, ${resumedSessions} upload sessions resumed), ` +
        `${completedAnyway} acknowledged before the kill, ${acked.size} acknowledged versions verified byte-identical, ` +
        `${dbChecks} database/storage sweeps (${report.chunks} chunks, ${report.liveVersions} live versions at the end), ` +
        `${tally.checks} checks, ${tally.violations.length} violations`;
      t.diagnostic(line);
      console.log(`# ${line}`);
      assert.deepEqual(tally.violations, [], `invariant violations:\n${tally.violations.join('\n')}\n--- server log tail:\n${server!.logTail().slice(-3000)}`);
      assert.equal(acked.size, attempted.size, 'every push ends acknowledged');
    });

    test('two concurrent publishes of the same name@version: exactly one 201, one 409 with the winner stored', async (t) => {
      const base = server!.url;
      const reps = 10;
      let ones = 0;
      for (let i = 0; i < reps; i++) {
        const version = `2.0.${i}`;
        const bodies = [0, 1].map((j) => randomBytesFor(`race-${kind}-${i}-${j}`, 1 * MiB + j * 300 * KiB + i * KiB));
        const results = await Promise.all(
          bodies.map((data) => {
            const boundary = `----cairn-race-${randomBytes(8).toString('hex')}`;
            return rawRequest(
              `${base}/v1/models/race/versions`,
              'POST',
              { 'content-type': `multipart/form-data; boundary=${boundary}` },
              streamedMultipart(boundary, { version }, [{ path: 'w.bin', source: pieces(data) }]),
            );
          }),
        );
        const statuses = results.map((r) => r.status);
        assert.deepEqual([...statuses].sort(), [201, 409], `round ${i}: ${statuses.join(', ')} ${results.map((r) => r.body.toString().slice(0, 200)).join(' | ')}`);
        const loser = results.find((r) => r.status === 409)!;
        assert.equal(loser.json?.error?.code, 'VERSION_EXISTS');
        const winner = results.findIndex((r) => r.status === 201);
        const pulled = await rawRequest(base + filePath('race', version, 'w.bin'), 'GET', {});
        assert.equal(pulled.status, 200);
        assert.equal(sha(pulled.body), digestOf(bodies[winner]!), `round ${i}: the stored bytes are the 201 request's`);
        ones++;
      }
      const report = await checkDataDir(dataDir, chunks);
      assert.deepEqual(report.violations, []);
      t.diagnostic(`concurrent publish ${kind}: ${ones}/${reps} races gave exactly one 201 and one 409; stored bytes = the winner's`);
    });
  });
}
