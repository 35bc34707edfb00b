// A cached Python venv for the derive tests' references (onnx, onnxruntime,
// numpy, torch, ml_dtypes, safetensors), made once per package list under the
// temp directory and reused by later runs. pip reads the machine's configured
// mirror; `--retries 0` fails fast when a package is not there.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DERIVE_PYTHON_PACKAGES = ['numpy', 'onnx', 'onnxruntime', 'ml_dtypes', 'safetensors', 'torch'];

/** The venv's python executable, creating the venv (minutes, once) when it does not exist. Only `bin/python` is used after the rename (pip's script holds the old path). */
export function derivePython(packages = DERIVE_PYTHON_PACKAGES): string {
  const key = createHash('sha256').update([...packages].sort().join(' ')).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `cairn-test-venv-${key}`);
  const python = path.join(dir, 'bin', 'python');
  if (fs.existsSync(path.join(dir, '.ready'))) return python;
  const building = `${dir}.${process.pid}`;
  fs.rmSync(building, { recursive: true, force: true });
  execFileSync('python3', ['-m', 'venv', building], { stdio: 'pipe' });
  execFileSync(path.join(building, 'bin', 'pip'), ['install', '--quiet', '--retries', '0', ...packages], { stdio: 'pipe', timeout: 20 * 60_000 });
  fs.writeFileSync(path.join(building, '.ready'), `${packages.join(' ')}\n`);
  try {
    fs.renameSync(building, dir);
  } catch {
    fs.rmSync(building, { recursive: true, force: true }); // another process finished first: use its venv
  }
  return python;
}

/** Runs `script` (Python source) with `args`; returns stdout. Throws with stderr on failure. */
export function runPython(python: string, script: string, args: string[] = [], timeoutMs = 10 * 60_000): string {
  try {
    return execFileSync(python, ['-c', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`python failed: ${e.stderr || e.message}`);
  }
}
