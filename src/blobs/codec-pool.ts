// A small pool of worker threads running codec-worker.js. Buffers are
// transferred, not copied, in both directions. A worker that dies fails only
// the task it was running and is replaced.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ChunkHint, CodecName, EncodedChunk } from './codec.ts';
import { ChunkCorruptError } from './codec.ts';

type CodecRequest =
  | { id: number; op: 'encode'; data: Uint8Array; hint?: ChunkHint }
  | { id: number; op: 'decode'; data: Uint8Array; digest: string };

type CodecReply =
  | { id: number; ok: true; op: 'encode'; digest: string; codec: string; rawSize: number; stored: Uint8Array }
  | { id: number; ok: true; op: 'decode'; raw: Uint8Array }
  | { id: number; ok: false; corrupt: boolean; message: string };

type Pending = { resolve: (reply: CodecReply) => void; reject: (err: Error) => void };
type Job = { request: CodecRequest; transfer: ArrayBuffer[]; pending: Pending };

/** An ArrayBuffer holding exactly these bytes, safe to transfer away. */
function ownBuffer(data: Uint8Array): Uint8Array {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)) {
    return data;
  }
  return new Uint8Array(data);
}

export class CodecPool {
  private readonly size: number;
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, os.availableParallelism())) {
    this.size = size;
  }

  /** Hash and compress; `hint` describes the data (element width, see ChunkHint) when known. */
  encode(data: Uint8Array, hint?: ChunkHint): Promise<EncodedChunk> {
    const own = ownBuffer(data);
    return this.run({ id: this.nextId++, op: 'encode', data: own, ...(hint ? { hint } : {}) }, [own.buffer as ArrayBuffer]).then((reply) => {
      if (!reply.ok || reply.op !== 'encode') throw new Error('codec worker: unexpected reply');
      return { digest: reply.digest, codec: reply.codec as CodecName, rawSize: reply.rawSize, stored: reply.stored };
    });
  }

  /** Decompress and verify against `digest`; rejects with ChunkCorruptError on any mismatch. */
  decode(stored: Uint8Array, digest: string): Promise<Uint8Array> {
    const own = ownBuffer(stored);
    return this.run({ id: this.nextId++, op: 'decode', data: own, digest }, [own.buffer as ArrayBuffer]).then((reply) => {
      if (!reply.ok || reply.op !== 'decode') throw new Error('codec worker: unexpected reply');
      return reply.raw;
    });
  }

  private run(request: CodecRequest, transfer: ArrayBuffer[]): Promise<CodecReply> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    return new Promise<CodecReply>((resolve, reject) => {
      this.queue.push({ request, transfer, pending: { resolve, reject } });
      this.pump();
    }).then((reply) => {
      if (!reply.ok) throw reply.corrupt ? new ChunkCorruptError(reply.message) : new Error(`codec worker: ${reply.message}`);
      return reply;
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let worker = this.idle.pop();
      if (!worker && this.all.size < this.size) worker = this.spawn();
      if (!worker) return;
      const job = this.queue.shift()!;
      this.busy.set(worker, job.pending);
      worker.ref(); // keep the process alive while a job is in flight
      worker.postMessage(job.request, job.transfer);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./codec-worker.js', import.meta.url), {
      // Workers handle multi-MiB buffers; a small young generation makes V8
      // collect them promptly instead of letting each worker's heap grow.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    worker.unref();
    this.all.add(worker);
    worker.on('message', (reply: CodecReply) => {
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      pending?.resolve(reply);
      this.pump();
    });
    const lost = (err: Error) => {
      if (!this.all.delete(worker)) return;
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      pending?.reject(err);
      if (!this.closed) this.pump();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`codec worker exited with code ${code}`)));
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.pending.reject(new Error('codec pool is closed'));
    await Promise.all([...this.all].map((w) => w.terminate()));
  }
}
