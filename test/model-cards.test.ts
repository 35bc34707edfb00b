// A model's description and card (PATCH /v1/models/{name}, `cairn describe`),
// aliases given at publish as history events and commits, the model list's
// facts (production version, format, size, unsafe marker, total, sort), and
// GET /v1/whoami — through a real server with auth on, git and the CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { cairnBin } from './support/build.ts';
import { MALICIOUS } from './support/fixtures-pickle-zip.ts';
import { validSafetensors } from './support/fixtures-safetensors-gguf.ts';
import { assertError, call, publishForm } from './support/http-client.ts';
import { waitFor } from './support/wait-for.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const run = promisify(execFile);

describe('model cards, alias events at publish, the model list, whoami', () => {
  let srv: TestServer;
  let admin: string;
  let reader: string;
  let writer: string;
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const st = validSafetensors().bytes;

  /** Waits until git has every event of `name` (each has its commit id from the start); returns them newest first. */
  async function mirrored(name: string): Promise<any[]> {
    await waitFor(`the git mirror to write every event of ${name}`, async () => {
      await srv.cairn.mirror.kick();
      return srv.cairn.mirror.status().pending === 0;
    }, 20_000, 50);
    const res = await call(srv.url, 'GET', `/v1/models/${name}/history?limit=100`, undefined, auth(admin));
    return res.body.events;
  }
  const git = async (...args: string[]) => (await run('git', ['--git-dir', srv.cairn.mirror.gitdir, ...args])).stdout;

  before(async () => {
    srv = await startTestServer('fs', { auth: true });
    admin = (await fs.readFile(path.join(srv.dataDir, 'admin-token'), 'utf8')).trim();
    const token = async (name: string, scopes: string[], models?: string[]) => {
      const res = await call(srv.url, 'POST', '/v1/tokens', { name, scopes, models }, auth(admin));
      assert.equal(res.status, 201);
      return res.body.token as string;
    };
    reader = await token('reader', ['read']);
    writer = await token('team-writer', ['write'], ['team/*']);
  });
  after(async () => {
    await srv?.stop();
  });

  test('PATCH sets the description and card: one describe event, one commit writing model.json and README.md; no change, no event', async () => {
    assert.equal((await publishForm(srv.url, 'team/bert', { version: '1.0' }, [{ path: 'model.safetensors', data: st }], { headers: auth(admin) })).status, 201);
    const card = '# BERT\n\nA **tiny** encoder.\n';
    const res = await call(srv.url, 'PATCH', '/v1/models/team/bert', { description: '  A tiny encoder for tests  ', readme: card }, auth(writer));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.description, 'A tiny encoder for tests');
    assert.equal(res.body.readme, card);
    assert.equal((await call(srv.url, 'GET', '/v1/models/team/bert', undefined, auth(reader))).body.readme, card);

    // the same again: nothing to record
    assert.equal((await call(srv.url, 'PATCH', '/v1/models/team/bert', { description: 'A tiny encoder for tests' }, auth(writer))).status, 200);
    const events = await mirrored('team/bert');
    assert.deepEqual(events.map((e) => [e.event, e.subject, e.author]), [
      ['describe', 'describe team/bert', 'team-writer'],
      ['publish', 'publish team/bert@1.0', 'admin'],
    ]);
    const commit = events[0].commit;
    assert.equal((await git('show', '-s', '--format=%s|%an', commit)).trim(), 'describe team/bert|team-writer');
    assert.deepEqual((await git('show', '--name-only', '--format=', commit)).trim().split('\n').sort(), ['models/team/bert/README.md', 'models/team/bert/model.json']);
    assert.equal(await git('show', `${commit}:models/team/bert/README.md`), card);
    assert.equal(JSON.parse(await git('show', `${commit}:models/team/bert/model.json`)).description, 'A tiny encoder for tests');

    // searching finds it by its description; removing the card removes the file
    const found = await call(srv.url, 'GET', '/v1/models?q=encoder', undefined, auth(reader));
    assert.deepEqual(found.body.models.map((m: any) => m.name), ['team/bert']);
    assert.equal((await call(srv.url, 'PATCH', '/v1/models/team/bert', { readme: '' }, auth(writer))).body.readme, '');
    const last = (await mirrored('team/bert'))[0];
    assert.equal(last.event, 'describe');
    assert.deepEqual((await git('show', '--name-status', '--format=', last.commit)).trim().split('\n'), ['D\tmodels/team/bert/README.md']);
  });

  test('PATCH refuses what it cannot store, and tokens without write on the model', async () => {
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/bert', {}, auth(admin)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/bert', { description: 7 }, auth(admin)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/bert', { description: 'x'.repeat(2049) }, auth(admin)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/bert', { description: 'a\u0007b' }, auth(admin)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/bert', { readme: 'x'.repeat(256 * 1024 + 1) }, auth(admin)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/nope', { description: 'x' }, auth(admin)), 404, 'MODEL_NOT_FOUND');
    assertError(await call(srv.url, 'PATCH', '/v1/models/team/bert', { description: 'x' }, auth(reader)), 403, 'FORBIDDEN');
    assert.equal((await publishForm(srv.url, 'other', { version: '1' }, [{ path: 'a.bin', data: Buffer.from('a') }], { headers: auth(admin) })).status, 201);
    assertError(await call(srv.url, 'PATCH', '/v1/models/other', { description: 'x' }, auth(writer)), 403, 'FORBIDDEN');
  });

  test('aliases given at publish are alias events in the history and commits in git, a move says what it was', async () => {
    const publish = (version: string, aliases: string[]) =>
      publishForm(srv.url, 'team/gpt', { version, aliases }, [{ path: 'model.safetensors', data: st }], { headers: auth(writer) });
    assert.equal((await publish('5.0.0', ['production'])).status, 201);
    assert.equal((await publish('5.1.0', ['production', 'staging'])).status, 201);
    const events = await mirrored('team/gpt');
    assert.deepEqual(events.map((e) => [e.event, e.subject, e.message]), [
      ['alias', 'alias team/gpt@staging -> 5.1.0', 'set at publish'],
      ['alias', 'alias team/gpt@production -> 5.1.0', 'set at publish (was 5.0.0)'],
      ['publish', 'publish team/gpt@5.1.0', ''],
      ['alias', 'alias team/gpt@production -> 5.0.0', 'set at publish'],
      ['publish', 'publish team/gpt@5.0.0', ''],
    ]);
    // who put 5.1.0 in production, and when — from git alone
    const log = await git('log', '--format=%s|%an', '--', 'models/team/gpt');
    assert.deepEqual(log.trim().split('\n'), [
      'alias team/gpt@staging -> 5.1.0|team-writer',
      'alias team/gpt@production -> 5.1.0|team-writer',
      'publish team/gpt@5.1.0|team-writer',
      'alias team/gpt@production -> 5.0.0|team-writer',
      'publish team/gpt@5.0.0|team-writer',
    ]);
    // the publish writes model.json as it was (5.0.0 in production), the alias commit moves it
    const published = events.find((e) => e.subject === 'publish team/gpt@5.1.0')!;
    assert.deepEqual(JSON.parse(await git('show', `${published.commit}:models/team/gpt/model.json`)).aliases, { production: '5.0.0' });
  });

  test('the model list: production version, latest formats, size and safety, the unsafe marker, total, sort by update', async () => {
    const pickle = MALICIOUS['GLOBAL os.system (protocol 0)']!.bytes;
    assert.equal((await publishForm(srv.url, 'risky', { version: '1' }, [{ path: 'model.pkl', data: pickle }], { headers: auth(admin) })).status, 201);
    assert.equal((await publishForm(srv.url, 'risky', { version: '2' }, [{ path: 'model.safetensors', data: st }], { headers: auth(admin) })).status, 201);
    const list = await call(srv.url, 'GET', '/v1/models', undefined, auth(reader));
    assert.equal(list.status, 200);
    assert.equal(list.body.total, 4);
    const by = Object.fromEntries(list.body.models.map((m: any) => [m.name, m]));
    assert.equal(by['team/gpt'].production_version, '5.1.0');
    assert.deepEqual(by['team/gpt'].latest, { formats: ['safetensors'], framework: 'safetensors', size: st.length, safety: 'safe' });
    assert.equal(by['team/gpt'].unsafe, false);
    assert.equal(by['risky'].unsafe, true, 'an older version runs code when loaded');
    assert.equal(by['risky'].latest.safety, 'safe');
    assert.equal(by['other'].latest.formats[0], 'unknown');

    // a token limited to team/* counts only those
    const team = await call(srv.url, 'GET', '/v1/models?unsafe=false', undefined, auth(writer));
    assert.deepEqual([team.body.total, team.body.models.map((m: any) => m.name)], [2, ['team/bert', 'team/gpt']]);

    // most recently changed first, page by page, the cursor bound to the order
    const first = await call(srv.url, 'GET', '/v1/models?sort=updated&limit=3', undefined, auth(reader));
    assert.deepEqual(first.body.models.map((m: any) => m.name), ['risky', 'team/gpt', 'other']);
    assert.equal(first.body.total, 4);
    const second = await call(srv.url, 'GET', `/v1/models?sort=updated&limit=3&cursor=${first.body.next_cursor}`, undefined, auth(reader));
    assert.deepEqual([second.body.models.map((m: any) => m.name), second.body.next_cursor], [['team/bert'], null]);
    assertError(await call(srv.url, 'GET', `/v1/models?sort=name&cursor=${first.body.next_cursor}`, undefined, auth(reader)), 400, 'INVALID_ARGUMENT');
    assertError(await call(srv.url, 'GET', '/v1/models?sort=size', undefined, auth(reader)), 400, 'INVALID_ARGUMENT');
  });

  test('GET /v1/whoami: the token, its scopes and patterns; 401 without one', async () => {
    assert.deepEqual((await call(srv.url, 'GET', '/v1/whoami', undefined, auth(writer))).body, { name: 'team-writer', scope: 'write', scopes: ['read', 'write'], models: ['team/*'], auth: true });
    assert.equal((await call(srv.url, 'GET', '/v1/whoami', undefined, auth(admin))).body.scope, 'admin');
    assertError(await call(srv.url, 'GET', '/v1/whoami'), 401, 'UNAUTHORIZED');
  });

  test('cairn describe: sets the description and the card from a file, prints them, removes the card', async () => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-describe-'));
    const cli = async (...args: string[]) => {
      try {
        const { stdout } = await run(process.execPath, [cairnBin(), ...args], { cwd: work, env: { ...process.env, CAIRN_URL: srv.url, CAIRN_TOKEN: writer } });
        return { code: 0, stdout };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout + e.stderr };
      }
    };
    await fs.writeFile(path.join(work, 'card.md'), '# GPT\n\nSmall.\n');
    const set = await cli('describe', 'team/gpt', 'A small decoder', '--readme', 'card.md', '--json');
    assert.equal(set.code, 0, set.stdout);
    assert.deepEqual(JSON.parse(set.stdout), { name: 'team/gpt', description: 'A small decoder', readme: '# GPT\n\nSmall.\n' });
    const shown = await cli('describe', 'team/gpt');
    assert.match(shown.stdout, /^team\/gpt: A small decoder\ncard: 14 bytes of Markdown$/m);
    assert.equal(JSON.parse((await cli('describe', 'team/gpt', '--no-readme', '--json')).stdout).readme, '');
    assert.equal((await cli('describe', 'team/gpt', '--readme', 'missing.md')).code, 2);
    assert.equal((await cli('describe', 'other', 'nope')).code, 1, 'no write on other');
    const ls = (await run(process.execPath, [cairnBin(), 'ls'], { env: { ...process.env, CAIRN_URL: srv.url, CAIRN_TOKEN: admin } })).stdout;
    assert.match(ls, /^team\/gpt\s+5\.1\.0\s+2\s+5\.1\.0\s/m);
    assert.match(ls, /^risky\s.*UNSAFE$/m);
    await fs.rm(work, { recursive: true, force: true });
  });
});
