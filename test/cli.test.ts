// The `cairn` command line, end to end: the real bin as a child process
// against a real server (fs, and S3 when configured), plus small fake servers
// for what a real one never does (tampered bytes, hostile paths).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, storageKinds, type TestServer } from './support/server.ts';
import { cairnBin } from './support/build.ts';
import { filePath } from './support/http-client.ts';
import { waitFor } from './support/wait-for.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment for a CLI process: nothing CAIRN_* from outside, plus `extra`. */
function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CAIRN_') && !k.startsWith('XDG_')) env[k] = v;
  return { ...env, ...extra };
}

function spawnCairn(args: string[], env: Record<string, string>, cwd: string): ChildProcess & { done: Promise<Run>; stdoutSoFar(): string } {
  const child = spawn(process.execPath, [cairnBin(), ...args], { env: cliEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return Object.assign(child, { done, stdoutSoFar: () => stdout });
}

function cairn(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return spawnCairn(args, env, cwd).done;
}

/** Runs a command with --json and expects exit 0 and one JSON document on stdout. */
async function cairnJson<T = any>(args: string[], env: Record<string, string>, cwd: string): Promise<T> {
  const run = await cairn([...args, '--json'], env, cwd);
  assert.equal(run.code, 0, `cairn ${args.join(' ')} failed (${run.code}): ${run.stderr}${run.stdout}`);
  assert.equal(run.stderr, '', 'no progress or chatter on stderr with --json and no terminal');
  return JSON.parse(run.stdout) as T;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function sha256(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const inner = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, inner)));
    else out.push(inner);
  }
  return out.sort();
}

async function writeFile(root: string, rel: string, data: string | Buffer): Promise<void> {
  const file = path.join(root, ...rel.split('/'));
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, data);
}

/** A throwaway HTTP server answering with `handler`; records every request. */
async function fakeServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

// A model directory with sub-paths, a name that needs URL encoding, an empty file.
const TREE: Record<string, Buffer> = {
  'config.json': Buffer.from('{"hidden_size":64}\n'),
  'weights/model-00001.bin': randomBytes(3 * 1024 * 1024 + 17),
  'weights/model-00002.bin': randomBytes(512 * 1024),
  'tokenizer/vocab.txt': Buffer.from('a\nb\nc\n'),
  'docs/read me #1 ü.md': Buffer.from('# hello\n'),
  'empty.txt': Buffer.alloc(0),
};
const TREE_PATHS = Object.keys(TREE).sort();

for (const storage of storageKinds) {
  describe(`cairn CLI against a real server (${storage})`, () => {
    let server: TestServer;
    let work: string;
    let env: Record<string, string>;
    const model = `cli-${storage}-${randomBytes(3).toString('hex')}`;

    before(async () => {
      server = await startTestServer(storage);
      work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cli-'));
      env = { CAIRN_URL: server.url, XDG_STATE_HOME: path.join(work, 'state') };
      for (const [rel, data] of Object.entries(TREE)) await writeFile(path.join(work, 'model'), rel, data);
    });

    after(async () => {
      await server?.stop();
      if (work) await fs.rm(work, { recursive: true, force: true });
    });

    test('push a directory: sub-paths kept, every file uploaded, --json document', async () => {
      const out = await cairnJson(
        ['push', `${model}@1.0.0`, 'model', '-m', 'first cut', '--alias', 'staging', '--metadata', '{"lr":0.001,"epochs":3}'],
        env,
        work,
      );
      assert.equal(out.published.name, model);
      assert.equal(out.published.version, '1.0.0');
      assert.equal(out.published.number, 1);
      assert.match(out.published.digest, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(out.published.aliases, ['staging']);
      assert.deepEqual(out.published.metadata, { lr: 0.001, epochs: 3 });
      assert.equal(out.published.message, 'first cut');
      assert.deepEqual(out.published.files.map((f: { path: string }) => f.path), TREE_PATHS);
      for (const f of out.published.files) {
        assert.equal(f.digest, sha256(TREE[f.path]!), f.path);
        assert.equal(f.size, TREE[f.path]!.length, f.path);
      }
      assert.deepEqual(out.files.map((f: { status: string }) => f.status), out.files.map(() => 'uploaded'));
      // through the server (fs) the files' bytes; straight into S3 the stored chunk objects (a codec byte each)
      for (const f of out.files as Array<{ path: string; direct: boolean }>) assert.equal(f.direct, storage === 's3', f.path);
      let total = 0;
      for (const [rel, data] of Object.entries(TREE)) {
        if (storage !== 's3' || data.length === 0) {
          total += data.length;
          continue;
        }
        const res = await fetch(`${server.url}${filePath(model, '1.0.0', rel)}/chunks`);
        assert.equal(res.status, 200, rel);
        for (const c of ((await res.json()) as { chunks: Array<{ stored_size: number }> }).chunks) total += c.stored_size;
      }
      assert.equal(out.summary.bytes_sent, total);
      // nothing left in the resume state once finished
      assert.deepEqual(await fs.readdir(path.join(work, 'state', 'cairn', 'uploads')).catch(() => []), []);
    });

    test('show: the version document, as text and as --json', async () => {
      const doc = await cairnJson(['show', `${model}@staging`], env, work);
      assert.equal(doc.version, '1.0.0');
      assert.equal(doc.files.length, TREE_PATHS.length);
      const text = await cairn(['show', `${model}@1.0.0`], env, work);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`${model}@1\\.0\\.0`));
      assert.match(text.stdout, new RegExp(doc.digest));
      assert.match(text.stdout, /aliases:\s+staging/);
      assert.match(text.stdout, /weights\/model-00001\.bin\s+3\.00 MiB\s+sha256:[0-9a-f]{64}/);
      assert.match(text.stdout, /"lr": 0\.001/);
      assert.match(text.stdout, /by anonymous/);
    });

    test('ls: models (with --q, following pages) and the versions of one model', async () => {
      const models = await cairnJson<{ models: Array<{ name: string; latest_version: string }> }>(['ls'], env, work);
      assert.deepEqual(
        models.models.map((m) => [m.name, m.latest_version]),
        [[model, '1.0.0']],
      );
      const filtered = await cairnJson<{ models: unknown[] }>(['ls', '--q', 'no-such-model'], env, work);
      assert.deepEqual(filtered.models, []);
      const versions = await cairnJson<{ versions: Array<{ version: string; aliases: string[] }> }>(['ls', model], env, work);
      assert.deepEqual(versions.versions.map((v) => [v.version, v.aliases]), [['1.0.0', ['staging']]]);
      const text = await cairn(['ls', model], env, work);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^VERSION\s+#\s+SIZE/m);
      assert.match(text.stdout, /^1\.0\.0\s+1\s+.*staging\s+first cut$/m);
    });

    test('pull into a fresh directory: byte-identical; a second pull skips what is present', async () => {
      const out = await cairnJson(['pull', `${model}@staging`], env, work);
      const dir = path.join(work, `${model}-1.0.0`); // the default directory
      assert.equal(out.directory, await fs.realpath(dir));
      assert.deepEqual(await listFiles(dir), TREE_PATHS);
      for (const rel of TREE_PATHS) assert.ok((await fs.readFile(path.join(dir, ...rel.split('/')))).equals(TREE[rel]!), rel);
      assert.ok(out.files.every((f: { status: string }) => f.status === 'downloaded'));

      // one file damaged locally: only that one is fetched again
      await fs.writeFile(path.join(dir, 'config.json'), 'garbage');
      const again = await cairnJson(['pull', `${model}@1.0.0`, '-o', dir], env, work);
      const fetched = again.files.filter((f: { status: string }) => f.status === 'downloaded').map((f: { path: string }) => f.path);
      assert.deepEqual(fetched, ['config.json']);
      assert.ok((await fs.readFile(path.join(dir, 'config.json'))).equals(TREE['config.json']!));
      assert.deepEqual(await listFiles(dir), TREE_PATHS, 'no temp files left behind');
    });

    test('a second push of the same content uploads nothing', async () => {
      const out = await cairnJson(['push', `${model}@1.0.1`, 'model'], env, work);
      assert.equal(out.published.version, '1.0.1');
      assert.equal(out.summary.bytes_sent, 0);
      assert.equal(out.summary.skipped, TREE_PATHS.length);
      assert.ok(out.files.every((f: { status: string; bytes_sent: number }) => f.status === 'skipped' && f.bytes_sent === 0));
      // path=file chooses the path; same bytes under a new name are still not sent
      const renamed = await cairnJson(['push', `${model}@1.0.2`, 'w/renamed.bin=model/weights/model-00002.bin', 'model/config.json'], env, work);
      assert.deepEqual(renamed.published.files.map((f: { path: string }) => f.path), ['config.json', 'w/renamed.bin']);
      assert.equal(renamed.summary.bytes_sent, 0);
      // publishing an existing version fails before anything is uploaded
      const dup = await cairn(['push', `${model}@1.0.1`, 'model'], env, work);
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /^cairn: .*already exists.* \(VERSION_EXISTS\)$/m);
    });

    test('push: names written in NFD on disk are published in NFC', async () => {
      const nfd = 'cafe\u0301/mode\u0300le.bin';
      await writeFile(path.join(work, 'nfd'), nfd, 'nfd\n');
      const out = await cairnJson(['push', `${model}-nfd@1`, 'nfd'], env, work);
      assert.deepEqual(out.published.files.map((f: { path: string }) => f.path), [nfd.normalize('NFC')]);
      const pulled = await cairnJson(['pull', `${model}-nfd@1`, '-o', 'nfd-out'], env, work);
      assert.equal(pulled.summary.files, 1);
      assert.deepEqual(await listFiles(path.join(work, 'nfd-out')), [nfd.normalize('NFC')]);
    });

    test('alias: set, move, delete', async () => {
      const set = await cairnJson(['alias', model, 'production', '1.0.0'], env, work);
      assert.deepEqual(set, { name: model, alias: 'production', version: '1.0.0', previous: null });
      const moved = await cairn(['alias', model, 'production', '1.0.1'], env, work);
      assert.equal(moved.code, 0, moved.stderr);
      assert.match(moved.stdout, /production -> 1\.0\.1 \(was 1\.0\.0\)/);
      assert.equal((await cairnJson(['show', `${model}@production`], env, work)).version, '1.0.1');
      const versions = await cairnJson<{ versions: Array<{ version: string; aliases: string[] }> }>(['ls', model], env, work);
      assert.deepEqual(versions.versions.find((v) => v.version === '1.0.1')?.aliases, ['production']);

      assert.deepEqual(await cairnJson(['alias', model, 'production', '--delete'], env, work), { name: model, alias: 'production', deleted: true });
      const gone = await cairn(['show', `${model}@production`, '--json'], env, work);
      assert.equal(gone.code, 1);
      assert.equal(JSON.parse(gone.stdout).error.code, 'VERSION_NOT_FOUND');
      assert.match(gone.stderr, /^cairn: .* \(VERSION_NOT_FOUND\)$/m);
      const missing = await cairn(['unalias', model, 'production'], env, work);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /\(ALIAS_NOT_FOUND\)/);
    });

    test('rm: 409 while an alias points at the version, then deleted', async () => {
      const refused = await cairn(['rm', `${model}@1.0.0`, '--json'], env, work);
      assert.equal(refused.code, 1);
      assert.equal(JSON.parse(refused.stdout).error.code, 'VERSION_HAS_ALIASES');
      assert.match(refused.stderr, /staging.*\(VERSION_HAS_ALIASES\)/);
      assert.equal((await cairn(['unalias', model, 'staging'], env, work)).code, 0);
      assert.deepEqual(await cairnJson(['rm', `${model}@1.0.0`], env, work), { name: model, version: '1.0.0', deleted: true });
      const shown = await cairn(['show', `${model}@1.0.0`], env, work);
      assert.equal(shown.code, 1);
      assert.match(shown.stderr, /\(VERSION_DELETED\)/);
      const versions = await cairnJson<{ versions: Array<{ version: string }> }>(['ls', model], env, work);
      assert.deepEqual(versions.versions.map((v) => v.version), ['1.0.2', '1.0.1']);
    });

    test('an interrupted push resumes from the server offset', async () => {
      const size = 40 * 1024 * 1024 + 123;
      const big = path.join(work, 'big.bin');
      const handle = await fs.open(big, 'w');
      for (let written = 0; written < size; ) {
        const n = Math.min(4 * 1024 * 1024, size - written);
        await handle.write(randomBytes(n));
        written += n;
      }
      await handle.close();
      const digest = await sha256File(big);
      const states = path.join(work, 'state', 'cairn', 'uploads');

      // Through the server (a direct push resumes by chunks: direct-push.test.ts).
      // Small parts and a rate limit, so that progress is observable; killed
      // without warning once the server holds some of the bytes.
      const first = spawnCairn(['push', `${model}@2.0.0`, 'big.bin', '--json', '--limit-rate', '8M', '--via-server'], { ...env, CAIRN_PUSH_PART_SIZE: '1M' }, work);
      const record = await waitFor('the upload state file', async () => {
        const names = await fs.readdir(states).catch(() => []);
        const name = names.find((n) => n.endsWith('.json'));
        return name ? (JSON.parse(await fs.readFile(path.join(states, name), 'utf8')) as { upload_id: string; digest: string }) : undefined;
      });
      assert.equal(record.digest, digest);
      await waitFor('a non-zero server offset', async () => {
        const res = await fetch(`${server.url}/v1/uploads/${record.upload_id}`);
        const doc = (await res.json()) as { offset: number };
        return doc.offset > 0 ? doc.offset : undefined;
      });
      first.kill('SIGKILL');
      const killed = await first.done;
      assert.equal(killed.code, null, 'the first push was killed mid-upload');

      const out = await cairnJson(['push', `${model}@2.0.0`, 'big.bin', '--via-server'], env, work);
      const [file] = out.files;
      assert.equal(file.status, 'uploaded');
      assert.ok(file.resumed_from > 0, `resumed from a non-zero offset (got ${file.resumed_from})`);
      assert.ok(file.resumed_from < size);
      assert.equal(file.resumed_from + file.bytes_sent, size, 'only the missing bytes were sent');
      assert.deepEqual(await fs.readdir(states), [], 'state removed once the upload is finished');

      const pulled = await cairnJson(['pull', `${model}@2.0.0`, '-o', 'big-out'], env, work);
      // through the server: the file's bytes; straight from S3: the stored chunk objects (a codec byte each, the data incompressible)
      if (pulled.summary.from_storage === 0) assert.equal(pulled.summary.bytes_received, size);
      else assert.ok(pulled.summary.bytes_received > size && pulled.summary.bytes_received < size + 1024, String(pulled.summary.bytes_received));
      assert.equal(await sha256File(path.join(work, 'big-out', 'big.bin')), digest);
      await fs.rm(path.join(work, 'big-out'), { recursive: true });
      await fs.rm(big);
    });
  });
}

describe('cairn CLI: usage, connection errors and hostile servers', () => {
  let work: string;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cli-'));
  });

  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  test('help exits 0; no command, an unknown command or a bad option exit 2 with usage', async () => {
    const help = await cairn(['help'], {}, work);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: cairn <command>/);
    for (const cmd of ['push', 'pull', 'ls', 'show', 'alias', 'rm', 'serve']) assert.match(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
    const pushHelp = await cairn(['push', '--help'], {}, work);
    assert.equal(pushHelp.code, 0);
    assert.match(pushHelp.stdout, /--limit-rate/);

    for (const args of [[], ['frobnicate'], ['push', '--no-such-flag'], ['push', 'm'], ['push', 'Bad_Name@1', 'x'], ['pull', 'a@b', 'extra'], ['alias', 'm']]) {
      const run = await cairn(args, { CAIRN_URL: 'http://127.0.0.1:9' }, work);
      assert.equal(run.code, 2, `cairn ${args.join(' ')} → ${run.code}: ${run.stderr}`);
      assert.match(run.stderr, /usage: cairn/);
      assert.equal(run.stdout, '');
    }
  });

  test('connection refused: a clear message naming the URL, exit 1', async () => {
    // a port that was just free
    const probe = await fakeServer(() => undefined);
    await probe.close();
    const run = await cairn(['ls'], { CAIRN_URL: probe.url }, work);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`cannot connect to the Cairn server at ${probe.url.replace(/\./g, '\\.')}.*connection refused.*\\(CONNECTION_FAILED\\)`));
    const json = await cairn(['ls', '--json', '--url', probe.url], { CAIRN_URL: 'http://127.0.0.1:9' }, work);
    assert.equal(JSON.parse(json.stdout).error.code, 'CONNECTION_FAILED');
  });

  test('--url overrides CAIRN_URL; CAIRN_TOKEN is sent as a bearer token; ls follows next_cursor', async () => {
    const fake = await fakeServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname !== '/v1/models') return sendJson(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: 'no' } });
      const page = url.searchParams.get('cursor') === 'p2' ? { models: [{ name: 'b', latest_version: '2', versions: 1 }], next_cursor: null } : { models: [{ name: 'a', latest_version: '1', versions: 1 }], next_cursor: 'p2' };
      sendJson(res, 200, page);
    });
    try {
      const out = await cairnJson<{ models: Array<{ name: string }> }>(['--url', fake.url, 'ls', '--q', 'x'], { CAIRN_URL: 'http://127.0.0.1:9', CAIRN_TOKEN: 's3cret' }, work);
      assert.deepEqual(out.models.map((m) => m.name), ['a', 'b']);
      assert.equal(fake.requests.length, 2);
      for (const r of fake.requests) {
        assert.equal(r.headers.authorization, 'Bearer s3cret');
        assert.equal(new URL(r.url, 'http://x').searchParams.get('q'), 'x');
      }
    } finally {
      await fake.close();
    }
  });

  test('pull with tampered bytes: exit 1, nothing under the final name, files pinned by manifest digest', async () => {
    const good = Buffer.from('all good\n');
    const manifest = `sha256:${'ab'.repeat(32)}`;
    const doc = {
      name: 'fake',
      version: '1.0',
      number: 1,
      digest: manifest,
      size: good.length + 5,
      created_at: new Date().toISOString(),
      created_by: 'x',
      message: '',
      aliases: ['prod'],
      parents: [],
      metadata: {},
      files: [
        { path: 'a/good.txt', size: good.length, digest: sha256(good) },
        { path: 'b/bad.bin', size: 5, digest: sha256('hello') },
      ],
    };
    const fake = await fakeServer((req, res) => {
      if (req.url === '/v1/models/fake/versions/prod') return sendJson(res, 200, doc);
      if (req.url === `/v1/models/fake/versions/${encodeURIComponent(manifest)}/files/a/good.txt`) return void res.end(good);
      if (req.url === `/v1/models/fake/versions/${encodeURIComponent(manifest)}/files/b/bad.bin`) return void res.end('hellx'); // right size, wrong bytes
      sendJson(res, 404, { error: { code: 'FILE_NOT_FOUND', message: `no ${req.url}` } });
    });
    try {
      const run = await cairn(['pull', 'fake@prod', '-o', 'tampered', '--json'], { CAIRN_URL: fake.url }, work);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(JSON.parse(run.stdout).error.code, 'DIGEST_MISMATCH');
      assert.match(run.stderr, /b\/bad\.bin.*\(DIGEST_MISMATCH\)/);
      const dir = path.join(work, 'tampered');
      assert.deepEqual(await listFiles(dir), ['a/good.txt'], 'no bad file and no temp file left');
      assert.ok(fake.requests.filter((r) => r.url.includes('/files/')).every((r) => r.url.includes(encodeURIComponent(manifest))));
    } finally {
      await fake.close();
    }
  });

  test('pull refuses file paths that would leave the output directory', async () => {
    const body = Buffer.from('escaped\n');
    const fake = await fakeServer((req, res) => {
      if (req.url?.endsWith('/versions/1')) {
        return sendJson(res, 200, {
          name: 'evil', version: '1', number: 1, digest: `sha256:${'cd'.repeat(32)}`, size: body.length, created_at: '', created_by: '', message: '',
          aliases: [], parents: [], metadata: {}, files: [{ path: '../escaped.txt', size: body.length, digest: sha256(body) }],
        });
      }
      res.end(body);
    });
    try {
      const run = await cairn(['pull', 'evil@1', '-o', 'inner/out'], { CAIRN_URL: fake.url }, work);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /\(UNSAFE_PATH\)/);
      await assert.rejects(fs.stat(path.join(work, 'inner', 'escaped.txt')));
      assert.ok(!fake.requests.some((r) => r.url.includes('/files/')), 'nothing was even downloaded');
    } finally {
      await fake.close();
    }
  });

  test('push refuses paths the server would refuse (case, file/directory, NFC/NFD, invisible characters) before sending anything', async () => {
    const fake = await fakeServer((_req, res) => sendJson(res, 500, { error: { code: 'INTERNAL', message: 'nothing should reach the server' } }));
    try {
      await writeFile(path.join(work, 'case'), 'A.bin', 'upper');
      await writeFile(path.join(work, 'case'), 'a.bin', 'lower');
      await writeFile(path.join(work, 'forms'), 'caf\u00e9.bin', 'nfc');
      await writeFile(path.join(work, 'forms'), 'cafe\u0301.bin', 'nfd');
      await writeFile(work, 'one.bin', '1');
      await writeFile(path.join(work, 'hidden'), 'a\u200bb.bin', 'zero-width');
      const cases: Array<[string[], RegExp]> = [
        [['case'], /A\.bin.*a\.bin.*differ only in case/],
        [['forms'], /two files would be stored as café\.bin/],
        [['a=one.bin', 'a/b=one.bin'], /"a" is also the directory of "a\/b"/],
        [['hidden'], /<U\+200B>.*invisible/],
      ];
      for (const [args, message] of cases) {
        const run = await cairn(['push', 'refused@1', ...args], { CAIRN_URL: fake.url }, work);
        assert.equal(run.code, 2, `push ${args.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
      assert.equal(fake.requests.length, 0, 'nothing was sent');
    } finally {
      await fake.close();
    }
  });

  test('push: a PATCH cut off midway is retried from the offset the server reports', async () => {
    // A minimal upload server that keeps every byte it received, and drops
    // the connection during the first PATCH (as a flaky network would).
    let stored = Buffer.alloc(0);
    const patches: Array<{ range: string; received: number }> = [];
    let published: { files: Array<{ path: string; digest: string }> } | undefined;
    const fake = await fakeServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => {
        chunks.push(d);
        if (req.method === 'PATCH') {
          stored = Buffer.concat([stored, d]);
          patches.at(-1)!.received += d.length;
          if (patches.length === 1 && patches[0]!.received >= 300_000) req.socket.destroy();
        }
      });
      if (req.method === 'PATCH') patches.push({ range: String(req.headers['content-range']), received: 0 });
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (req.method === 'HEAD') return void res.writeHead(404).end();
        if (req.method === 'GET' && url.pathname.startsWith('/v1/models/')) return sendJson(res, 404, { error: { code: 'MODEL_NOT_FOUND', message: 'no model' } });
        if (req.method === 'POST' && url.pathname === '/v1/uploads') return sendJson(res, 201, { id: 'u1', offset: 0 });
        if (url.pathname === '/v1/uploads/u1' && (req.method === 'GET' || req.method === 'PATCH')) return sendJson(res, req.method === 'GET' ? 200 : 202, { id: 'u1', offset: stored.length });
        if (req.method === 'PUT' && url.pathname === '/v1/uploads/u1') {
          const digest = sha256(stored);
          if (url.searchParams.get('digest') !== digest) return sendJson(res, 400, { error: { code: 'DIGEST_MISMATCH', message: 'mismatch' } });
          return sendJson(res, 201, { digest, size: stored.length });
        }
        if (req.method === 'POST' && url.pathname === '/v1/models/flaky/versions') {
          published = JSON.parse(body);
          return sendJson(res, 201, { name: 'flaky', version: '1', number: 1, digest: `sha256:${'ef'.repeat(32)}`, size: stored.length, created_at: '', created_by: '', message: '', aliases: [], parents: [], metadata: {}, files: [] });
        }
        sendJson(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: `${req.method} ${req.url}` } });
      });
    });
    try {
      const data = randomBytes(2 * 1024 * 1024 + 5);
      await fs.writeFile(path.join(work, 'flaky.bin'), data);
      const out = await cairnJson(['push', 'flaky@1', 'flaky.bin'], { CAIRN_URL: fake.url, XDG_STATE_HOME: path.join(work, 'state'), CAIRN_PUSH_PART_SIZE: '1M' }, work);
      assert.ok(stored.equals(data), 'the server ends up with exactly the file');
      assert.ok(patches.length >= 3, `parts after the cut were sent (${patches.length} PATCHes)`);
      const cutAt = patches[0]!.received;
      assert.ok(cutAt > 0 && cutAt < 1024 * 1024);
      assert.equal(patches[1]!.range, `bytes ${cutAt}-${cutAt + 1024 * 1024 - 1}/*`, 'resumed from the offset the server holds');
      assert.deepEqual(published?.files, [{ path: 'flaky.bin', digest: sha256(data) }]);
      assert.ok(out.files[0].bytes_sent >= data.length, 'the bytes sent count the part that was cut off');
    } finally {
      await fake.close();
    }
  });

  test('serve still runs the server, and stops on SIGTERM', async () => {
    const dataDir = path.join(work, 'serve-data');
    const child = spawnCairn(['serve'], { CAIRN_PORT: '0', CAIRN_HOST: '127.0.0.1', CAIRN_DATA_DIR: dataDir, CAIRN_AUTH: 'off' }, work);
    try {
      const url = await waitFor('the server to listen', async () => {
        const m = /"msg":"cairn listening"[^\n]*"url":"([^"]+)"/.exec(child.stdoutSoFar());
        return m?.[1];
      });
      const out = await cairnJson<{ models: unknown[] }>(['ls'], { CAIRN_URL: url }, work);
      assert.deepEqual(out.models, []);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal((await child.done).code, 0);
  });
});


describe('cairn CLI with namespaced names (acme/resnet)', () => {
  let server: TestServer;
  let work: string;
  let env: Record<string, string>;

  before(async () => {
    server = await startTestServer('fs', { auth: true });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cli-ns-'));
    const admin = (await fs.readFile(path.join(server.dataDir, 'admin-token'), 'utf8')).trim();
    env = { CAIRN_URL: server.url, CAIRN_TOKEN: admin, XDG_STATE_HOME: path.join(work, 'state') };
    for (const [rel, data] of Object.entries(TREE)) await writeFile(path.join(work, 'model'), rel, data);
  });

  after(async () => {
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test('push, ls, show, log, alias, diff, pull and rm take acme/resnet@<ref>', async () => {
    const first = await cairnJson(['push', 'acme/resnet@1.0.0', 'model', '-a', 'staging'], env, work);
    assert.equal(first.published.name, 'acme/resnet');
    assert.deepEqual(first.published.files.map((f: { path: string }) => f.path), TREE_PATHS);
    const second = await cairnJson(['push', 'acme/resnet@1.1.0', 'model/config.json', 'extra.txt=model/empty.txt'], env, work);
    assert.equal(second.summary.bytes_sent, 0, 'content the server has is not sent again');
    assert.equal((await cairnJson(['push', 'acme@1.0', 'model/config.json'], env, work)).published.name, 'acme');

    const all = await cairnJson<{ models: Array<{ name: string }> }>(['ls'], env, work);
    assert.deepEqual(all.models.map((m) => m.name), ['acme', 'acme/resnet']);
    const ns = await cairnJson<{ models: Array<{ name: string }> }>(['ls', '--namespace', 'acme'], env, work);
    assert.deepEqual(ns.models.map((m) => m.name), ['acme/resnet']);
    const versions = await cairnJson<{ name: string; versions: Array<{ version: string; aliases: string[] }> }>(['ls', 'acme/resnet'], env, work);
    assert.equal(versions.name, 'acme/resnet');
    assert.deepEqual(versions.versions.map((v) => [v.version, v.aliases]), [['1.1.0', []], ['1.0.0', ['staging']]]);
    const table = await cairn(['ls'], env, work);
    assert.match(table.stdout, /^acme\/resnet\s+1\.1\.0\s+2\s/m);

    assert.equal((await cairnJson(['show', 'acme/resnet@staging'], env, work)).version, '1.0.0');
    const shown = await cairn(['show', 'acme/resnet'], env, work);
    assert.match(shown.stdout, /^acme\/resnet@1\.1\.0$/m);

    const set = await cairnJson(['alias', 'acme/resnet', 'production', '1.1.0'], env, work);
    assert.deepEqual(set, { name: 'acme/resnet', alias: 'production', version: '1.1.0', previous: null });
    const main = await cairn(['alias', 'acme/resnet', 'main', '1.0.0'], env, work);
    assert.equal(main.code, 2, 'refused before asking the server');
    assert.match(main.stderr, /'main' is reserved/);

    const diff = await cairnJson(['diff', 'acme/resnet@1.0.0', '1.1.0'], env, work);
    assert.equal(diff.from.name, 'acme/resnet');
    assert.equal(diff.to.version, '1.1.0');
    // extra.txt holds empty.txt's bytes and empty.txt is gone: a rename, found by digest
    assert.equal(diff.summary.added, 0);
    assert.equal(diff.summary.renamed, 1);
    assert.equal(diff.files.find((f: { path: string }) => f.path === 'extra.txt')?.from_path, 'empty.txt');
    const across = await cairnJson(['diff', 'acme@1.0', 'acme/resnet@1.1.0'], env, work);
    assert.deepEqual([across.from.name, across.to.name], ['acme', 'acme/resnet']);

    const pulled = await cairnJson(['pull', 'acme/resnet@1.0.0'], env, work);
    const dir = path.join(work, 'acme', 'resnet-1.0.0'); // the default directory, one per namespace
    assert.equal(pulled.directory, await fs.realpath(dir));
    assert.deepEqual(await listFiles(dir), TREE_PATHS);
    for (const rel of TREE_PATHS) assert.ok((await fs.readFile(path.join(dir, ...rel.split('/')))).equals(TREE[rel]!), rel);

    assert.equal((await cairn(['unalias', 'acme/resnet', 'production'], env, work)).code, 0);
    assert.deepEqual(await cairnJson(['rm', 'acme/resnet@1.1.0'], env, work), { name: 'acme/resnet', version: '1.1.0', deleted: true });
    const log = await cairnJson<{ events: Array<{ subject: string; commit: string | null }> }>(['log', 'acme/resnet'], env, work);
    assert.deepEqual(log.events.map((e) => e.subject), [
      'delete acme/resnet@1.1.0',
      'unalias acme/resnet@production',
      'alias acme/resnet@production -> 1.1.0',
      'publish acme/resnet@1.1.0',
      'alias acme/resnet@staging -> 1.0.0', // given at publish (-a staging): its own event
      'publish acme/resnet@1.0.0',
    ]);
  });

  test('a name with a reserved word, three parts or a bad namespace is a usage error before any request', async () => {
    for (const [args, pattern] of [
      [['push', 'acme/versions@1', 'model/config.json'], /"versions" is a reserved word/],
      [['pull', 'acme/resnet/x@1'], /invalid model name/],
      [['ls', 'tree/x'], /"tree" is a reserved word/],
      [['ls', '--namespace', 'Acme'], /invalid namespace/],
    ] as const) {
      const run = await cairn([...args], env, work);
      assert.equal(run.code, args[1] === '--namespace' ? 1 : 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
    }
  });

  test('a token made for acme/* pushes and lists acme/… only', async () => {
    const created = await cairnJson<{ token: string; models: string[] }>(['token', 'create', 'acme-ci', '--scope', 'write', '--models', 'acme/*'], env, work);
    assert.deepEqual(created.models, ['acme/*']);
    const team = { ...env, CAIRN_TOKEN: created.token };
    assert.equal((await cairnJson(['push', 'acme/vit@0.1', 'model/config.json'], team, work)).published.name, 'acme/vit');
    const refused = await cairn(['push', 'acme@2.0', 'model/config.json'], team, work);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\(FORBIDDEN\)/);
    const seen = await cairnJson<{ models: Array<{ name: string }> }>(['ls'], team, work);
    assert.deepEqual(seen.models.map((m) => m.name), ['acme/resnet', 'acme/vit']);
  });
});
