// Memory measured from outside the process that does the work: the kernel's
// figures for another process (/proc/<pid>/status: VmRSS now, VmHWM the peak
// since it was last reset), never this process's memoryUsage(), which counts
// the test's own buffers and whatever the collector has not yet freed.
//
// A streaming claim is checked by comparing two input sizes: the peak for 4×
// the bytes may exceed the peak for 1× by a fraction of the difference only.
// Holding the whole input (or output) fails that; a collector that runs late
// by a fixed amount, or a machine under load, does not.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MiB = 1024 * 1024;
// The work runs as the server runs it (bin/cairn.js, npm start): a small young
// generation and glibc unmapping freed large buffers. Without them the peak
// also holds up to ~40 MiB of garbage not yet collected, which varies with load.
const SERVER_NODE_ARGS = ['--max-semi-space-size=2'];
const SERVER_ENV = { MALLOC_MMAP_THRESHOLD_: '1048576' };
const RUNNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child-work.ts');

/** A field of /proc/<pid>/status in KiB (VmRSS, VmHWM, …). */
export function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Resets the process's peak (VmHWM) to its current RSS; false where the kernel does not allow it. */
export function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface ChildRun<R> {
  result: R;
  /** the child's RSS once it had loaded the module, just before the work */
  startMiB: number;
  /** the child's peak RSS while it ran the work (VmHWM, reset just before) */
  peakMiB: number;
  /** its RSS when the work was done */
  rssMiB: number;
}

/**
 * Runs `fn(...args)`, exported by `module` (a path or URL; TypeScript is fine), in
 * a child node process (with the server's runtime flags unless `nodeArgs` and
 * `env` say otherwise) and measures it from here: once the child has loaded
 * the module its peak is reset, then it runs the work, and its peak is read
 * while it waits to be let go. `args` and the result travel as JSON.
 */
export async function runInChild<R>(module: string | URL, fn: string, args: unknown[] = [], options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; timeoutMs?: number } = {}): Promise<ChildRun<R>> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? SERVER_NODE_ARGS), '--import', 'tsx', RUNNER, module instanceof URL ? module.href : pathToFileURL(path.resolve(module)).href, fn], {
    env: { ...SERVER_ENV, ...(options.env ?? process.env) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
  try {
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (expect: string): Promise<string> => {
      let { value, done } = await lines.next();
      while (!done && !value.startsWith('child-work:')) ({ value, done } = await lines.next()); // the work's own output
      if (done || !value.startsWith(`child-work:${expect}`)) throw new Error(`child-work: expected "${expect}", got ${done ? 'the end' : JSON.stringify(value.slice(0, 200))} (exit ${done ? await exited : 'running'}):\n${stderr}`);
      return value.slice(`child-work:${expect}`.length);
    };
    await next('ready');
    assert.ok(resetPeak(child.pid!), `cannot reset the peak RSS of process ${child.pid} (/proc/<pid>/clear_refs)`);
    const startMiB = statusKiB(child.pid!, 'VmRSS') / 1024;
    child.stdin.write(`${JSON.stringify(args)}\n`);
    const result = JSON.parse(await next('done ')) as R;
    const run = { result, startMiB, peakMiB: statusKiB(child.pid!, 'VmHWM') / 1024, rssMiB: statusKiB(child.pid!, 'VmRSS') / 1024 };
    child.stdin.end();
    assert.equal(await exited, 0, stderr);
    return run;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/**
 * Asserts that work over `large.bytes` peaks at most `fraction` of the extra
 * bytes above the same work over `small.bytes` (the two runs' peaks as
 * runInChild measures them). Returns a line for the test's diagnostics.
 */
export function assertPeakGrowsSlowly(what: string, small: { bytes: number; peakMiB: number }, large: { bytes: number; peakMiB: number }, fraction = 0.25): string {
  const extraMiB = (large.bytes - small.bytes) / MiB;
  const grewMiB = large.peakMiB - small.peakMiB;
  const line = `${what}: peak ${small.peakMiB.toFixed(0)} MiB for ${(small.bytes / MiB).toFixed(0)} MiB, ${large.peakMiB.toFixed(0)} MiB for ${(large.bytes / MiB).toFixed(0)} MiB (+${grewMiB.toFixed(1)} MiB for +${extraMiB.toFixed(0)} MiB; at most ${(fraction * extraMiB).toFixed(0)})`;
  assert.ok(large.bytes >= 2 * small.bytes, 'compare sizes far apart');
  assert.ok(grewMiB < fraction * extraMiB, line);
  return line;
}

/** Asserts that the child's peak stayed less than `limitMiB` above its RSS before the work; the growth in MiB. */
export function assertPeakGrowthBelow(run: ChildRun<unknown>, limitMiB: number, what: string): number {
  const grewMiB = run.peakMiB - run.startMiB;
  assert.ok(grewMiB < limitMiB, `${what}: the process grew by ${grewMiB.toFixed(0)} MiB (from ${run.startMiB.toFixed(0)} MiB; at most ${limitMiB})`);
  return grewMiB;
}
