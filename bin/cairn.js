#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=2
// The `cairn` command. It runs the compiled JavaScript in dist/ (npm run
// build; npm ci and npm start build it) when that is newer than every source
// file, else the TypeScript in src/ through tsx's loader — never stale code.
// The compiled server needs ~30 MiB less: no loader thread and its caches.
// The shebang gives what `npm start` gives, for the server's memory; neither
// can be set from inside a running process:
// - MALLOC_MMAP_THRESHOLD_=1048576: glibc maps buffers of 1 MiB and more on
//   their own and unmaps them when freed. By default its threshold rises to
//   the largest buffer freed (an 8 MiB chunk), after which chunk buffers come
//   from heaps that keep every freed hole: the server held ~180 MiB of them.
//   Measured (bench/push-pull.ts, 512 MiB BF16 then random): peaks 177-248 MiB
//   instead of 221-315, same throughput.
// - --max-semi-space-size=2: V8's young generation grows to 32 MiB by
//   default, which the server's short-lived objects fill and keep resident.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function compiledIsCurrent() {
  try {
    const built = fs.statSync(path.join(root, 'dist', '.built')).mtimeMs;
    for (const entry of fs.readdirSync(path.join(root, 'src'), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs > built) return false;
    }
    return true;
  } catch {
    return false; // no build
  }
}

let main;
if (compiledIsCurrent()) {
  ({ main } = await import('../dist/cli.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli.ts'));
}
process.exitCode = await main(process.argv.slice(2));
