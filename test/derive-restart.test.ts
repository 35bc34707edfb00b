// Derive jobs across crashes: the real `cairn serve` as a child process,
// SIGKILLed while a job is transforming. No version is visible after the
// kill (the database says so, read directly while the server is down); at
// the next start the job runs again from scratch and publishes a whole,
// correct version. A job cut short MAX_ATTEMPTS times is failed with the
// reason instead of being run forever.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_ATTEMPTS } from '../src/registry/derive.ts';
import { spawnServer, type ChildServer } from './support/child-server.ts';
import { floatSafetensors, waitForJob } from './support/derive-jobs.ts';
import { call, publishForm, sleep } from './support/http-client.ts';

/** 2 × 1024 × 4096 F32 (32 MiB): pruning and storing it takes seconds, time enough to kill the server mid-way. */
const WEIGHTS = floatSafetensors([0, 1].map((i) => ({ name: `layers.${i}.weight`, shape: [1024, 4096], seed: 10 + i })));

interface JobState {
  state: string;
  attempts: number;
  versions: number;
}

/** The job and the derived version as the database has them (the server is down). */
function inDatabase(dataDir: string, jobId: string, model: string, version: string): JobState {
  const db = new Database(path.join(dataDir, 'registry.db'), { readonly: true });
  try {
    const job = db.prepare('SELECT state, attempts FROM jobs WHERE id = ?').get(jobId) as { state: string; attempts: number };
    const versions = (db.prepare('SELECT count(*) AS n FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ? AND v.version = ?').get(model, version) as { n: number }).n;
    return { ...job, versions };
  } finally {
    db.close();
  }
}

/** Waits until the job is transforming (some output written, not all), then SIGKILLs the server (or stops it with SIGTERM). */
async function killMidJob(server: ChildServer, jobId: string, how: 'kill' | 'stop' = 'kill'): Promise<any> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const job = (await call(server.url, 'GET', `/v1/jobs/${jobId}`)).body;
    if (job.state === 'running' && job.progress.bytes > 0 && job.progress.bytes < job.progress.total) {
      await (how === 'kill' ? server.kill() : server.stop());
      return job;
    }
    assert.ok(job.state === 'queued' || job.state === 'running', `the job ended before it could be killed: ${JSON.stringify(job)}`);
    if (Date.now() > deadline) throw new Error(`job never got under way: ${JSON.stringify(job)}`);
    await sleep(20);
  }
}

describe('derive jobs survive SIGKILL', () => {
  let dataDir: string;
  let server: ChildServer | undefined;
  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-derive-kill-'));
    server = await spawnServer({ dataDir });
    const pub = await publishForm(server.url, 'big', { version: '1' }, [{ path: 'weights.safetensors', data: WEIGHTS }, { path: 'config.json', data: Buffer.from('{"layers":4}') }]);
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('killed mid-job: no version is visible; after the restart the job runs again and publishes the whole version', async () => {
    const res = await call(server!.url, 'POST', '/v1/models/big/versions/1/derive', { op: 'prune', params: { sparsity: 0.5 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const seen = await killMidJob(server!, res.body.id);
    const down = inDatabase(dataDir, res.body.id, 'big', '1-prune50');
    assert.deepEqual(down, { state: 'running', attempts: 1, versions: 0 }, `killed at ${seen.progress.bytes}/${seen.progress.total} (${seen.progress.phase}): nothing published`);

    server = await spawnServer({ dataDir });
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.attempts, 2, 'run again from scratch');
    const doc = (await call(server.url, 'GET', '/v1/models/big/versions/1-prune50')).body;
    assert.deepEqual(doc.files.map((f: any) => f.path).sort(), ['config.json', 'weights.safetensors']);
    const recipe = doc.parents[0].recipe;
    assert.ok(recipe.results.files[0].transform.min_sparsity >= 0.499, JSON.stringify(recipe.results.files[0].transform));
    // the bytes are whole: every tensor half zeros, the file's digest is what it serves
    const bytes = Buffer.from(await (await fetch(`${server.url}/v1/models/big/versions/1-prune50/files/weights.safetensors`)).arrayBuffer());
    assert.equal(bytes.length, doc.files.find((f: any) => f.path === 'weights.safetensors').size);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: [number, number] }>;
    for (const [name, t] of Object.entries(header)) {
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + n + t.data_offsets[0], bytes.byteOffset + 8 + n + t.data_offsets[1]));
      let zeros = 0;
      for (const v of values) if (v === 0) zeros++;
      assert.ok(zeros / values.length >= 0.499, `${name}: ${zeros / values.length}`);
    }
    // and asking for it again is the same version
    const again = await call(server.url, 'POST', '/v1/models/big/versions/1/derive', { op: 'prune', params: { sparsity: 0.5 } });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, res.body.id);
  });

  test('a graceful stop (SIGTERM) mid-job puts the job back in the queue without counting the run', async () => {
    const res = await call(server!.url, 'POST', '/v1/models/big/versions/1/derive', { op: 'prune', params: { sparsity: 0.6 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await killMidJob(server!, res.body.id, 'stop');
    assert.equal(server!.proc.signalCode ?? server!.proc.exitCode, 0, `a clean exit:\n${server!.logTail()}`);
    assert.deepEqual(inDatabase(dataDir, res.body.id, 'big', '1-prune60'), { state: 'queued', attempts: 0, versions: 0 });
    server = await spawnServer({ dataDir });
    const job = await waitForJob(server.url, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.attempts, 1);
  });

  test(`a job cut short ${MAX_ATTEMPTS} times is failed with the reason, not run again`, async () => {
    const res = await call(server!.url, 'POST', '/v1/models/big/versions/1/derive', { op: 'prune', params: { sparsity: 0.75 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      await killMidJob(server!, res.body.id);
      assert.deepEqual(inDatabase(dataDir, res.body.id, 'big', '1-prune75'), { state: 'running', attempts: attempt, versions: 0 });
      server = await spawnServer({ dataDir });
    }
    const job = (await call(server!.url, 'GET', `/v1/jobs/${res.body.id}`)).body;
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'INTERRUPTED');
    assert.match(job.error.message, new RegExp(`the server stopped while this job ran, ${MAX_ATTEMPTS} times`));
    assert.equal((await call(server!.url, 'GET', '/v1/models/big/versions/1-prune75')).status, 404);
    // a new request makes a new job, which runs
    const fresh = await call(server!.url, 'POST', '/v1/models/big/versions/1/derive', { op: 'prune', params: { sparsity: 0.75 } });
    assert.equal(fresh.status, 202);
    assert.notEqual(fresh.body.id, res.body.id);
    assert.equal((await waitForJob(server!.url, fresh.body.id)).state, 'succeeded');
  });
});
