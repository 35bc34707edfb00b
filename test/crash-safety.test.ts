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
// And on S3, direct pushes by the `cairn push` CLI cut by a SIGKILL of the
// server or of the CLI (see "direct pushes" below).
import BetterSqlite3 from 'better-sqlite3';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { digestOf, KiB, MiB, randomBytesFor } from './support/bytes.ts';
import { filePath, sleep, streamedMultipart } from './support/http-client.ts';
import { cairnBin } from './support/build.ts';
import { freePort, pieces, rawRequest, s3ChildEnv, spawnServer, type ChildServer, type RawResponse } from './support/child-server.ts';
import { prng } from './support/prng.ts';
import { checkDataDir, emptyPrefix, fsChunks, s3Chunks, s3Driver, type ChunkExists } from './support/invariants.ts';
import { storageKinds, TEST_BUCKET } from './support/server.ts';
import { chunkDigestOfKey, CHUNKS_PREFIX, STAGING_PREFIX } from '../src/blobs/layout.ts';
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

/** All versions the server lists of `models`, as `model@version`. */
async function listedIn(base: string, models: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const model of models) {
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
        const seen = await listedIn(now, MODELS);
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
      const seen = await listedIn(server!.url, MODELS);
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

// ---- direct pushes (S3): `cairn push` puts chunks straight into the bucket ----
//
// The CLI (a child process) cuts each file, asks which chunks are missing,
// PUTs them into its session's staging area and appends them by digest; the
// server reads each back and checks it. A SIGKILL of the server or of the CLI
// at a random moment of that must leave no partial version (a version is
// listed whole, every file pulling back byte-identical, or not at all); the
// same push run again completes; and once gc has run (grace 0, upload TTL 0;
// twice: the first notes unrecorded objects, the second deletes them) every
// object under chunks/ is recorded and used by a live version, and nothing is
// left under staging/.

const DIRECT_ROUNDS = Number(process.env.CAIRN_CRASH_DIRECT_ROUNDS ?? 8);
const DIRECT_MODELS = ['direct-a', 'direct-b'];

interface DirectPush {
  model: string;
  version: string;
  /** the directory pushed: its files keep their paths */
  dir: string;
  files: PushFile[];
}

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface CliPushed {
  files: Array<{ path: string; digest: string; status: string; direct: boolean; resumed_from: number | null }>;
}

/** `cairn push <model>@<version> <dir> --json` as a user runs it; `kill` SIGKILLs it. */
function startCliPush(base: string, push: DirectPush, stateHome: string): { done: Promise<CliRun>; kill(): void } {
  const child = spawn(process.execPath, [cairnBin(), 'push', `${push.model}@${push.version}`, push.dir, '--json'], {
    env: { ...process.env, CAIRN_URL: base, CAIRN_TOKEN: '', XDG_STATE_HOME: stateHome },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliRun>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { done, kill: () => child.kill('SIGKILL') };
}

/**
 * A push of 1–2 files of 4–16 MiB (a few chunks each). Half of them start
 * from a file pushed before, with 64 KiB changed somewhere: most of their
 * chunks are stored already, the rest must be sent.
 */
async function makeDirectPush(rng: () => number, root: string, model: string, version: string, earlier: PushFile[]): Promise<DirectPush> {
  const dir = path.join(root, `${model}-${version}`);
  const files: PushFile[] = [];
  const n = 1 + Math.floor(rng() * 2);
  for (let i = 0; i < n; i++) {
    let data: Buffer;
    const base = earlier.length > 0 && rng() < 0.5 ? earlier[Math.floor(rng() * earlier.length)]! : undefined;
    if (base) {
      data = Buffer.from(base.data);
      const at = Math.floor(rng() * (data.length - 64 * KiB));
      randomBytesFor(`direct-edit-${model}-${version}-${i}`, 64 * KiB).copy(data, at);
    } else {
      data = randomBytesFor(`direct-${model}-${version}-${i}`, Math.floor((4 + rng() * 12) * MiB));
    }
    const file = { path: i === 0 ? 'model.bin' : `shards/part-${i}.bin`, data, digest: digestOf(data) };
    await fs.mkdir(path.dirname(path.join(dir, file.path)), { recursive: true });
    await fs.writeFile(path.join(dir, file.path), data);
    files.push(file);
  }
  return { model, version, dir, files };
}

/** Every object under chunks/ recorded and used by a live version's blob; nothing under staging/. */
async function checkNoGarbage(dataDir: string, driver: S3Driver): Promise<{ violations: string[]; objects: number }> {
  const violations: string[] = [];
  const db = new BetterSqlite3(path.join(dataDir, 'registry.db'), { readonly: true, fileMustExist: true });
  let recorded: Set<string>;
  let used: Set<string>;
  let objects = 0;
  const holders = (digest: string) =>
    JSON.stringify({
      blobs: db.prepare('SELECT b.digest, b.created_at FROM blob_chunks bc JOIN blobs b ON b.digest = bc.blob_digest WHERE bc.chunk_digest = ?').all(digest),
      uploads: db.prepare('SELECT u.id, u.updated_at FROM upload_chunks uc JOIN uploads u ON u.id = uc.upload_id WHERE uc.chunk_digest = ?').all(digest),
      chunk: db.prepare('SELECT created_at FROM chunks WHERE digest = ?').get(digest),
    });
  try {
    recorded = new Set((db.prepare('SELECT digest FROM chunks').all() as Array<{ digest: string }>).map((r) => r.digest));
    used = new Set(
      (
        db
          .prepare(
            // a live version's blobs: its files', and those of its OCI manifests (config, manifest), which live while it does
            `SELECT DISTINCT bc.chunk_digest AS digest FROM blob_chunks bc
              WHERE bc.blob_digest IN (SELECT f.blob_digest FROM version_files f JOIN versions v ON v.id = f.version_id WHERE v.deleted_at IS NULL)
                 OR bc.blob_digest IN (SELECT blob_digest FROM oci_live_blobs)`,
          )
          .all() as Array<{ digest: string }>
      ).map((r) => r.digest),
    );
    for await (const key of driver.list(CHUNKS_PREFIX)) {
      objects++;
      const digest = chunkDigestOfKey(key);
      if (!digest) violations.push(`${key}: not a chunk key`);
      else if (!recorded.has(digest)) violations.push(`${key}: in storage, not recorded`);
      else if (!used.has(digest)) violations.push(`${key}: recorded, but no live version's blob uses it (held by ${holders(digest)})`);
    }
  } finally {
    db.close();
  }
  for await (const key of driver.list(STAGING_PREFIX)) violations.push(`${key}: left under staging/`);
  return { violations, objects };
}

if (storageKinds.includes('s3')) {
  describe('crash safety (s3): direct pushes by the cairn CLI, the server or the CLI SIGKILLed at random moments', { timeout: 300_000 }, () => {
    let dataDir: string;
    let work: string;
    let server: ChildServer | undefined;
    let port: number;
    let driver: S3Driver;
    let env: Record<string, string | undefined>;
    const prefix = `crash-direct-${process.pid}-${randomBytes(4).toString('hex')}/`;

    before(async () => {
      dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-crash-direct-'));
      work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-crash-direct-files-'));
      env = s3ChildEnv(TEST_BUCKET, prefix);
      driver = s3Driver(TEST_BUCKET, prefix);
      // one port for every restart: the CLI's retries and its recorded sessions (keyed by server URL) find the server again
      port = await freePort();
      server = await spawnServer({ dataDir, env, port });
    });

    after(async () => {
      await server?.stop();
      await emptyPrefix(driver).catch(() => 0);
      await fs.rm(dataDir, { recursive: true, force: true });
      await fs.rm(work, { recursive: true, force: true });
    });

    test(`${DIRECT_ROUNDS} direct pushes, each cut by a SIGKILL of the server or of the CLI; re-runs complete; gc leaves no garbage`, async (t) => {
      const rng = prng(SEED + 17);
      const stagedKeys = async () => {
        const keys = new Set<string>();
        for await (const k of driver.list(STAGING_PREFIX)) keys.add(k);
        return keys;
      };
      const base = `http://127.0.0.1:${port}`;
      const stateHome = path.join(work, 'state'); // the CLI's recorded sessions, kept across its runs
      const tally: Tally = { checks: 0, violations: [] };
      const attempted = new Map<string, DirectPush>();
      const complete = new Set<string>();
      const pushedFiles: PushFile[] = [];
      const counts = { serverKills: 0, cliKills: 0, beforeKill: 0, throughRestart: 0, withStaged: 0, rerun: 0, rerunExisting: 0, resumed: 0, abandoned: 0, directFiles: 0 };
      const asPush = (p: DirectPush): Push => ({ model: p.model, version: p.version, mode: 'session', files: p.files, sessions: new Map() });

      /** A CLI run that must succeed: exit 0, every uploaded file went straight to storage. */
      const expectPushed = (p: DirectPush, run: CliRun, what: string): CliPushed | undefined => {
        tally.checks++;
        if (run.code !== 0) {
          tally.violations.push(`${what} ${key(p)}: cairn push exited ${run.code ?? run.signal}: ${run.stderr.slice(-600)}`);
          return undefined;
        }
        const out = JSON.parse(run.stdout) as CliPushed;
        for (const f of out.files) {
          tally.checks++;
          if (f.status === 'uploaded' && !f.direct) tally.violations.push(`${what} ${key(p)}/${f.path}: uploaded through the server, not straight to storage`);
          if (f.status === 'uploaded') counts.directFiles++;
          if (f.resumed_from !== null) counts.resumed++;
        }
        return out;
      };

      // A first push, not cut: it tells how long a push takes here (so does every push the kill came too late for), so the kills land all along one.
      const first = await makeDirectPush(rng, work, DIRECT_MODELS[0]!, '0.0', pushedFiles);
      const t0 = Date.now();
      expectPushed(first, await startCliPush(base, first, stateHome).done, 'first push');
      let pushMs = Date.now() - t0;
      attempted.set(key(first), first);
      complete.add(key(first));
      pushedFiles.push(...first.files);

      // until DIRECT_ROUNDS kills came during a push (a push may end before its kill)
      for (let round = 1, kills = 0; kills < DIRECT_ROUNDS && round <= 2 * DIRECT_ROUNDS; round++) {
        const victim = kills % 2 === 0 ? 'cli' : 'server';
        const p = await makeDirectPush(rng, work, DIRECT_MODELS[round % DIRECT_MODELS.length]!, `1.${round}`, pushedFiles);
        attempted.set(key(p), p);
        const stagedBefore = await stagedKeys();
        const cli = startCliPush(base, p, stateHome);
        const started = Date.now();
        let ended = false;
        void cli.done.then(() => (ended = true));
        // the kill comes after a random share of a push's time, or (half the rounds) once this push's chunks reach staging
        const onStaging = rng() < 0.5;
        const delay = onStaging ? Math.floor(rng() * 150) : Math.floor((0.3 + 0.7 * rng()) * pushMs);
        const moment = (async () => {
          if (onStaging) while (!ended && [...(await stagedKeys())].every((k) => stagedBefore.has(k))) await sleep(10);
          await sleep(delay);
        })();
        const outcome = Promise.race([cli.done, moment.then(() => undefined)]);
        let run = await outcome;
        if (run !== undefined && run.code !== 0) {
          tally.violations.push(`round ${round} ${key(p)}: cairn push failed before any kill: ${run.code ?? run.signal}: ${run.stderr.slice(-600)}`);
        }
        if (run !== undefined) {
          counts.beforeKill++;
          pushMs = Date.now() - started;
        } else {
          kills++;
          if (victim === 'server') {
            await server!.kill();
            counts.serverKills++;
            // back at once, on the same port: the CLI may carry on through its retries, or fail
            server = await spawnServer({ dataDir, env, port });
          } else {
            cli.kill();
            counts.cliKills++;
          }
          run = await cli.done;
          if (run.code === 0) counts.throughRestart++; // the CLI's retries reached the restarted server
          if ([...(await stagedKeys())].some((k) => !stagedBefore.has(k))) counts.withStaged++; // the kill came with this push's chunks in staging
        }
        if (run.code === 0 && expectPushed(p, run, `round ${round}`)) complete.add(key(p));

        // after the kill, before any re-run: every listed version whole, nothing listed that was not pushed
        const seen = await listedIn(base, DIRECT_MODELS);
        for (const k of seen) {
          tally.checks++;
          if (!attempted.has(k)) tally.violations.push(`round ${round}: ${k} is listed but was never pushed`);
          else await verifyVersion(base, asPush(attempted.get(k)!), tally, k === key(p) || rng() < 0.3, `round ${round} listed`);
        }
        for (const k of complete) {
          tally.checks++;
          if (!seen.has(k)) tally.violations.push(`round ${round}: ${k}, pushed to the end, is not listed`);
        }
        const report = await checkDataDir(dataDir, s3Chunks(driver));
        tally.checks += report.checks;
        for (const v of report.violations) tally.violations.push(`round ${round} after the ${victim} kill: ${v}`);

        // the same push, run again, completes (or finds the version there, whole: the kill came after the publish
        // was sent, and the server may have finished it after the listing above). Now and then from a machine
        // that does not know the first run's session (a fresh state dir): that session is left to gc.
        if (!complete.has(key(p))) {
          const elsewhere = rng() < 0.35;
          if (elsewhere) counts.abandoned++;
          const again = await startCliPush(base, p, elsewhere ? path.join(work, `state-${round}`) : stateHome).done;
          if (again.code !== 0 && /VERSION_EXISTS/.test(again.stderr + again.stdout)) {
            counts.rerunExisting++;
          } else if (expectPushed(p, again, `round ${round} re-run`)) {
            counts.rerun++;
          }
          await verifyVersion(base, asPush(p), tally, true, `round ${round} re-run`);
          complete.add(key(p));
        }
        pushedFiles.push(...p.files);
        if (tally.violations.length > 20) break;
      }

      // A push given up: its CLI killed once chunks are in staging, never run again. Its session, staged
      // objects and adopted chunks are garbage for gc to find.
      const givenUp = await makeDirectPush(rng, work, DIRECT_MODELS[0]!, '9.0', []);
      const stagedEarlier = await stagedKeys();
      const doomed = startCliPush(base, givenUp, path.join(work, 'state-given-up'));
      let ended = false;
      void doomed.done.then(() => (ended = true));
      while (!ended && [...(await stagedKeys())].every((k) => stagedEarlier.has(k))) await sleep(10);
      doomed.kill();
      await doomed.done;

      // gc, twice, with no grace: whatever the kills left behind goes, and nothing a live version uses
      const before = await checkNoGarbage(dataDir, driver); // what the kills left: staged objects, chunks of sessions never finished
      for (let i = 0; i < 2; i++) {
        const gc = await rawRequest(`${base}/v1/admin/gc`, 'POST', { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ grace_seconds: 0, upload_ttl_seconds: 0 })));
        assert.equal(gc.status, 200, `gc: ${gc.status} ${gc.body.toString()}`);
      }
      const garbage = await checkNoGarbage(dataDir, driver);
      tally.checks += garbage.objects + 1;
      tally.violations.push(...garbage.violations.slice(0, 20).map((v) => `after gc: ${v}`));
      const report = await checkDataDir(dataDir, s3Chunks(driver));
      tally.checks += report.checks;
      for (const v of report.violations) tally.violations.push(`after gc: ${v}`);
      const seen = await listedIn(base, DIRECT_MODELS);
      for (const [k, p] of attempted) {
        tally.checks++;
        if (!seen.has(k)) tally.violations.push(`final: ${k} is not listed`);
        else await verifyVersion(base, asPush(p), tally, true, 'final');
      }
      if (seen.has(key(givenUp))) await verifyVersion(base, asPush(givenUp), tally, true, 'final, given up');

      const line =
        `direct-push crash harness: ${counts.serverKills} server and ${counts.cliKills} CLI SIGKILLs during pushes (${counts.withStaged} with chunks in staging; ${counts.throughRestart} CLIs carried on through the server's restart), ` +
        `${attempted.size} pushes (${counts.beforeKill} ended before their kill; the last took ${pushMs} ms), ` +
        `${counts.rerun} re-runs completed (${counts.resumed} files resumed a recorded session; ${counts.abandoned} re-runs from a fresh state dir left the first session to gc), ${counts.rerunExisting} found their version already whole, ` +
        `${counts.directFiles} files uploaded straight to storage; before gc ${before.violations.length} objects were garbage, after gc ${garbage.objects} chunk objects${garbage.violations.length === 0 ? ', all used' : ''}; ${tally.checks} checks, ${tally.violations.length} violations`;
      t.diagnostic(line);
      console.log(`# ${line}`);
      assert.deepEqual(tally.violations, [], `invariant violations:\n${tally.violations.join('\n')}\n--- server log tail:\n${server!.logTail().slice(-3000)}`);
      assert.ok(counts.serverKills + counts.cliKills > 0 && counts.directFiles > 0, 'the kills happened, and the pushes went straight to storage');
      assert.ok(before.violations.length > 0, 'the given-up push left garbage for gc (else the check after gc proves nothing)');
    });
  });
}
