// The git lineage under a burst of publishes, before vs after commit ids at
// publish and the pack-writing mirror (issue 13 point 4): publish rate, /hf
// read latency during the burst, and the mirror's events/s, side by side,
// with the after/before ratios.
//
//   node --import tsx bench/lineage.ts [--events 10000] [--backlog 10000] [--concurrency 4] [--models 1]
//                                      [--before <git rev>] [--sides before,after] [--json] [--keep]
//
// "after" is this checkout; "before" is <git rev> (default f74e57f, the last
// commit whose mirror computed commit ids only when writing them), extracted
// with `git archive` into a temporary dir that borrows this checkout's
// node_modules. Each side runs bench/lineage-side.ts in its own process (see
// there for the phases). The before side's mirror drains ~40 events/s: 10,000
// events take minutes there; --events 2000 --backlog 2000 is quicker.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '10000' },
    backlog: { type: 'string', default: '10000' },
    models: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    before: { type: 'string', default: 'f74e57f' },
    sides: { type: 'string', default: 'before,after' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const count = (name: string, text: string, min: number) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${text}`);
  return n;
};
const events = count('events', values.events, 1);
const backlog = count('backlog', values.backlog, 0);
const concurrency = count('concurrency', values.concurrency, 1);
const sides = values.sides.split(',').filter(Boolean);
for (const s of sides) if (s !== 'before' && s !== 'after') throw new Error(`--sides: before and/or after, got ${s}`);

interface SideResult {
  publish: { events: number; seconds: number; per_s: number; n: number; p50_ms: number; p99_ms: number; max_ms: number };
  mirror_burst: { seconds: number; per_s: number; drained_after_publishes_s: number };
  reads: { n: number; p50_ms: number; p99_ms: number; max_ms: number };
  mirror_backlog: { events: number; seconds: number; cpu_s: number; per_s: number; per_cpu_s: number };
  clone: { commits: number; expected: number; ok: boolean };
}

async function sourceTree(side: string, tmp: string): Promise<string> {
  if (side === 'after') return ROOT;
  const dir = path.join(tmp, 'before-src');
  await fs.mkdir(dir);
  await run('sh', ['-c', `git -C "${ROOT}" archive "${values.before}" | tar -x -C "${dir}"`]);
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function runSide(root: string, dataDir: string): Promise<SideResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bench', 'lineage-side.ts'), root, dataDir, String(events), String(concurrency), String(backlog), String(values.models)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as SideResult) : reject(new Error(`${root}: exit ${code}`))));
  });
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-lineage-'));
  const results: Record<string, SideResult> = {};
  try {
    for (const side of sides) {
      process.stderr.write(`# ${side}: ${events} publishes at concurrency ${concurrency}, then a backlog of ${backlog}\n`);
      const root = await sourceTree(side, tmp);
      const dataDir = path.join(tmp, `data-${side}`);
      await fs.mkdir(dataDir);
      results[side] = await runSide(root, dataDir);
    }
  } finally {
    if (!values.keep) await fs.rm(tmp, { recursive: true, force: true });
    else process.stderr.write(`# kept ${tmp}\n`);
  }
  const { before, after } = results;
  const ratios =
    before && after
      ? {
          publish_per_s: after.publish.per_s / before.publish.per_s,
          mirror_burst_per_s: after.mirror_burst.per_s / before.mirror_burst.per_s,
          mirror_backlog_per_s: after.mirror_backlog.per_s / before.mirror_backlog.per_s,
          mirror_backlog_per_cpu_s: after.mirror_backlog.per_cpu_s / before.mirror_backlog.per_cpu_s,
          read_p99: after.reads.p99_ms / before.reads.p99_ms,
        }
      : undefined;
  const failed = Object.entries(results).filter(([, r]) => !r.clone.ok);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ events, backlog, concurrency, before_rev: values.before, loadavg: os.loadavg(), results, ratios }, null, 2)}\n`);
  } else {
    const cols = sides;
    const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
    const rows: Array<[string, ...string[]]> = [
      ['', ...cols, ...(ratios ? ['after/before'] : [])],
      ['publishes/s (JSON, HTTP)', ...cols.map((s) => f(results[s]!.publish.per_s)), ...(ratios ? [`${f(ratios.publish_per_s, 2)}×`] : [])],
      ['  publish p50 / p99 ms', ...cols.map((s) => `${f(results[s]!.publish.p50_ms)} / ${f(results[s]!.publish.p99_ms)}`)],
      ['mirror events/s, sustained in the burst', ...cols.map((s) => f(results[s]!.mirror_burst.per_s)), ...(ratios ? [`${f(ratios.mirror_burst_per_s, 2)}×`] : [])],
      ['  git behind after the last publish, s', ...cols.map((s) => f(results[s]!.mirror_burst.drained_after_publishes_s, 2))],
      ['mirror events/s, draining a backlog', ...cols.map((s) => f(results[s]!.mirror_backlog.per_s)), ...(ratios ? [`${f(ratios.mirror_backlog_per_s, 2)}×`] : [])],
      ['  per CPU second of the drain', ...cols.map((s) => f(results[s]!.mirror_backlog.per_cpu_s)), ...(ratios ? [`${f(ratios.mirror_backlog_per_cpu_s, 2)}×`] : [])],
      ['/hf reads in the burst: n', ...cols.map((s) => String(results[s]!.reads.n))],
      ['  p50 / p99 / max ms', ...cols.map((s) => `${f(results[s]!.reads.p50_ms)} / ${f(results[s]!.reads.p99_ms)} / ${f(results[s]!.reads.max_ms)}`), ...(ratios ? [`p99 ${f(ratios.read_p99, 3)}×`] : [])],
      ['clone: commits = events', ...cols.map((s) => `${results[s]!.clone.commits} ${results[s]!.clone.ok ? 'ok' : 'MISMATCH'}`)],
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    const table = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
    const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
    process.stdout.write(
      `lineage bench: ${events} publishes at concurrency ${concurrency}, backlog ${backlog}; before = ${values.before}; ${os.cpus().length} CPUs, load ${load}\n\n${table}\n`,
    );
  }
  if (failed.length > 0) {
    process.stderr.write(`clone check failed: ${failed.map(([s]) => s).join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/lineage.ts: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
