// The git lineage mirror: cost per event as history grows, rebuild, and clone.
//
//   node --import tsx bench/lineage.ts [--events 100,10000] [--models 50] [--json]
//
// For each size N (side by side, in one process, through the real wiring —
// `openCairn` / `startServer` from src/main.ts on a temporary data dir with fs
// storage):
//   backlog   N events are made through the Registry API (a seeded mix over
//             --models models of publishes, alias moves and deletes of unaliased
//             versions; every publish names one tiny blob stored once with
//             `registry.storeFile`, so the bench is about git, not bytes). The
//             writer's file system (`openCairn`'s `gitFs` option) is gated shut
//             meanwhile, so the drain the first event kicks stays parked in its
//             first call; then the gate opens and `await mirror.kick()` is timed
//             while it drains the whole backlog. A wrapper on
//             EventQueries.prototype.markMirrored timestamps every event as it is
//             recorded, which gives the cost of each event in the drain: events
//             1–W (history length ≈ W) and events N−W+1…N (history length ≈ N).
//   rebuild   `rebuildRepository` replays every event into a fresh repository;
//             it must report 0 mismatched commit ids and the same head.
//   clone     the data dir is reopened with `startServer` (port 0) and the real
//             `git clone --bare` fetches http://127.0.0.1:<port>/git/lineage.git;
//             the clone must hold one commit per event (`git log --oneline | wc -l`)
//             and one tag per publish (`git tag | wc -l`).
//   steady    then --steady events are written one at a time on that server's
//             registry, each followed by `await mirror.kick()` from an idle
//             writer: the latency of a full drain round per event at history N.
//   packed    for comparison only (--no-repack skips it): the mirror leaves every
//             object loose; `git repack -a -d && git pack-refs --all` is run on
//             the repository and the clone is timed again.
// The mirror writes objects directly (no index, no `add`), so the per-event cost
// should not depend on the history length: the ratios printed at the end should
// be ≈ 1.0. Every isomorphic-git call the mirror makes is also timed (the
// default export's methods are wrapped), to show where an event's time goes.
//
// A throwaway warm-up run (--warmup events) comes first so that JIT warm-up
// does not flatter the large run. Progress goes to stderr; --json prints the
// results as JSON on stdout. Temporary dirs are removed unless --keep.
import { execFile } from 'node:child_process';
import nodeFs from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify, parseArgs } from 'node:util';
import git from 'isomorphic-git';
import type { Config } from '../src/config.ts';
import { rebuildRepository, type GitMirror } from '../src/lineage/git-mirror.ts';
import type { Logger } from '../src/log.ts';
import { openCairn, startServer, type Cairn } from '../src/main.ts';
import { EventQueries } from '../src/metadata/events.ts';
import type { Caller } from '../src/access.ts';
import type { Services } from '../src/registry/index.ts';
import type { PublishInput } from '../src/registry/publish.ts';
import { prng as rng } from '../test/support/prng.ts';

const execFileP = promisify(execFile);

// ---- options -----------------------------------------------------------------

interface Options {
  events: number[];
  models: number;
  window: number;
  steady: number;
  warmup: number;
  seed: number;
  json: boolean;
  keep: boolean;
  repack: boolean;
}

const USAGE = `usage: node --import tsx bench/lineage.ts [options]

  --events LIST   comma-separated repository sizes in events (default 100,10000)
  --models N      models the events are spread over (default 50)
  --window N      events per measurement window, first and last (default 100)
  --steady N      events written one at a time after the backlog (default 100)
  --warmup N      events of a throwaway warm-up run (default 300; 0 = none)
  --seed N        seed of the event mix (default 1)
  --json          print the results as JSON on stdout (progress still goes to stderr)
  --keep          keep the temporary data dirs and clones
  --no-repack     skip the comparison clone of the repository packed by \`git repack -a -d\`
`;

function positiveInt(name: string, text: string, allowZero = false): number {
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string', default: '100,10000' },
      models: { type: 'string', default: '50' },
      window: { type: 'string', default: '100' },
      steady: { type: 'string', default: '100' },
      warmup: { type: 'string', default: '300' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'no-repack': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const events = values.events
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => positiveInt('--events', s.trim()));
  if (events.length === 0) throw new Error('--events is empty');
  return {
    events,
    models: positiveInt('--models', values.models),
    window: positiveInt('--window', values.window),
    steady: positiveInt('--steady', values.steady, true),
    warmup: positiveInt('--warmup', values.warmup, true),
    seed: positiveInt('--seed', values.seed, true),
    json: values.json,
    keep: values.keep,
    repack: !values['no-repack'],
  };
}

// ---- probes: per-event marks and isomorphic-git call times ---------------------

const GIT_CALLS = ['resolveRef', 'readCommit', 'readTree', 'writeBlob', 'writeTree', 'writeCommit', 'writeRef'] as const;
type GitCall = (typeof GIT_CALLS)[number];
type Breakdown = Record<GitCall, { calls: number; ms: number }>;

function emptyBreakdown(): Breakdown {
  return Object.fromEntries(GIT_CALLS.map((c) => [c, { calls: 0, ms: 0 }])) as Breakdown;
}

/**
 * What the wrappers record into. `marks` gets a timestamp (and the process's CPU
 * time, user + system, µs) each time an event's commit id is recorded; `bucket`
 * decides which breakdowns a git call counts in; a call counts only from
 * `since` on (the drain the first event kicked starts its first call,
 * `resolveRef`, while the backlog is still being made).
 */
const probe = {
  recording: false,
  marks: [] as number[],
  cpu: [] as number[],
  since: 0,
  bucket: undefined as ((marksSoFar: number) => Breakdown[]) | undefined,
};

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const originalMark = EventQueries.prototype.markMirrored;
EventQueries.prototype.markMirrored = function markMirrored(this: EventQueries, fromId: number, toId: number): void {
  originalMark.call(this, fromId, toId);
  if (probe.recording) {
    // one mark per event of the batch, all at the batch's time
    for (let id = fromId; id <= toId; id++) {
      probe.marks.push(performance.now());
      probe.cpu.push(cpuMicros());
    }
  }
};

{
  // `import git from 'isomorphic-git'` is the same module object src/lineage/git-mirror.ts
  // calls through (`git.writeTree(...)`), so wrapping its methods times the mirror's calls.
  type AsyncFn = (this: unknown, ...args: unknown[]) => Promise<unknown>;
  const api = git as unknown as Record<string, AsyncFn>;
  for (const name of GIT_CALLS) {
    const original = api[name];
    if (typeof original !== 'function') throw new Error(`isomorphic-git has no ${name}()`);
    api[name] = async function wrapped(this: unknown, ...args: unknown[]): Promise<unknown> {
      const start = performance.now();
      try {
        return await original.apply(this, args);
      } finally {
        const end = performance.now();
        if (probe.bucket && end > probe.since) {
          // a call already in flight when the clock started counts from then on
          const elapsed = end - Math.max(start, probe.since);
          for (const target of probe.bucket(probe.marks.length)) {
            target[name].calls += 1;
            target[name].ms += elapsed;
          }
        }
      }
    };
  }
}

// ---- helpers -------------------------------------------------------------------------

function progress(message: string): void {
  process.stderr.write(`# ${message}\n`);
}

/** A logger that prints nothing and keeps errors (a failing mirror must not go unnoticed). */
function quietLogger(errors: string[]): Logger {
  return {
    info: () => {},
    warn: () => {},
    error: (msg, fields) => errors.push(`${msg} ${JSON.stringify(fields ?? {})}`),
  };
}

function config(dataDir: string): Config {
  return { dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: false, unsafePolicy: 'warn' };
}

/**
 * node:fs for the git writer (`openCairn`'s `gitFs` option, as the tests use it)
 * whose promise API waits while the gate is closed: the backlog is made with the
 * writer parked in its first call, then the clock starts and the gate opens.
 */
function gatedFs(): { fs: typeof nodeFs; close(): void; open(): void } {
  let gate: Promise<void> | undefined;
  let release: () => void = () => {};
  const promises = new Proxy(nodeFs.promises, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        while (gate) await gate;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    fs: { ...nodeFs, promises } as typeof nodeFs,
    close() {
      gate ??= new Promise<void>((resolve) => (release = resolve));
    },
    open() {
      gate = undefined;
      release();
    },
  };
}

/** Waits until the writer is idle with nothing pending; throws if it is failing. */
async function idle(mirror: GitMirror): Promise<void> {
  for (;;) {
    // The writer exposes no idle signal; its in-flight drain is the private `running`.
    const running = (mirror as unknown as { running?: Promise<void> }).running;
    if (running) {
      await running;
      continue;
    }
    const status = mirror.status();
    if (status.last_error) throw new Error(`lineage mirror failed: ${status.last_error}`);
    if (status.pending === 0) return;
    await mirror.kick();
  }
}

function assertDrained(mirror: GitMirror, what: string): void {
  const status = mirror.status();
  if (status.last_error) throw new Error(`lineage mirror failed during ${what}: ${status.last_error}`);
  if (status.pending !== 0) throw new Error(`${what}: ${status.pending} events still pending after await mirror.kick()`);
}

async function sh(cwd: string, script: string): Promise<string> {
  const { stdout } = await execFileP('sh', ['-c', script], {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

async function countObjects(gitdir: string): Promise<Record<string, number>> {
  const out = await sh(gitdir, 'git count-objects -v');
  const result: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const m = /^([a-z-]+): (\d+)$/.exec(line.trim());
    if (m) result[m[1]!] = Number(m[2]);
  }
  return result;
}

function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Stats {
  events: number;
  mean_ms: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

function stats(values: number[]): Stats {
  return {
    events: values.length,
    mean_ms: mean(values),
    p50_ms: percentile(values, 0.5),
    p99_ms: percentile(values, 0.99),
    max_ms: values.length ? Math.max(...values) : Number.NaN,
  };
}


// ---- the workload -------------------------------------------------------------------

interface ModelState {
  name: string;
  next: number;
  live: string[];
  /** alias -> version */
  aliases: Map<string, string>;
}

const ALIASES = ['production', 'staging', 'canary'];
const ACTORS = ['alice', 'bob', 'ci'];
const FILE_PATH = 'weights.bin';

type Kind = 'publish' | 'alias' | 'delete';

/**
 * Makes one event per step through the Registry API: ~70 % publishes (some with a
 * parent, some with an alias), ~20 % alias moves (always to a different version,
 * so that each is an event), ~10 % deletes of unaliased versions.
 */
class Workload {
  readonly counts: Record<Kind, number> = { publish: 0, alias: 0, delete: 0 };
  private readonly models: ModelState[];
  private readonly random: () => number;

  constructor(
    /** the registry the next events go to (the steady phase moves to the server's) */
    public registry: Services,
    private readonly digest: string,
    modelCount: number,
    seed: number,
  ) {
    this.random = rng(seed);
    this.models = Array.from({ length: modelCount }, (_, i) => ({
      name: `bench-model-${String(i).padStart(3, '0')}`,
      next: 1,
      live: [],
      aliases: new Map(),
    }));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  get total(): number {
    return this.counts.publish + this.counts.alias + this.counts.delete;
  }

  async step(): Promise<Kind> {
    const model = this.pick(this.models);
    const actor = this.pick(ACTORS);
    const r = this.random();
    const aliased = new Set(model.aliases.values());
    const deletable = model.live.filter((v) => !aliased.has(v));
    let kind: Kind = 'publish';
    if (model.live.length >= 3 && r >= 0.7) kind = r < 0.9 ? 'alias' : deletable.length > 0 ? 'delete' : 'alias';

    if (kind === 'alias') {
      const alias = this.pick(ALIASES);
      const current = model.aliases.get(alias);
      const candidates = model.live.slice(-10).filter((v) => v !== current);
      const target = this.pick(candidates);
      this.registry.aliases.set(model.name, alias, target, actor);
      model.aliases.set(alias, target);
    } else if (kind === 'delete') {
      const victim = this.pick(deletable.slice(0, 5));
      this.registry.publishing.delete(model.name, victim, actor);
      model.live.splice(model.live.indexOf(victim), 1);
    } else {
      const n = model.next++;
      const version = `1.${Math.floor(n / 100)}.${n % 100}`;
      const previous = model.live[model.live.length - 1];
      const input: PublishInput = {
        name: model.name,
        version,
        files: [{ path: FILE_PATH, digest: this.digest }],
        message: `training run ${n}`,
        metadata: { step: n * 1000, lr: 0.0003, dataset: `shard-${n % 7}` },
        actor,
        caller: NO_AUTH,
      };
      if (previous && this.random() < 0.3) input.parents = [{ ref: `${model.name}@${previous}`, relation: 'fine-tuned-from', recipe: { epochs: 1 } }];
      if (this.random() < 0.05) input.aliases = ['staging'];
      await this.registry.publishing.publish(input);
      model.live.push(version);
      if (input.aliases) model.aliases.set('staging', version);
    }
    this.counts[kind] += 1;
    return kind;
  }
}

/** The bench's registry runs as with CAIRN_AUTH=off. */
const NO_AUTH: Caller = { principal: undefined, models: [] };

async function storeTinyBlob(registry: Services): Promise<string> {
  async function* source() {
    yield Buffer.from('tiny weights: the bench is about git, not bytes\n');
  }
  return (await registry.publishing.storeFile(source(), NO_AUTH)).digest;
}

// ---- one size ----------------------------------------------------------------------------

interface SizeResult {
  events: number;
  counts: Record<Kind, number>;
  registry_us_per_event: number;
  backlog: {
    total_s: number;
    mean_ms: number;
    cpu_ms: number;
    first: Stats & Window;
    last: Stats & Window;
    git_first_ms_per_event: Record<GitCall, number>;
    git_last_ms_per_event: Record<GitCall, number>;
    git_last_calls_per_event: Record<GitCall, number>;
  };
  rebuild: { total_s: number; ms_per_event: number; events: number; mismatched: number; same_head: boolean };
  repository: { loose_objects: number; loose_kib: number; in_pack: number; packs: number };
  clone: { total_s: number; pack_kib: number; objects: number; log_lines: number; tags: number; log_ok: boolean; tags_ok: boolean };
  steady: (Stats & KindMeans & { history: number; cpu_ms: number; git_ms_per_event: Record<GitCall, number> }) | null;
  /** after `git repack -a -d` + `git pack-refs --all` (not something Cairn does today) */
  packed: { repack_s: number; pack_kib: number; clone_s: number; log_lines: number; log_ok: boolean } | null;
  errors: string[];
}

/** Mean per event kind: publishes write 2 blobs + 4 trees, alias moves 1 + 3, deletes 1 + 4, so a window's mix matters. */
interface KindMeans {
  publish_mean_ms: number;
  publish_p50_ms: number;
  by_kind: Record<Kind, { events: number; mean_ms: number }>;
}

interface Window extends KindMeans {
  range: string;
  cpu_ms: number;
}

function byKind(values: number[], kinds: Kind[], from: number, to: number): KindMeans {
  const of = (k: Kind) => values.slice(from, to).filter((_, i) => kinds[from + i] === k);
  const publishes = of('publish');
  return {
    publish_mean_ms: mean(publishes),
    publish_p50_ms: percentile(publishes, 0.5),
    by_kind: Object.fromEntries((['publish', 'alias', 'delete'] as const).map((k) => [k, { events: of(k).length, mean_ms: mean(of(k)) }])) as KindMeans['by_kind'],
  };
}

function perEvent(b: Breakdown, events: number): Record<GitCall, number> {
  return Object.fromEntries(GIT_CALLS.map((c) => [c, events ? b[c].ms / events : Number.NaN])) as Record<GitCall, number>;
}

function callsPerEvent(b: Breakdown, events: number): Record<GitCall, number> {
  return Object.fromEntries(GIT_CALLS.map((c) => [c, events ? b[c].calls / events : Number.NaN])) as Record<GitCall, number>;
}

async function runSize(n: number, options: Options, tmpRoot: string, quiet: boolean): Promise<SizeResult> {
  const say = quiet ? () => {} : progress;
  const dataDir = await fs.mkdtemp(path.join(tmpRoot, `data-${n}-`));
  const errors: string[] = [];
  const log = quietLogger(errors);
  const w = Math.min(options.window, n);

  // -- backlog: make N events with the writer parked, then time the drain
  const gate = gatedFs();
  let cairn: Cairn | undefined = await openCairn(config(dataDir), log, { gitFs: gate.fs });
  let result: SizeResult;
  try {
    await idle(cairn.mirror);
    const digest = await storeTinyBlob(cairn.services);
    const workload = new Workload(cairn.services, digest, options.models, options.seed);
    say(`${n} events: making them through the registry`);
    const g0 = performance.now();
    // The writer's file system is gated shut while the backlog is made: the drain
    // the first event kicks stays parked in its first file system call.
    const kinds: Kind[] = [];
    gate.close();
    while (workload.total < n) kinds.push(await workload.step());
    const g1 = performance.now();
    const mirror = cairn.mirror;
    if (mirror.status().pending !== n) throw new Error(`expected ${n} pending events, found ${mirror.status().pending}`);

    const first = emptyBreakdown();
    const middle = emptyBreakdown();
    const last = emptyBreakdown();
    probe.marks = [];
    probe.cpu = [];
    probe.recording = true;
    probe.bucket = (done) => {
      const into: Breakdown[] = [];
      if (done < w) into.push(first);
      if (done >= n - w) into.push(last);
      if (into.length === 0) into.push(middle);
      return into;
    };
    say(`${n} events: draining the backlog`);
    const cpu0 = cpuMicros();
    const t0 = performance.now();
    probe.since = t0;
    gate.open();
    await mirror.kick();
    const t1 = performance.now();
    const cpu1 = cpuMicros();
    probe.recording = false;
    probe.bucket = undefined;
    assertDrained(mirror, 'the backlog drain');
    await idle(mirror);
    const marks = probe.marks;
    const cpuMarks = probe.cpu;
    if (marks.length !== n) throw new Error(`expected ${n} marked events, saw ${marks.length}`);
    const gaps = marks.map((m, i) => m - (i === 0 ? t0 : marks[i - 1]!));
    /** CPU ms per event of the events from..to (0-based, inclusive) */
    const cpuPerEvent = (from: number, to: number) => ((cpuMarks[to]! - (from === 0 ? cpu0 : cpuMarks[from - 1]!)) / 1000) / (to - from + 1);
    const gitCalls = GIT_CALLS.reduce((s, c) => s + first[c].calls + middle[c].calls + last[c].calls, 0);
    if (gitCalls === 0) errors.push('bench: the isomorphic-git wrappers saw no calls (the breakdown is empty)');

    const headBefore = await git.resolveRef({ fs: nodeFs, gitdir: mirror.gitdir, ref: 'refs/heads/main' });
    const counts = { ...workload.counts };
    const dbCounts = cairn.db.all<{ kind: string; n: number }>('SELECT kind, count(*) AS n FROM events GROUP BY kind');
    const publishes = dbCounts.find((r) => r.kind === 'publish')?.n ?? 0;
    const totalEvents = dbCounts.reduce((s, r) => s + r.n, 0);
    if (publishes !== counts.publish || totalEvents !== n) throw new Error(`event table disagrees: ${JSON.stringify(dbCounts)} vs ${JSON.stringify(counts)}`);

    // -- rebuild from SQLite alone
    say(`${n} events: rebuildRepository`);
    const r0 = performance.now();
    const rebuilt = await rebuildRepository({ gitdir: mirror.gitdir, events: new EventQueries(cairn.db), log });
    const r1 = performance.now();
    const objects = await countObjects(mirror.gitdir);
    await cairn.close();
    cairn = undefined;

    // -- clone over smart HTTP from a server on the same data dir
    const server = await startServer(config(dataDir), log);
    cairn = server.cairn;
    await idle(cairn.mirror);
    const cloneDir = path.join(tmpRoot, `clone-${n}.git`);
    say(`${n} events: git clone --bare ${server.url}/git/lineage.git`);
    const c0 = performance.now();
    await execFileP('git', ['clone', '--bare', '--quiet', `${server.url}/git/lineage.git`, cloneDir], {
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      maxBuffer: 16 * 1024 * 1024,
    });
    const c1 = performance.now();
    const logLines = Number((await sh(cloneDir, 'git log --oneline | wc -l')).trim());
    const tags = Number((await sh(cloneDir, 'git tag | wc -l')).trim());
    const cloneObjects = await countObjects(cloneDir);
    if (!options.keep) await fs.rm(cloneDir, { recursive: true, force: true });

    // -- steady state at history N: one event at a time, a kick after each
    let steady: SizeResult['steady'] = null;
    if (options.steady > 0) {
      say(`${n} events: ${options.steady} more, one at a time`);
      // The same models, carrying on where the backlog stopped (same trees, same sizes).
      workload.registry = server.cairn.services;
      const latencies: number[] = [];
      const steadyKinds: Kind[] = [];
      let steadyCpu = 0;
      const breakdown = emptyBreakdown();
      const liveMirror = server.cairn.mirror;
      for (let i = 0; i < options.steady; i++) {
        await idle(liveMirror);
        // The clock starts once the event is committed (the registry's own time
        // is the "registry ops" row); the drain it kicked is parked at its first await.
        steadyKinds.push(await workload.step());
        const c0 = cpuMicros();
        const s0 = performance.now();
        probe.since = s0;
        probe.bucket = () => [breakdown];
        await liveMirror.kick();
        const s1 = performance.now();
        steadyCpu += cpuMicros() - c0;
        probe.bucket = undefined;
        assertDrained(liveMirror, `steady event ${i + 1}`);
        latencies.push(s1 - s0);
      }
      await idle(liveMirror);
      steady = { history: n, ...stats(latencies), ...byKind(latencies, steadyKinds, 0, latencies.length), cpu_ms: steadyCpu / 1000 / options.steady, git_ms_per_event: perEvent(breakdown, options.steady) };
    }

    // -- for comparison only: the same repository packed by real git, cloned again
    let packed: SizeResult['packed'] = null;
    if (options.repack) {
      await idle(server.cairn.mirror);
      const gitdir = server.cairn.mirror.gitdir;
      say(`${n} events: git repack -a -d && git pack-refs --all, then clone again`);
      const p0 = performance.now();
      await sh(gitdir, 'git repack -a -d -q && git pack-refs --all');
      const p1 = performance.now();
      const after = await countObjects(gitdir);
      const expected = n + options.steady;
      const packedClone = path.join(tmpRoot, `clone-${n}-packed.git`);
      const k0 = performance.now();
      await execFileP('git', ['clone', '--bare', '--quiet', `${server.url}/git/lineage.git`, packedClone], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
      const k1 = performance.now();
      const lines = Number((await sh(packedClone, 'git log --oneline | wc -l')).trim());
      if (!options.keep) await fs.rm(packedClone, { recursive: true, force: true });
      packed = {
        repack_s: (p1 - p0) / 1000,
        pack_kib: after['size-pack'] ?? Number.NaN,
        clone_s: (k1 - k0) / 1000,
        log_lines: lines,
        log_ok: lines === expected,
      };
      if (!packed.log_ok) errors.push(`clone after repack has ${lines} commits, expected ${expected}`);
    }
    await server.close();
    cairn = undefined;

    result = {
      events: n,
      counts,
      registry_us_per_event: ((g1 - g0) * 1000) / n,
      backlog: {
        total_s: (t1 - t0) / 1000,
        mean_ms: (t1 - t0) / n,
        cpu_ms: (cpu1 - cpu0) / 1000 / n,
        first: { range: `1-${w}`, ...stats(gaps.slice(0, w)), cpu_ms: cpuPerEvent(0, w - 1), ...byKind(gaps, kinds, 0, w) },
        last: { range: `${n - w + 1}-${n}`, ...stats(gaps.slice(n - w)), cpu_ms: cpuPerEvent(n - w, n - 1), ...byKind(gaps, kinds, n - w, n) },
        git_first_ms_per_event: perEvent(first, w),
        git_last_ms_per_event: perEvent(last, w),
        git_last_calls_per_event: callsPerEvent(last, w),
      },
      rebuild: {
        total_s: (r1 - r0) / 1000,
        ms_per_event: (r1 - r0) / Math.max(1, rebuilt.events),
        events: rebuilt.events,
        mismatched: rebuilt.mismatched,
        same_head: rebuilt.head === headBefore,
      },
      repository: {
        loose_objects: objects.count ?? Number.NaN,
        loose_kib: objects.size ?? Number.NaN,
        in_pack: objects['in-pack'] ?? 0,
        packs: objects.packs ?? 0,
      },
      clone: {
        total_s: (c1 - c0) / 1000,
        pack_kib: cloneObjects['size-pack'] ?? Number.NaN,
        objects: (cloneObjects['in-pack'] ?? 0) + (cloneObjects.count ?? 0),
        log_lines: logLines,
        tags,
        log_ok: logLines === n,
        tags_ok: tags === counts.publish,
      },
      steady,
      packed,
      errors,
    };
  } finally {
    gate.open();
    probe.recording = false;
    probe.bucket = undefined;
    if (cairn) await cairn.close().catch(() => {});
    if (!options.keep) await fs.rm(dataDir, { recursive: true, force: true });
  }
  return result;
}

// ---- report ------------------------------------------------------------------------------

const FLAT_LIMIT = 1.25;

function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(3)} ms` : '-';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ')).join('\n');
}

function kindCell(k: KindMeans): string {
  return `${k.by_kind.publish.events}, ${k.publish_mean_ms.toFixed(3)} / ${k.publish_p50_ms.toFixed(3)} ms`;
}

function verdict(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-';
  return ratio <= FLAT_LIMIT ? `flat (≤ ${FLAT_LIMIT})` : `NOT flat (> ${FLAT_LIMIT})`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-lineage-'));
  const gitVersion = (await execFileP('git', ['--version'])).stdout.trim();
  const results: SizeResult[] = [];
  const loadStart = os.loadavg().map((l) => Number(l.toFixed(2)));
  let exitCode = 0;
  try {
    if (options.warmup > 0) {
      progress(`warm-up: ${options.warmup} events (not reported)`);
      await runSize(options.warmup, { ...options, steady: Math.min(options.steady, 20), keep: false }, tmpRoot, true);
    }
    for (const n of options.events) results.push(await runSize(n, options, tmpRoot, false));
  } finally {
    if (!options.keep) await fs.rm(tmpRoot, { recursive: true, force: true });
    else progress(`kept ${tmpRoot}`);
  }

  const small = results.reduce((a, b) => (b.events < a.events ? b : a));
  const big = results.reduce((a, b) => (b.events > a.events ? b : a));
  /** mean, median and CPU per event: the machine may be shared, the median and the CPU time are the sturdier two */
  const ratio3 = (a: { mean_ms: number; p50_ms: number; cpu_ms: number }, b: { mean_ms: number; p50_ms: number; cpu_ms: number }) => ({
    mean: a.mean_ms / b.mean_ms,
    p50: a.p50_ms / b.p50_ms,
    cpu: a.cpu_ms / b.cpu_ms,
  });
  const ratios = {
    backlog_big_last_vs_small_first: ratio3(big.backlog.last, small.backlog.first),
    backlog_big_last_vs_big_first: ratio3(big.backlog.last, big.backlog.first),
    steady_big_vs_small: big.steady && small.steady ? ratio3(big.steady, small.steady) : null,
    /** the same kind of event on both sides: publishes only, median */
    publish_p50_backlog_big_last_vs_small_first: big.backlog.last.publish_p50_ms / small.backlog.first.publish_p50_ms,
    publish_p50_steady_big_vs_small: big.steady && small.steady ? big.steady.publish_p50_ms / small.steady.publish_p50_ms : Number.NaN,
    rebuild_per_event_big_vs_small: big.rebuild.ms_per_event / small.rebuild.ms_per_event,
    clone_s_per_1000_events: (big.clone.total_s * 1000) / big.events,
  };
  /** flat when the median and the CPU time both say so */
  const flat = (r: { p50: number; cpu: number }) => r.p50 <= FLAT_LIMIT && r.cpu <= FLAT_LIMIT;
  const failures: string[] = [];
  for (const r of results) {
    if (r.rebuild.mismatched !== 0) failures.push(`${r.events}: rebuild reported ${r.rebuild.mismatched} mismatched commit ids`);
    if (!r.rebuild.same_head) failures.push(`${r.events}: rebuild produced a different head`);
    if (!r.clone.log_ok) failures.push(`${r.events}: clone has ${r.clone.log_lines} commits, expected ${r.events}`);
    if (!r.clone.tags_ok) failures.push(`${r.events}: clone has ${r.clone.tags} tags, expected ${r.counts.publish}`);
    for (const e of r.errors) failures.push(`${r.events}: ${e}`);
  }
  if (failures.length > 0) exitCode = 1;

  const meta = {
    node: process.version,
    git: gitVersion,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    loadavg_start: loadStart,
    loadavg_end: os.loadavg().map((l) => Number(l.toFixed(2))),
    models: options.models,
    window: options.window,
    steady: options.steady,
    warmup: options.warmup,
    seed: options.seed,
  };
  if (options.json) {
    const verdicts = {
      backlog_big_last_vs_small_first: flat(ratios.backlog_big_last_vs_small_first),
      backlog_big_last_vs_big_first: flat(ratios.backlog_big_last_vs_big_first),
      steady_big_vs_small: ratios.steady_big_vs_small ? flat(ratios.steady_big_vs_small) : null,
    };
    process.stdout.write(`${JSON.stringify({ meta, results, ratios, flat_limit: FLAT_LIMIT, flat: verdicts, failures }, null, 2)}\n`);
  } else {
    const cols = results.map((r) => `${r.events} events`);
    const rows: string[][] = [
      ['', ...cols],
      ['mix publish/alias/delete', ...results.map((r) => `${r.counts.publish}/${r.counts.alias}/${r.counts.delete}`)],
      ['registry ops (no git on this path)', ...results.map((r) => `${r.registry_us_per_event.toFixed(0)} µs/event`)],
      ['backlog drain, total', ...results.map((r) => `${r.backlog.total_s.toFixed(2)} s`)],
      ['backlog drain, mean per event', ...results.map((r) => ms(r.backlog.mean_ms))],
      ['    CPU (user+sys) per event', ...results.map((r) => ms(r.backlog.cpu_ms))],
      ['  events of the first window', ...results.map((r) => r.backlog.first.range)],
      ['    mean per event', ...results.map((r) => ms(r.backlog.first.mean_ms))],
      ['    p50 / p99', ...results.map((r) => `${r.backlog.first.p50_ms.toFixed(3)} / ${r.backlog.first.p99_ms.toFixed(3)} ms`)],
      ['    CPU per event', ...results.map((r) => ms(r.backlog.first.cpu_ms))],
      ['    publishes only: n, mean / p50', ...results.map((r) => kindCell(r.backlog.first))],
      ['  events of the last window', ...results.map((r) => r.backlog.last.range)],
      ['    mean per event', ...results.map((r) => ms(r.backlog.last.mean_ms))],
      ['    p50 / p99', ...results.map((r) => `${r.backlog.last.p50_ms.toFixed(3)} / ${r.backlog.last.p99_ms.toFixed(3)} ms`)],
      ['    CPU per event', ...results.map((r) => ms(r.backlog.last.cpu_ms))],
      ['    publishes only: n, mean / p50', ...results.map((r) => kindCell(r.backlog.last))],
      [`steady: 1 event + kick, at history N`, ...results.map((r) => (r.steady ? ms(r.steady.mean_ms) : '-'))],
      ['    p50 / p99', ...results.map((r) => (r.steady ? `${r.steady.p50_ms.toFixed(3)} / ${r.steady.p99_ms.toFixed(3)} ms` : '-'))],
      ['    CPU per event', ...results.map((r) => (r.steady ? ms(r.steady.cpu_ms) : '-'))],
      ['    publishes only: n, mean / p50', ...results.map((r) => (r.steady ? kindCell(r.steady) : '-'))],
      ['rebuildRepository, total', ...results.map((r) => `${r.rebuild.total_s.toFixed(2)} s`)],
      ['    per event', ...results.map((r) => ms(r.rebuild.ms_per_event))],
      ['    mismatched commit ids / same head', ...results.map((r) => `${r.rebuild.mismatched} / ${r.rebuild.same_head ? 'yes' : 'NO'}`)],
      ['server repo: loose objects (KiB)', ...results.map((r) => `${r.repository.loose_objects} (${r.repository.loose_kib})`)],
      ['git clone --bare over HTTP', ...results.map((r) => `${r.clone.total_s.toFixed(2)} s`)],
      ['    clone: objects, pack KiB', ...results.map((r) => `${r.clone.objects}, ${r.clone.pack_kib}`)],
      ['    log --oneline | wc -l', ...results.map((r) => `${r.clone.log_lines} ${r.clone.log_ok ? 'ok' : 'MISMATCH'}`)],
      ['    tag | wc -l (= publishes)', ...results.map((r) => `${r.clone.tags} ${r.clone.tags_ok ? 'ok' : 'MISMATCH'}`)],
      ['for comparison: git repack -a -d', ...results.map((r) => (r.packed ? `${r.packed.repack_s.toFixed(2)} s, ${r.packed.pack_kib} KiB` : '-'))],
      ['    then clone over HTTP (N+steady)', ...results.map((r) => (r.packed ? `${r.packed.clone_s.toFixed(2)} s ${r.packed.log_ok ? 'ok' : 'MISMATCH'}` : '-'))],
    ];
    const out: string[] = [];
    out.push(`lineage mirror bench — ${meta.node}, ${meta.git}, ${meta.cpus} × ${meta.cpu}, load average ${meta.loadavg_start.join(' ')} at start, ${meta.loadavg_end.join(' ')} at end`);
    out.push(`${options.models} models, tiny files (one stored blob), window ${options.window}, steady ${options.steady}, warm-up ${options.warmup}, seed ${options.seed}`);
    out.push('');
    out.push(table(rows));
    out.push('');
    out.push('isomorphic-git time per event, backlog drain (ms):');
    const gitRows: string[][] = [['call', ...results.flatMap((r) => [`${r.events}: ${r.backlog.first.range}`, `${r.events}: ${r.backlog.last.range}`]), ...results.map((r) => (r.steady ? `${r.events}: steady` : '')).filter(Boolean)]];
    for (const c of GIT_CALLS) {
      gitRows.push([
        c,
        ...results.flatMap((r) => [r.backlog.git_first_ms_per_event[c].toFixed(3), r.backlog.git_last_ms_per_event[c].toFixed(3)]),
        ...results.filter((r) => r.steady).map((r) => r.steady!.git_ms_per_event[c].toFixed(3)),
      ]);
    }
    const sumOf = (rec: Record<GitCall, number>) => GIT_CALLS.reduce((s, c) => s + rec[c], 0);
    gitRows.push([
      'all git calls',
      ...results.flatMap((r) => [sumOf(r.backlog.git_first_ms_per_event).toFixed(3), sumOf(r.backlog.git_last_ms_per_event).toFixed(3)]),
      ...results.filter((r) => r.steady).map((r) => sumOf(r.steady!.git_ms_per_event).toFixed(3)),
    ]);
    gitRows.push([
      'rest (SQLite, JSON, loop)',
      ...results.flatMap((r) => [
        (r.backlog.first.mean_ms - sumOf(r.backlog.git_first_ms_per_event)).toFixed(3),
        (r.backlog.last.mean_ms - sumOf(r.backlog.git_last_ms_per_event)).toFixed(3),
      ]),
      ...results.filter((r) => r.steady).map((r) => (r.steady!.mean_ms - sumOf(r.steady!.git_ms_per_event)).toFixed(3)),
    ]);
    out.push(table(gitRows));
    out.push(
      `calls per event, events ${big.backlog.last.range} of the ${big.events} run: ` +
        GIT_CALLS.map((c) => `${c} ${big.backlog.git_last_calls_per_event[c].toFixed(2)}`).join(', '),
    );
    out.push('');
    out.push(`ratios of per-event cost, mean / p50 / CPU (flat ≈ 1.0; called flat when p50 and CPU are both ≤ ${FLAT_LIMIT}):`);
    const line = (label: string, r: { mean: number; p50: number; cpu: number }) =>
      out.push(`  ${label}: ${r.mean.toFixed(2)} / ${r.p50.toFixed(2)} / ${r.cpu.toFixed(2)}  ${flat(r) ? 'flat' : 'NOT flat'}`);
    line(`backlog, events ${big.backlog.last.range} of the ${big.events} run vs events ${small.backlog.first.range} of the ${small.events} run`, ratios.backlog_big_last_vs_small_first);
    line(`backlog, same ${big.events} run, events ${big.backlog.last.range} vs ${big.backlog.first.range}`, ratios.backlog_big_last_vs_big_first);
    if (ratios.steady_big_vs_small) line(`steady, one event + kick at history ${big.events} vs ${small.events}`, ratios.steady_big_vs_small);
    out.push(
      `  publishes only (p50), backlog events ${big.backlog.last.range} vs ${small.backlog.first.range}: ` +
        `${ratios.publish_p50_backlog_big_last_vs_small_first.toFixed(2)}  ${verdict(ratios.publish_p50_backlog_big_last_vs_small_first)}`,
    );
    if (Number.isFinite(ratios.publish_p50_steady_big_vs_small)) {
      out.push(`  publishes only (p50), steady at history ${big.events} vs ${small.events}: ${ratios.publish_p50_steady_big_vs_small.toFixed(2)}  ${verdict(ratios.publish_p50_steady_big_vs_small)}`);
    }
    out.push(`  rebuild per event, ${big.events} vs ${small.events}: ${ratios.rebuild_per_event_big_vs_small.toFixed(2)}  ${verdict(ratios.rebuild_per_event_big_vs_small)}`);
    out.push(`  clone: ${ratios.clone_s_per_1000_events.toFixed(3)} s per 1000 events (${big.events} events, ${big.repository.loose_objects} loose objects)`);
    if (failures.length > 0) {
      out.push('');
      out.push('FAILURES:');
      for (const f of failures) out.push(`  ${f}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  }
  process.exitCode = exitCode;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/lineage.ts: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
