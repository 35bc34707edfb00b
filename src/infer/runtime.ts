// The ONNX Runtime side of the server: a few worker threads running
// session-worker.js. Every loaded version has a session in every worker;
// a run goes to the worker with the fewest runs queued. Input buffers are
// transferred to the worker and output buffers back, never copied. With no
// worker (`--workers 0`) the sessions live on the event loop instead: no
// thread hop per request (the lowest latency for small models), but each
// load and run holds the event loop for its whole length.
import { Worker } from 'node:worker_threads';
import type { SessionHost } from './session-host.js';
import { isElementType, type Tensor, type TensorData, type TensorSpec } from './tensors.ts';

export interface RuntimeOptions {
  /** worker threads, each holding a session of every loaded version (0: none, run on the event loop) */
  workers: number;
  /** ONNX Runtime intra-op threads per session (0: its default, one per core) */
  threads: number;
}

export interface SessionSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

type Reply = { id: number; ok: true; [field: string]: unknown } | { id: number; ok: false; message: string; unsupported?: boolean };

interface Slot {
  /** undefined: the event loop's own session host */
  worker?: Worker;
  pending: Map<number, { resolve: (r: Reply & { ok: true }) => void; reject: (e: Error) => void }>;
  dead?: Error;
}

/** A failure inside ONNX Runtime (a load or a run), with its message. */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
}

/** A model the runtime loads but the server cannot serve (inputs that are not tensors, element types it cannot feed) — or files without one. */
export class UnsupportedModelError extends Error {
  override readonly name = 'UnsupportedModelError';
}

function transferable(t: Tensor): { wire: Tensor; buffer?: ArrayBuffer } {
  if (Array.isArray(t.data)) return { wire: t };
  let data = t.data as Exclude<TensorData, string[]>;
  if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) data = data.slice() as typeof data;
  return { wire: { ...t, data }, buffer: data.buffer as ArrayBuffer };
}

function failure(err: unknown): Error {
  const e = err as Error & { unsupported?: boolean };
  return e?.unsupported ? new UnsupportedModelError(`unsupported: ${e.message}`) : new RuntimeError(e instanceof Error ? e.message : String(e));
}

export class InferenceRuntime {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  private host: SessionHost | undefined;

  private constructor(private readonly options: RuntimeOptions) {}

  static async start(options: RuntimeOptions): Promise<InferenceRuntime> {
    const runtime = new InferenceRuntime(options);
    if (options.workers === 0) {
      // loaded only here: with workers, the main thread never loads ONNX Runtime
      const { createSessionHost } = await import('./session-host.js');
      runtime.host = createSessionHost();
      runtime.slots.push({ pending: new Map() });
    } else {
      for (let i = 0; i < options.workers; i++) runtime.slots.push(runtime.spawn());
    }
    return runtime;
  }

  /** Runs that can go at once: one per worker (one on the event loop without workers). */
  get parallelRuns(): number {
    return this.slots.length;
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./session-worker.js', import.meta.url));
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (reply: Reply) => {
      const p = slot.pending.get(reply.id);
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0 && !this.closed) worker.unref();
      if (!p) return;
      if (reply.ok) p.resolve(reply);
      else p.reject(failure(Object.assign(new Error(reply.message), { unsupported: reply.unsupported })));
    });
    const lost = (err: Error) => {
      slot.dead ??= err;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new RuntimeError(`inference worker exited with code ${code}`)));
    return slot;
  }

  private send(slot: Slot, message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply & { ok: true }> {
    if (this.closed) return Promise.reject(new RuntimeError('the inference runtime is closed'));
    if (slot.dead) return Promise.reject(slot.dead);
    const id = this.nextId++;
    if (!slot.worker) return this.local(slot, id, message);
    const worker = slot.worker;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) worker.ref(); // work in flight keeps the process alive
      worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** The same request, answered by the event loop's session host. */
  private async local(slot: Slot, id: number, message: Record<string, unknown>): Promise<Reply & { ok: true }> {
    const host = this.host!;
    slot.pending.set(id, { resolve: () => {}, reject: () => {} }); // counted as queued, like a worker's
    try {
      const msg = message as never;
      const op = message.op;
      const reply = op === 'load' ? await host.load(msg) : op === 'run' ? (await host.run(msg)).reply : await host.release(msg);
      return { id, ok: true, ...reply };
    } catch (err) {
      throw failure(err);
    } finally {
      slot.pending.delete(id);
    }
  }

  /** Loads `path` under `key` in every worker; its inputs and outputs. */
  async load(key: string, path: string): Promise<SessionSignature> {
    const options = {
      intraOpNumThreads: this.options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // ONNX Runtime's threads spin between runs by default, burning the cores the HTTP side
      // needs (measured: silero 1.7 → 0.7 ms of CPU per run with 2 threads)
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    };
    const replies = await Promise.allSettled(this.slots.map((s) => this.send(s, { op: 'load', key, path, options })));
    const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.release(key);
      throw failed.reason;
    }
    const first = (replies[0] as PromiseFulfilledResult<Reply & { ok: true }>).value;
    const check = (specs: unknown): TensorSpec[] =>
      (specs as TensorSpec[]).map((s) => {
        if (!isElementType(s.type)) throw new UnsupportedModelError(`unsupported: '${s.name}' has element type ${s.type}, which the server cannot feed or return`);
        return s;
      });
    try {
      return { inputs: check(first.inputs), outputs: check(first.outputs) };
    } catch (err) {
      await this.release(key);
      throw err;
    }
  }

  /** One run on the least busy worker. */
  async run(key: string, feeds: Record<string, Tensor>, fetches?: string[]): Promise<Record<string, Tensor>> {
    const live = this.slots.filter((s) => !s.dead);
    if (live.length === 0) throw new RuntimeError('every inference worker has exited');
    let slot = live[0]!;
    for (const s of live) if (s.pending.size < slot.pending.size) slot = s;
    const wire: Record<string, Tensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      const { wire: w, buffer } = transferable(t);
      wire[name] = w;
      if (buffer) transfer.push(buffer);
    }
    const reply = await this.send(slot, { op: 'run', key, feeds: wire, fetches }, transfer);
    return reply.outputs as Record<string, Tensor>;
  }

  /** Frees the session in every worker. */
  async release(key: string): Promise<void> {
    await Promise.allSettled(this.slots.filter((s) => !s.dead).map((s) => this.send(s, { op: 'release', key })));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map((s) => {
        if (!s.worker) return undefined;
        s.worker.ref();
        return s.worker.terminate();
      }),
    );
  }
}
