// The `cairn` command as tests run it: bin/cairn.js, which runs the compiled
// dist/ only. `npm test` builds dist/ first; a test file run on its own
// rebuilds it here when a source file is newer than the last build, so no
// test ever runs stale code. Test processes may run side by side: one
// builds at a time (a lock directory), the others wait for it and then find
// dist/ current.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOCK = path.join(os.tmpdir(), `cairn-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`);
/** A build takes ~15 s; a lock older than this was left by a killed process. */
const STALE_LOCK_MS = 5 * 60_000;

export const CAIRN_BIN = path.join(ROOT, 'bin', 'cairn.js');

function builtAt(): number {
  try {
    return fs.statSync(path.join(ROOT, 'dist', '.built')).mtimeMs;
  } catch {
    return 0;
  }
}

function current(): boolean {
  const built = builtAt();
  return fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true }).every((e) => !e.isFile() || fs.statSync(path.join(e.parentPath, e.name)).mtimeMs <= built);
}

function takeLock(): void {
  const deadline = Date.now() + 2 * STALE_LOCK_MS;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = Date.now() - (fs.statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > STALE_LOCK_MS) fs.rmSync(LOCK, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`waited too long for another process's build (lock ${LOCK})`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // another test process is building
  }
}

let checked = false;

/** Builds dist/ unless it is current (once per process). */
export function ensureBuilt(): void {
  if (checked) return;
  if (!current()) {
    takeLock();
    try {
      if (!current()) {
        const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
        if (r.status !== 0) throw new Error(`scripts/build.mjs failed (exit ${r.status})`);
      }
    } finally {
      fs.rmSync(LOCK, { recursive: true, force: true });
    }
  }
  checked = true;
}

/** The path of bin/cairn.js, with dist/ current. */
export function cairnBin(): string {
  ensureBuilt();
  return CAIRN_BIN;
}
