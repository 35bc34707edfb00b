// The body of an analysis worker thread (started by analysis-pool.ts): runs
// the detectors over one file at a time. The file's bytes come from the main
// thread, which reads them from the chunk store; everything that parses
// happens here, off the event loop. The pool watches this thread's CPU time
// and kills it when a file's budget is spent; V8's heap limit
// (resourceLimits) and the check below bound its memory.
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../log.ts';
import type { FromWorker, ToWorker, WorkerSetup } from './analysis-pool.ts';
import { AnalysisStopped, analyzeFile } from './analyze.ts';
import { DETECTORS as BUILT_IN } from './index.ts';
import { cachedSource } from './sources.ts';
import { InvalidModelFileError, type Detector, type FileSource } from './types.ts';

const port = parentPort!;
const setup = workerData as WorkerSetup;
const { memoryBytes } = setup;
const DETECTORS: Detector[] = setup.detectors ? ((await import(setup.detectors)) as { DETECTORS: Detector[] }).DETECTORS : BUILT_IN;

// --expose-gc set at run time reaches contexts created afterwards (vm's).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

const log: Logger = {
  info: (msg, fields) => post({ op: 'log', level: 'info', msg, fields }),
  warn: (msg, fields) => post({ op: 'log', level: 'warn', msg, fields }),
  error: (msg, fields) => post({ op: 'log', level: 'error', msg, fields }),
};

/** Heap in use plus the buffers (file bytes, inflated members) this thread holds. */
function heldBytes(): number {
  const h = v8.getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}

interface Job {
  id: number;
  /** set once a budget is spent: a detector that swallows the error still ends `unknown` */
  stop?: AnalysisStopped;
}

let job: Job | undefined;
let nextRead = 1;
const reads = new Map<number, { resolve: (data: Uint8Array) => void; reject: (err: Error) => void }>();

function stop(j: Job, budget: AnalysisStopped['budget'], reason: string): AnalysisStopped {
  j.stop ??= new AnalysisStopped(budget, reason);
  return j.stop;
}

/**
 * Whether this thread holds more than an analysis may. Dead buffers count
 * until collected, and V8 frees a collected ArrayBuffer's memory on a
 * background thread a little later, taking it off its count only at its next
 * collection: so collect, then look again for a moment, each time after a
 * (cheap) young collection that brings the count up to date. Without that,
 * whether the count dropped in time depended on the heap's layout.
 */
async function overMemory(): Promise<number | undefined> {
  if (heldBytes() <= memoryBytes) return undefined;
  gc();
  for (let i = 0; i < 5; i++) {
    if (heldBytes() <= memoryBytes) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 10));
    gc({ type: 'minor' });
  }
  const held = heldBytes();
  return held > memoryBytes ? held : undefined;
}

/** The file, read through the main thread. */
function remoteSource(j: Job, path: string, size: number): FileSource {
  return {
    path,
    size,
    async read(offset, length) {
      if (j.stop) throw j.stop;
      // Checked here, between reads: that is where a detector's holdings grow.
      const held = await overMemory();
      if (held !== undefined) {
        throw stop(j, 'memory', `analysis stopped: it held ${mib(held)} MiB, more than the ${mib(memoryBytes)} MiB one analysis may use (CAIRN_ANALYSIS_MEMORY_MB)`);
      }
      if (j.stop) throw j.stop;
      const req = nextRead++;
      return new Promise<Uint8Array>((resolve, reject) => {
        reads.set(req, { resolve, reject });
        post({ op: 'read', job: j.id, req, offset, length });
      });
    },
  };
}

const mib = (n: number) => Math.ceil(n / 1024 / 1024);

async function analyze(request: Extract<ToWorker, { op: 'analyze' }>): Promise<void> {
  const j: Job = { id: request.job };
  job = j;
  let reply: FromWorker;
  try {
    const result = await analyzeFile(DETECTORS, cachedSource(remoteSource(j, request.path, request.size)), log);
    reply = j.stop ? { op: 'stopped', job: j.id, budget: j.stop.budget, reason: j.stop.message } : { op: 'done', job: j.id, result };
  } catch (err) {
    if (j.stop) reply = { op: 'stopped', job: j.id, budget: j.stop.budget, reason: j.stop.message };
    else if (err instanceof AnalysisStopped) reply = { op: 'stopped', job: j.id, budget: err.budget, reason: err.message };
    else if (err instanceof InvalidModelFileError) reply = { op: 'invalid', job: j.id, format: err.format, message: err.message };
    else reply = { op: 'stopped', job: j.id, budget: 'failed', reason: `analysis failed: ${(err as Error).message ?? String(err)}` };
  }
  job = undefined;
  for (const r of reads.values()) r.reject(new Error('analysis finished'));
  reads.clear();
  post(reply);
  // What this file left is garbage: collect it now if it is much (a worker
  // sits idle holding whatever it has), not after every file (~30 ms each).
  if (heldBytes() > memoryBytes / 4) gc();
}

port.on('message', (m: ToWorker) => {
  if (m.op === 'analyze') {
    void analyze(m);
    return;
  }
  const pending = reads.get(m.req);
  reads.delete(m.req);
  if (!pending) return;
  if ('data' in m) pending.resolve(m.data);
  else if (m.stop && job) pending.reject(stop(job, m.stop.budget, m.stop.reason));
  else pending.reject(new Error(m.error ?? 'read failed'));
});

post({ op: 'ready' });
