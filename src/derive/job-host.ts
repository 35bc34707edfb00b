// One derivation in a worker thread (job-thread.ts): the
// transforms and ONNX Runtime's measurement are CPU-bound JavaScript and
// native code that would hold the event loop for tens to hundreds of
// milliseconds at a time (ONNX Runtime's run() is synchronous), so they run
// there. This thread only moves bytes: it serves the worker's reads from the
// sources it is given and streams the worker's output into `store`, with a
// bounded window of batches in flight (backpressure both ways).
import { CairnError, type ErrorCode } from '../errors.ts';
import { startWorker } from '../start-worker.ts';
import type { FileSource } from '../formats/types.ts';
import type { DeriveParams, DeriveReport } from './index.ts';
import type { GenerateSamples, OnnxMeasurement } from './onnx-measure.ts';
import type { SafetensorsRoundTrip } from './safetensors-measure.ts';

export interface DeriveFileSpec {
  path: string;
  format: 'onnx' | 'safetensors';
  size: number;
}

/** What the worker is asked to do. */
export interface DeriveSpec {
  params: DeriveParams;
  /** the parent files to transform, in order (their index names them in messages) */
  files: DeriveFileSpec[];
  /** ONNX inputs: a safetensors samples file of the parent, or how to generate them */
  samples: { file: { path: string; size: number } } | { generate: GenerateSamples };
  /** timed runs per model and sample */
  repeat: number;
  /** a directory of its own, where ONNX Runtime's model files are written */
  scratchDir: string;
}

export type SourceRef = { kind: 'parent' | 'derived'; file: number } | { kind: 'samples' };

export interface ErrorInfo {
  code?: string;
  message: string;
}

export type ToThread =
  | { op: 'read'; req: number; data?: Uint8Array; error?: ErrorInfo }
  /** one output batch taken by the store */
  | { op: 'ack'; file: number }
  /** the output of `file` is stored: readable as `derived` */
  | { op: 'stored'; file: number };

export type FromThread =
  | { op: 'read'; req: number; source: SourceRef; offset: number; length: number }
  | { op: 'begin'; file: number; size: number }
  | { op: 'bytes'; file: number; data: Uint8Array }
  | { op: 'end'; file: number; report: DeriveReport }
  | { op: 'phase'; phase: 'transform' | 'measure'; file: number }
  | { op: 'measured'; file: number; measured: OnnxMeasurement | SafetensorsRoundTrip }
  | { op: 'done' }
  | { op: 'failed'; error: ErrorInfo };

/** Output batches in flight per file: what the worker may send before the store has taken them. */
export const OUTPUT_WINDOW = 4;

export interface FileOutcome {
  report: DeriveReport;
  measured: OnnxMeasurement | SafetensorsRoundTrip;
}

export interface DeriveIo {
  /** random access to a parent file, a stored output (after `store` resolved), or the samples file */
  source(ref: SourceRef): FileSource;
  /** stores output `file`; resolves once stored (then `source({kind: 'derived', file})` reads it back) */
  store(file: number, bytes: AsyncIterable<Uint8Array>, size: number): Promise<void>;
  /** a phase begins for a file */
  phase(phase: 'transform' | 'measure', file: number): void;
  /** output bytes of `file` taken by the store so far */
  written(file: number, bytes: number, size: number): void;
}

/** The run was stopped from outside (a shutdown): the job goes back to the queue. */
export class DeriveCancelled extends Error {
  constructor() {
    super('derive: stopped (the server is shutting down)');
    this.name = 'DeriveCancelled';
  }
}

/** Bytes handed from one side to the other, consumed as an async iterable (one consumer). */
class Inbox implements AsyncIterable<Uint8Array> {
  private readonly items: Uint8Array[] = [];
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly onTake: (n: number) => void) {}

  push(data: Uint8Array): void {
    this.items.push(data);
    this.poke();
  }

  end(): void {
    this.ended = true;
    this.poke();
  }

  fail(err: Error): void {
    this.error = err;
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.error) throw this.error;
      const next = this.items.shift();
      if (next) {
        this.onTake(next.byteLength);
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
}

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof CairnError) return { code: err.code, message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

/** A CairnError again from what crossed the thread boundary (a bug's error becomes INTERNAL, with its message). */
export function fromErrorInfo(e: ErrorInfo): CairnError {
  return new CairnError((e.code ?? 'INTERNAL') as ErrorCode, e.message);
}

export interface DeriveRun {
  /** the transform's report and the measurement, per file */
  result: Promise<FileOutcome[]>;
  /** stops the worker; `result` rejects with DeriveCancelled */
  cancel(): Promise<void>;
}

/** Starts a derivation in a new worker thread. */
export function runDerivation(spec: DeriveSpec, io: DeriveIo): DeriveRun {
  const worker = startWorker(import.meta.url, 'job-thread', { workerData: spec });
  const outcomes: Array<Partial<FileOutcome>> = spec.files.map(() => ({}));
  const sources = new Map<string, FileSource>();
  const inboxes = new Map<number, Inbox>();
  let settled = false;
  let resolveRun!: (v: FileOutcome[]) => void;
  let rejectRun!: (e: Error) => void;
  const result = new Promise<FileOutcome[]>((resolve, reject) => {
    resolveRun = resolve;
    rejectRun = reject;
  });
  result.catch(() => {});
  const post = (m: ToThread, transfer: ArrayBuffer[] = []) => {
    if (!settled) worker.postMessage(m, transfer);
  };
  const finish = (err: Error | undefined) => {
    if (settled) return;
    settled = true;
    for (const inbox of inboxes.values()) inbox.fail(err ?? new Error('derive: finished'));
    void worker.terminate();
    if (err) rejectRun(err);
    else resolveRun(outcomes as FileOutcome[]);
  };
  const sourceOf = (ref: SourceRef): FileSource => {
    const key = ref.kind === 'samples' ? 'samples' : `${ref.kind}:${ref.file}`;
    let s = sources.get(key);
    if (!s) {
      s = io.source(ref);
      sources.set(key, s);
    }
    return s;
  };

  worker.on('message', (m: FromThread) => {
    if (settled) return;
    switch (m.op) {
      case 'read': {
        let source: FileSource;
        try {
          source = sourceOf(m.source);
        } catch (err) {
          post({ op: 'read', req: m.req, error: errorInfo(err) });
          return;
        }
        source.read(m.offset, m.length).then(
          (bytes) => {
            const data = owned(bytes);
            post({ op: 'read', req: m.req, data }, [data.buffer as ArrayBuffer]);
          },
          (err: unknown) => post({ op: 'read', req: m.req, error: errorInfo(err) }),
        );
        return;
      }
      case 'begin': {
        let written = 0;
        const file = m.file;
        const inbox = new Inbox((n) => {
          written += n;
          io.written(file, written, m.size);
          post({ op: 'ack', file });
        });
        inboxes.set(file, inbox);
        io.store(file, inbox, m.size).then(
          () => post({ op: 'stored', file }),
          (err: Error) => finish(err),
        );
        return;
      }
      case 'bytes':
        inboxes.get(m.file)?.push(m.data);
        return;
      case 'end':
        outcomes[m.file]!.report = m.report;
        inboxes.get(m.file)?.end();
        return;
      case 'phase':
        io.phase(m.phase, m.file);
        return;
      case 'measured':
        outcomes[m.file]!.measured = m.measured;
        return;
      case 'done':
        finish(undefined);
        return;
      case 'failed':
        finish(fromErrorInfo(m.error));
        return;
    }
  });
  worker.on('error', (err) => finish(new CairnError('INTERNAL', `the derive worker failed: ${err.message}`)));
  worker.on('exit', (code) => finish(new CairnError('INTERNAL', `the derive worker stopped (exit code ${code})`)));
  return {
    result,
    async cancel() {
      finish(new DeriveCancelled());
      await worker.terminate();
    },
  };
}
