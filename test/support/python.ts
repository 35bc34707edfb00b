// A Python virtual environment for tests that need real Python packages
// (onnx, onnxruntime, numpy …): made once per package list and reused across
// test files and runs (under the OS temp dir), installed with
// `pip install --retries 0` from pip's configured index (a local mirror on the
// build machines). Without python3 or the packages, tests skip — except in
// CI, where that is a failure.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PythonEnv {
  /** the venv's python executable */
  python: string;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Waits for a lock directory (another test file making the same venv). */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      await fs.mkdir(lock);
      break;
    } catch {
      const st = await fs.stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 10 * 60_000) await fs.rm(lock, { recursive: true, force: true }); // left by a killed run
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

/** The venv with `packages`, or why there is none (a reason to skip). */
export async function pythonEnv(packages: string[]): Promise<PythonEnv | { skip: string }> {
  const key = createHash('sha256').update(packages.join('\n')).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `cairn-test-venv-${key}`);
  const python = path.join(dir, 'bin', 'python');
  const done = path.join(dir, '.installed');
  try {
    if (!(await exists(done))) {
      await withLock(`${dir}.lock`, async () => {
        if (await exists(done)) return;
        await fs.rm(dir, { recursive: true, force: true });
        await run('python3', ['-m', 'venv', dir], { timeout: 120_000 });
        await run(python, ['-m', 'pip', 'install', '--quiet', '--retries', '0', '--disable-pip-version-check', ...packages], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
        await fs.writeFile(done, `${packages.join('\n')}\n`);
      });
    }
    return { python };
  } catch (err) {
    const why = `python venv with ${packages.join(', ')} unavailable: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`;
    if (process.env.CI) throw new Error(`CI: ${why}`);
    return { skip: why };
  }
}

/** Runs `python script args…` with `input` on stdin; its stdout. Fails with stderr on a non-zero exit. */
export function runPython(env: PythonEnv, script: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(env.python, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${path.basename(script)} exited with ${code}: ${Buffer.concat(err).toString('utf8').slice(-4000)}`));
    });
    child.stdin.end(input);
  });
}
