// `cairn …` run in this process (src/cli.ts main) against a test server: its
// exit code and output, or its --json document.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli.ts';

/** Runs `cairn …` in this process; resolves with its exit code and output. */
export async function cairn(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await main(args, { env: { PATH: process.env.PATH, HOME: cwd, ...env }, stdout, stderr, cwd });
  return { code, stdout: out, stderr: err };
}

/** Runs `cairn … --json`, which must exit 0; resolves with its document. */
export async function cairnJson(args: string[], env: Record<string, string>, cwd: string): Promise<any> {
  const run = await cairn([...args, '--json'], env, cwd);
  assert.equal(run.code, 0, `cairn ${args.join(' ')}: ${run.stderr}${run.stdout}`);
  return JSON.parse(run.stdout);
}
