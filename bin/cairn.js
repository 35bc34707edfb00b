#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=2
// The `cairn` command: the compiled JavaScript in dist/ (built by
// `npm run build`, which `npm ci` and `npm start` run).
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
let main;
try {
  ({ main } = await import('../dist/cli.js'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/cli.js')) throw err;
  process.stderr.write('cairn: not built (no dist/cli.js): run `npm run build` in the package first\n');
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
