// The ONNX Runtime side of the server: a few worker threads running
// session-worker.js. Every loaded version has a session in every worker;
// a run goes to the worker with the fewest runs queued. Input buffers are
// transferred to the worker and output buffers back, never copied.
import { Worker } from 'node:worker_threads';
import { isElementType, type Tensor, type TensorData, type TensorSpec } from './tensors.ts';

export interface RuntimeOptions {
  /** worker threads, each holding a session of every loaded version */
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
  worker: Worker;
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

export class InferenceRuntime {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: RuntimeOptions) {
    for (let i = 0; i < Math.max(1, options.workers); i++) this.slots.push(this.spawn());
  }

  get workers(): number {
    return this.slots.length;
  }

  /** Runs queued across all workers. */
  get queued(): number {
    return this.slots.reduce((n, s) => n + s.pending.size, 0);
  }

  /** Whether some worker has nothing to do. */
  get hasIdleWorker(): boolean {
    return this.slots.some((s) => !s.dead && s.pending.size === 0);
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
      else p.reject(reply.unsupported ? new UnsupportedModelError(`unsupported: ${reply.message}`) : new RuntimeError(reply.message));
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
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref(); // work in flight keeps the process alive
      slot.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Loads `path` under `key` in every worker; its inputs and outputs. */
  async load(key: string, path: string): Promise<SessionSignature> {
    const options = { intraOpNumThreads: this.options.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
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
        s.worker.ref();
        return s.worker.terminate();
      }),
    );
  }
}
