// Format analysis off the event loop: a small pool of worker threads
// (analysis-thread.ts) runs the detectors, one file per
// worker at a time. The main thread only serves the workers' reads from the
// chunk store. Every analysis has budgets, and one that runs out of any of
// them is recorded `unknown` (stoppedAnalysis), never `safe`, never a 500:
// - CPU: the worker's busy time on one file (a worker over it is killed);
//   all names of the same content in one publish share one file's budget;
// - per publish: the CPU all its files may use; files left over are not analysed;
// - memory: V8's heap limit for the worker, and heap + buffers checked at each read;
// - reads: bytes one analysis may read, and no single read over 16 MiB.
// Within a publish, the same content under the same file name is analysed once.
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../log.ts';
import { startWorker } from '../start-worker.ts';
import { stoppedAnalysis, type AnalysisBudget } from './analyze.ts';
import type { FileFormat, FileSource } from './types.ts';

export interface AnalysisLimits {
  /** worker threads (CAIRN_ANALYSIS_WORKERS) */
  workers: number;
  /** CPU time one file's analysis may take (CAIRN_ANALYSIS_FILE_SECONDS) */
  fileCpuMs: number;
  /** CPU time all analyses of one publish may take (CAIRN_ANALYSIS_PUBLISH_SECONDS) */
  publishCpuMs: number;
  /** heap plus buffers one analysis may hold (CAIRN_ANALYSIS_MEMORY_MB) */
  memoryBytes: number;
  /** bytes one analysis may read from the file */
  readBytes: number;
  /** a module exporting DETECTORS to run instead of the built-in ones (tests) */
  detectors?: URL;
}

export const DEFAULT_ANALYSIS_LIMITS: Readonly<AnalysisLimits> = Object.freeze({
  // Analyses are CPU-bound: on a small machine, leave a core to the event
  // loop and the codec workers.
  workers: Math.max(1, Math.min(4, Math.floor(os.availableParallelism() / 2))),
  fileCpuMs: 30_000,
  publishCpuMs: 300_000,
  memoryBytes: 96 * 1024 * 1024,
  // Headers, directories and pickle opcode streams; never the tensor data.
  readBytes: 1024 * 1024 * 1024,
});

/** The FileSource contract: callers keep reads ≤ 16 MiB. */
const MAX_READ = 16 * 1024 * 1024;
/** A worker waiting on storage is not busy; a stuck one is still stopped after this many times its CPU budget. */
const WALL_FACTOR = 4;
const TICK_MS = 100;

// ---- messages (analysis-thread.ts is the other end) ------------------------

export interface WorkerSetup {
  memoryBytes: number;
  /** href of a module exporting DETECTORS (default: index.ts) */
  detectors?: string;
}

export type ToWorker =
  | { op: 'analyze'; job: number; path: string; size: number }
  | { op: 'read'; req: number; data: Uint8Array }
  | { op: 'read'; req: number; error?: string; stop?: { budget: AnalysisBudget; reason: string } };

export type FromWorker =
  | { op: 'ready' }
  | { op: 'read'; job: number; req: number; offset: number; length: number }
  | { op: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { op: 'done'; job: number; result: FileFormat }
  | { op: 'invalid'; job: number; format: string; message: string }
  | { op: 'stopped'; job: number; budget: AnalysisBudget; reason: string };

// ---- outcomes ----------------------------------------------------------------

type Ending = { kind: 'done'; result: FileFormat } | { kind: 'invalid'; format: string; message: string } | { kind: 'stopped'; budget: AnalysisBudget; reason: string };
/** how an analysis ended, and the CPU time it took */
type Outcome = Ending & { cpuMs: number };

/** A file of the version claims a format and is broken (the publish is refused: 422). */
export class InvalidVersionFileError extends Error {
  constructor(
    readonly path: string,
    readonly format: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidVersionFileError';
  }
}

export interface FileToAnalyze {
  /** the path inside the version */
  path: string;
  digest: string;
  size: number;
  /** the stored bytes (opened when the analysis starts) */
  open(): FileSource;
}

export interface AnalysisStats {
  /** analyses run in a worker */
  analyses: number;
  /** analyses (or files) stopped, by budget */
  stopped: Partial<Record<AnalysisBudget, number>>;
}

interface Job {
  name: string;
  size: number;
  open: () => FileSource;
  /** CPU time it may take, whose budget that is, and why (for the record) */
  cpuLimit: { ms: number; budget: 'cpu' | 'publish'; why: string };
  cancelled: () => boolean;
  resolve: (outcome: Outcome) => void;
}

interface Running {
  job: Job;
  id: number;
  source: FileSource;
  startedAt: number;
  eluBase: ReturnType<Worker['performance']['eventLoopUtilization']>;
  readBytes: number;
  /** CPU time at the last look (a worker that has exited reports none) */
  cpuMs: number;
  /** why the pool is killing this worker */
  killedFor?: { budget: AnalysisBudget; reason: string };
}

interface Slot {
  worker: Worker;
  ready: boolean;
  running?: Running;
  /** terminated or exited: no new work, gone from `slots` once exited */
  dead: boolean;
}

/** The name a detector sees: the file name, not its directory (so identical files in several directories are analysed once). */
function fileName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

const seconds = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
const mib = (n: number) => Math.ceil(n / 1024 / 1024);

export class AnalysisPool {
  private readonly limits: AnalysisLimits;
  private readonly log: Logger | undefined;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private ticker: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counts: AnalysisStats = { analyses: 0, stopped: {} };

  constructor(limits: Partial<AnalysisLimits> = {}, log?: Logger) {
    this.limits = { ...DEFAULT_ANALYSIS_LIMITS, ...limits };
    this.log = log;
  }

  stats(): AnalysisStats {
    return { analyses: this.counts.analyses, stopped: { ...this.counts.stopped } };
  }

  /**
   * Analyses every file of a version, in order. Throws InvalidVersionFileError
   * for the first file that claims a format and is broken; a file that runs
   * out of a budget is `unknown` with the reason in details.analysis_stopped.
   */
  async analyzeVersion(files: FileToAnalyze[]): Promise<Array<{ path: string; analysis: FileFormat }>> {
    const publish = { spentMs: 0, failed: false };
    const byKey = new Map<string, Promise<Outcome>>();
    const byDigest = new Map<string, { spentMs: number; stop?: Outcome & { kind: 'stopped' }; tail: Promise<unknown>; firstPath: string }>();

    const fileBudget = `the ${seconds(this.limits.fileCpuMs)} s of CPU one file may take (CAIRN_ANALYSIS_FILE_SECONDS)`;
    const publishBudget = `the ${seconds(this.limits.publishCpuMs)} s of CPU one publish may take (CAIRN_ANALYSIS_PUBLISH_SECONDS)`;

    const analyzeOne = async (file: FileToAnalyze, content: NonNullable<ReturnType<typeof byDigest.get>>): Promise<Outcome> => {
      if (content.stop) {
        return { ...content.stop, reason: `${content.stop.reason} (the same content as ${content.firstPath})`, cpuMs: 0 };
      }
      const sharedBudget = `the same content, also published as ${content.firstPath}, used up ${fileBudget}`;
      const publishLeft = this.limits.publishCpuMs - publish.spentMs;
      if (publishLeft <= 0) return { kind: 'stopped', budget: 'publish', cpuMs: 0, reason: `not analysed: the files before it used up ${publishBudget}` };
      const contentLeft = this.limits.fileCpuMs - content.spentMs;
      if (contentLeft <= 0) return { kind: 'stopped', budget: 'cpu', cpuMs: 0, reason: `not analysed: ${sharedBudget}` };
      const outcome = await this.run({
        name: fileName(file.path),
        size: file.size,
        open: file.open,
        cpuLimit:
          publishLeft < contentLeft
            ? { ms: publishLeft, budget: 'publish', why: `the publish used up ${publishBudget}` }
            : { ms: contentLeft, budget: 'cpu', why: content.spentMs > 0 ? sharedBudget : `it used up ${fileBudget}` },
        cancelled: () => publish.failed,
      });
      content.spentMs += outcome.cpuMs;
      publish.spentMs += outcome.cpuMs;
      if (outcome.kind === 'stopped' && outcome.budget !== 'publish') content.stop = outcome;
      return outcome;
    };

    const outcomeOf = (file: FileToAnalyze): Promise<Outcome> => {
      const key = `${file.digest}\0${fileName(file.path)}`;
      let p = byKey.get(key);
      if (p) return p;
      let content = byDigest.get(file.digest);
      if (!content) {
        content = { spentMs: 0, tail: Promise.resolve(), firstPath: file.path };
        byDigest.set(file.digest, content);
      }
      // Names of the same content run one after another, sharing its budget.
      const c = content;
      p = c.tail.then(() => analyzeOne(file, c));
      c.tail = p.catch(() => {});
      byKey.set(key, p);
      return p;
    };

    const out: Array<{ path: string; analysis: FileFormat }> = new Array(files.length);
    let next = 0;
    const runner = async () => {
      while (next < files.length && !publish.failed) {
        const i = next++;
        const file = files[i]!;
        const outcome = await outcomeOf(file);
        if (outcome.kind === 'invalid') {
          publish.failed = true;
          throw new InvalidVersionFileError(file.path, outcome.format, outcome.message);
        }
        out[i] = { path: file.path, analysis: outcome.kind === 'done' ? outcome.result : this.stopped(file.path, outcome) };
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(files.length, this.limits.workers) }, runner));
    } catch (err) {
      publish.failed = true; // queued files of this publish are dropped
      throw err;
    }
    return out;
  }

  private stopped(path: string, outcome: Outcome & { kind: 'stopped' }): FileFormat {
    this.counts.stopped[outcome.budget] = (this.counts.stopped[outcome.budget] ?? 0) + 1;
    this.log?.warn('format analysis stopped', { path, budget: outcome.budget, reason: outcome.reason });
    return stoppedAnalysis(outcome.budget, outcome.reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve({ kind: 'stopped', budget: 'failed', reason: 'analysis failed: the server is shutting down', cpuMs: 0 });
    if (this.ticker) clearInterval(this.ticker);
    await Promise.all(
      this.slots.map((s) => {
        s.worker.ref();
        return s.worker.terminate();
      }),
    );
  }

  // ---- scheduling -----------------------------------------------------------

  private run(job: Omit<Job, 'resolve'>): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      if (this.closed) {
        resolve({ kind: 'stopped', budget: 'failed', reason: 'analysis failed: the server is shutting down', cpuMs: 0 });
        return;
      }
      this.queue.push({ ...job, resolve });
      this.pump();
    });
  }

  /** Starts queued jobs on idle workers; spawns workers up to the pool's size. */
  private pump(): void {
    while (this.queue.length > 0) {
      const job = this.queue[0]!;
      if (job.cancelled()) {
        this.queue.shift();
        job.resolve({ kind: 'stopped', budget: 'failed', reason: 'not analysed: another file of the publish was refused', cpuMs: 0 });
        continue;
      }
      let slot = this.slots.find((s) => s.ready && !s.dead && !s.running);
      if (!slot) {
        // A dying worker still holds its memory: it counts until it has exited.
        if (this.slots.length < this.limits.workers) this.spawn();
        return;
      }
      this.queue.shift();
      this.start(slot, job);
    }
  }

  private start(slot: Slot, job: Job): void {
    let source: FileSource;
    try {
      source = job.open();
    } catch (err) {
      job.resolve({ kind: 'stopped', budget: 'failed', reason: `analysis failed: ${(err as Error).message}`, cpuMs: 0 });
      return;
    }
    const id = this.nextId++;
    slot.running = { job, id, source, startedAt: performance.now(), eluBase: slot.worker.performance.eventLoopUtilization(), readBytes: 0, cpuMs: 0 };
    slot.worker.ref(); // keep the process alive while work is in flight
    this.counts.analyses++;
    this.ticker ??= setInterval(() => this.tick(), TICK_MS);
    slot.worker.postMessage({ op: 'analyze', job: id, path: job.name, size: source.size } satisfies ToWorker);
  }

  /** CPU time the worker has spent on its current file (busy time of its event loop). */
  private cpuMs(slot: Slot, running: Running): number {
    if (!slot.dead) running.cpuMs = Math.max(running.cpuMs, slot.worker.performance.eventLoopUtilization(running.eluBase).active);
    return running.cpuMs;
  }

  private tick(): void {
    let busy = false;
    for (const slot of this.slots) {
      const running = slot.running;
      if (!running || running.killedFor) continue;
      busy = true;
      const cpu = this.cpuMs(slot, running);
      const wall = performance.now() - running.startedAt;
      const limit = running.job.cpuLimit;
      if (cpu > limit.ms) {
        this.kill(slot, limit.budget, `analysis stopped after ${seconds(cpu)} s of CPU: ${limit.why}`);
      } else if (wall > limit.ms * WALL_FACTOR + 10_000) {
        this.kill(slot, 'read', `analysis stopped after ${seconds(wall)} s: its reads from storage were too slow`);
      }
    }
    if (!busy && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private kill(slot: Slot, budget: AnalysisBudget, reason: string): void {
    if (!slot.running || slot.dead) return;
    slot.running.killedFor = { budget, reason };
    slot.dead = true;
    void slot.worker.terminate(); // 'exit' finishes the job
  }

  private finish(slot: Slot, ending: Ending): void {
    const running = slot.running;
    if (!running) return;
    const cpuMs = this.cpuMs(slot, running);
    slot.running = undefined;
    if (!this.closed) slot.worker.unref();
    running.job.resolve({ ...ending, cpuMs });
    this.pump();
  }

  private spawn(): void {
    const memoryMb = mib(this.limits.memoryBytes);
    const worker = startWorker(import.meta.url, 'analysis-thread', {
      workerData: { memoryBytes: this.limits.memoryBytes, detectors: this.limits.detectors?.href } satisfies WorkerSetup,
      // The hard stop for what one header can make the server allocate: a
      // worker over its heap is killed (ERR_WORKER_OUT_OF_MEMORY), the server is not.
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: 4 },
    });
    // Referenced while it starts (a job waits for it) and while it works; idle, it must not keep the process alive.
    const slot: Slot = { worker, ready: false, dead: false };
    this.slots.push(slot);
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    let error: Error | undefined;
    worker.on('error', (err) => {
      error = err;
    });
    worker.on('exit', (code) => {
      slot.dead = true;
      const at = this.slots.indexOf(slot);
      if (at >= 0) this.slots.splice(at, 1);
      if (!slot.ready && !this.closed) {
        // It could not even start (a broken install): fail what waits rather than respawn in a loop.
        this.log?.error('analysis worker failed to start', { error: error?.stack ?? `exit code ${code}` });
        const reason = `analysis failed: the analysis worker could not start (${error?.message ?? `exit code ${code}`})`;
        for (const job of this.queue.splice(0)) job.resolve({ kind: 'stopped', budget: 'failed', reason, cpuMs: 0 });
        return;
      }
      const running = slot.running;
      if (running) {
        const oom = (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        const why = running.killedFor ??
          (oom
            ? { budget: 'memory' as const, reason: `analysis stopped: it needed more than the ${memoryMb} MiB of heap one analysis may use (CAIRN_ANALYSIS_MEMORY_MB)` }
            : { budget: 'failed' as const, reason: `analysis failed: the worker exited (${error?.message ?? `code ${code}`})` });
        if (!running.killedFor && !oom) this.log?.error('analysis worker failed', { error: error?.stack ?? `exit code ${code}` });
        this.finish(slot, { kind: 'stopped', ...why });
      } else if (error && !this.closed) {
        this.log?.error('analysis worker failed', { error: error.stack ?? String(error) });
      }
      if (!this.closed) this.pump();
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.op) {
      case 'ready':
        slot.ready = true;
        this.pump();
        if (!slot.running) slot.worker.unref();
        return;
      case 'log':
        this.log?.[m.level](m.msg, m.fields);
        return;
      case 'read':
        this.serveRead(slot, m);
        return;
      case 'done':
        if (slot.running?.id === m.job) this.finish(slot, { kind: 'done', result: m.result });
        return;
      case 'invalid':
        if (slot.running?.id === m.job) this.finish(slot, { kind: 'invalid', format: m.format, message: m.message });
        return;
      case 'stopped':
        if (slot.running?.id === m.job) this.finish(slot, { kind: 'stopped', budget: m.budget, reason: m.reason });
        return;
    }
  }

  private serveRead(slot: Slot, m: Extract<FromWorker, { op: 'read' }>): void {
    const running = slot.running;
    if (!running || running.id !== m.job) return;
    const reply = (message: ToWorker, transfer: ArrayBuffer[] = []) => {
      if (slot.running === running && !slot.dead) slot.worker.postMessage(message, transfer);
    };
    const { offset, length } = m;
    const size = running.source.size;
    const bytes = Math.max(0, Math.min(offset + length, size) - offset);
    if (length > MAX_READ) {
      reply({ op: 'read', req: m.req, stop: { budget: 'read', reason: `analysis stopped: a read of ${length} bytes, more than the ${mib(MAX_READ)} MiB a detector may read at once` } });
      return;
    }
    if (running.readBytes + bytes > this.limits.readBytes) {
      reply({ op: 'read', req: m.req, stop: { budget: 'read', reason: `analysis stopped: it read more than the ${mib(this.limits.readBytes)} MiB of the file one analysis may read` } });
      return;
    }
    running.readBytes += bytes;
    running.source.read(offset, length).then(
      (data) => {
        // The buffer moves to the worker; one shared with anything else is copied first.
        const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data : new Uint8Array(data);
        reply({ op: 'read', req: m.req, data: own }, [own.buffer as ArrayBuffer]);
      },
      (err: Error) => reply({ op: 'read', req: m.req, error: err.message }),
    );
  }
}
