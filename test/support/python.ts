// Python for tests: a venv with the packages a test needs, built once per
// requirement list and cached under the OS temp dir, so real clients and real
// file writers (numpy, joblib, huggingface_hub, transformers, onnxruntime, …)
// can build inputs and talk to the server.
//
// pip's index is configured globally (a local mirror; the public index is
// unreachable, hence --retries 0). Test files run in parallel processes, so
// the build is serialized by a lock directory; a venv counts as built only
// once its marker file exists.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { before, type TestContext } from 'node:test';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** What the derive tests' references need: onnx's checker, ONNX Runtime, and PyTorch/ml_dtypes for bit-exact casts. */
export const DERIVE_PYTHON_PACKAGES = ['numpy', 'onnx', 'onnxruntime', 'ml_dtypes', 'safetensors', 'torch'];
const READY = '.cairn-venv-ready';
const BUILD_TIMEOUT_MS = 20 * 60_000;

export interface PythonEnv {
  /** the venv's python executable */
  python: string;
  /** runs `python -c script args…`; rejects on a non-zero exit, with stderr in the message */
  run(script: string, args?: string[], options?: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
}

function envFor(python: string): PythonEnv {
  return {
    python,
    async run(script, args = [], options = {}) {
      try {
        return await exec(python, ['-c', script, ...args], {
          env: options.env ?? process.env,
          cwd: options.cwd,
          timeout: options.timeoutMs ?? 120_000,
          maxBuffer: 64 << 20,
        });
      } catch (err) {
        throw new Error(`python failed: ${(err as Error).message}`);
      }
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock directory, breaking it when its holder has died. */
async function lock(dir: string): Promise<() => Promise<void>> {
  const lockDir = `${dir}.lock`;
  const started = Date.now();
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      return () => rm(lockDir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''));
    // no pid yet: the holder is between mkdir and writeFile (give it a moment)
    if (holder > 0 && !alive(holder)) await rm(lockDir, { recursive: true, force: true });
    if (Date.now() - started > BUILD_TIMEOUT_MS) throw new Error(`timed out waiting for ${lockDir}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The python of a venv holding `packages` (pip requirement strings), built on
 * first use: `python3 -m venv`, then `pip install --retries 0 <packages>`.
 * Rejects when python3, venv or pip fail.
 */
export async function pythonVenv(packages: readonly string[]): Promise<PythonEnv> {
  const reqs = [...new Set(packages)].sort();
  const key = createHash('sha256').update(reqs.join('\n')).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `cairn-test-venv-${key}`);
  const python = join(dir, 'bin', 'python');
  if (existsSync(join(dir, READY))) return envFor(python);
  const unlock = await lock(dir);
  try {
    if (existsSync(join(dir, READY))) return envFor(python);
    await rm(dir, { recursive: true, force: true }); // a build that died half-way
    await exec('python3', ['-m', 'venv', dir], { timeout: 5 * 60_000 });
    if (reqs.length > 0) {
      await exec(python, ['-m', 'pip', 'install', '--retries', '0', '--disable-pip-version-check', '--no-input', ...reqs], {
        timeout: BUILD_TIMEOUT_MS,
        maxBuffer: 64 << 20,
      });
    }
    await writeFile(join(dir, READY), `${reqs.join('\n')}\n`);
    return envFor(python);
  } catch (err) {
    // execFile's message carries the command's stderr
    throw new Error(`could not build a Python venv with ${reqs.join(' ') || 'no packages'} in ${dir}: ${(err as Error).message}`);
  } finally {
    await unlock();
  }
}

/**
 * Registers a `before` hook building the venv for the tests of the enclosing
 * suite. `get(t)` returns it; when it could not be built, outside CI the test
 * is skipped (the reason shown), while in CI (env CI set) the hook itself
 * fails, so a missing Python never passes silently there.
 */
export function usePythonVenv(packages: readonly string[]): { get(t: TestContext): PythonEnv | undefined } {
  let env: PythonEnv | undefined;
  let failure: string | undefined;
  before(async () => {
    try {
      env = await pythonVenv(packages);
    } catch (err) {
      if (process.env.CI) throw err;
      failure = (err as Error).message;
    }
  }, { timeout: BUILD_TIMEOUT_MS });
  return {
    get(t) {
      if (env) return env;
      t.skip(`no Python venv: ${(failure ?? 'not built').slice(0, 600)}`);
      return undefined;
    },
  };
}

/** The venv, or why there is none: outside CI a reason to skip, in CI a failure. */
export async function pythonEnv(packages: readonly string[]): Promise<PythonEnv | { skip: string }> {
  try {
    return await pythonVenv(packages);
  } catch (err) {
    if (process.env.CI) throw err;
    return { skip: (err as Error).message };
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
      else reject(new Error(`${basename(script)} exited with ${code}: ${Buffer.concat(err).toString('utf8').slice(-4000)}`));
    });
    child.stdin.end(input);
  });
}
