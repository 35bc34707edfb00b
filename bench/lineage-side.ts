// One side of bench/lineage.ts, in its own process: the real server of the
// source tree at <root> (this checkout, or an older commit extracted by the
// bench), on a temporary data dir with fs storage.
//
//   node --import tsx bench/lineage-side.ts <root> <dataDir> <events> <concurrency> <backlog> [<models>]
//
// burst    <events> JSON publishes over HTTP at <concurrency> (each names one
//          stored file: the cost is the registry's and the lineage's), while one
//          Hugging Face reader loops over info/tree/resolve of the newest version
//          (20 ms apart)
//          and the mirror runs as it does in production. Publish rate, read
//          latencies, and the mirror's sustained rate: events / time from the
//          first publish until nothing is pending.
// backlog  the writer's file system stalled (openCairn's gitFs option) while
//          <backlog> more publishes are made, then opened: events / drain time
//          is what the mirror can do; events / CPU seconds of the drain (the
//          server's process: nothing else runs then; `git repack` children not
//          counted) is that on a machine of its own.
// check    `git clone --bare` over HTTP: one commit per event.
// <models> (default 1) spreads the publishes over that many models, round
// robin: each publish rewrites its model's versions/ directory in git, so
// one model of 10,000 versions is the heaviest case.
// Prints one JSON document on stdout.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Config } from '../src/config.ts';
import type { Logger } from '../src/log.ts';
import type { startServer as StartServer } from '../src/main.ts';
import { stallableFs } from '../test/support/stallable-fs.ts';

const [root, dataDir, eventsText, concurrencyText, backlogText, modelsText = '1'] = process.argv.slice(2) as [string, string, string, string, string, string?];
const modelCount = Math.max(1, Number(modelsText));
const modelOf = (i: number) => (i % modelCount === 0 ? 'bench' : `bench${i % modelCount}`);
const events = Number(eventsText);
const concurrency = Number(concurrencyText);
const backlog = Number(backlogText);

const quiet: Logger = { info: () => {}, warn: () => {}, error: (msg, fields) => process.stderr.write(`server error: ${msg} ${JSON.stringify(fields ?? {})}\n`) };
const config: Config = { dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: false, unsafePolicy: 'warn' };

/** this process's CPU time (user + system), s: on a shared machine, the cost that other jobs do not inflate */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { n: sorted.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: sorted.at(-1) ?? Number.NaN };
}

async function main(): Promise<void> {
  const { startServer } = (await import(pathToFileURL(path.join(root, 'src', 'main.ts')).href)) as { startServer: typeof StartServer };
  const gate = stallableFs();
  const running = await startServer(config, quiet, { gitFs: gate.fs });
  const { url, cairn } = running;
  const mirror = cairn.mirror;
  try {
    const form = new FormData();
    form.append('version', 'base');
    form.append('file', new Blob([Buffer.from('bench weights')]), 'w.bin');
    const base = (await (await fetch(`${url}/v1/models/bench/versions`, { method: 'POST', body: form })).json()) as { files: Array<{ digest: string }> };
    const digest = base.files[0]!.digest;
    let next = 0;
    let newest = 'base';
    const publish = async (prefix: string, total: number, latencies?: number[]) => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const version = `${prefix}${i}`;
        const t0 = performance.now();
        const res = await fetch(`${url}/v1/models/${modelOf(i)}/versions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ version, files: [{ path: 'w.bin', digest }] }),
        });
        await res.arrayBuffer();
        if (res.status !== 201) throw new Error(`publish ${version}: ${res.status}`);
        latencies?.push(performance.now() - t0);
        if (modelOf(i) === 'bench') newest = version;
      }
    };

    // -- burst
    const publishLatencies: number[] = [];
    const readLatencies: number[] = [];
    let publishing = true;
    const reader = (async () => {
      while (publishing) {
        const version = newest;
        for (const p of [`/hf/api/models/bench/revision/${version}`, `/hf/api/models/bench/tree/${version}`, `/hf/bench/resolve/${version}/w.bin`]) {
          const t0 = performance.now();
          const res = await fetch(`${url}${p}`);
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`GET ${p}: ${res.status}`);
          readLatencies.push(performance.now() - t0);
        }
        // a client reading now and then, not a load test of its own: the publishes get the machine
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, () => publish('v', events, publishLatencies)));
    const t1 = performance.now();
    publishing = false;
    await reader;
    while (mirror.status().pending > 0) {
      if (mirror.status().last_error) throw new Error(`mirror: ${mirror.status().last_error}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const t2 = performance.now();

    // -- backlog: the writer stalled, then timed draining it all
    let drain = { events: 0, seconds: Number.NaN, cpu_s: Number.NaN };
    if (backlog > 0) {
      gate.stall();
      next = 0;
      await Promise.all(Array.from({ length: concurrency }, () => publish('b', backlog)));
      if (mirror.status().pending < backlog) throw new Error(`expected ${backlog} pending, found ${mirror.status().pending}`);
      const d0 = performance.now();
      const c0 = cpuSeconds();
      gate.resume();
      while (mirror.status().pending > 0) {
        await mirror.kick();
        if (mirror.status().last_error) throw new Error(`mirror: ${mirror.status().last_error}`);
      }
      drain = { events: backlog, seconds: (performance.now() - d0) / 1000, cpu_s: cpuSeconds() - c0 };
    }

    // -- check: a clone has one commit per event
    const clone = path.join(dataDir, 'clone.git');
    await promisify(execFile)('git', ['clone', '--bare', '-q', `${url}/git/lineage.git`, clone]);
    const { stdout } = await promisify(execFile)('git', ['--git-dir', clone, 'rev-list', '--count', 'main']);
    const expected = 1 + events + backlog;
    process.stdout.write(
      `${JSON.stringify({
        publish: { events, seconds: (t1 - t0) / 1000, per_s: events / ((t1 - t0) / 1000), ...summary(publishLatencies) },
        mirror_burst: { seconds: (t2 - t0) / 1000, per_s: events / ((t2 - t0) / 1000), drained_after_publishes_s: (t2 - t1) / 1000 },
        reads: summary(readLatencies),
        mirror_backlog: { ...drain, per_s: drain.events / drain.seconds, per_cpu_s: drain.events / drain.cpu_s },
        clone: { commits: Number(stdout.trim()), expected, ok: Number(stdout.trim()) === expected },
      })}\n`,
    );
  } finally {
    gate.resume();
    await running.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/lineage-side.ts: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
