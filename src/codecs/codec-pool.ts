// A small pool of worker threads running codec-worker.ts: chunking (with the
// hashes that go with it), compression, decompression and verification all
// happen there, never on the event loop. Buffers are transferred, not copied,
// in both directions. Several requests may be queued on one worker; a stream
// (one upload being chunked) and a running hash stay on the worker that holds
// their state. A worker that dies fails only the requests it held and is
// replaced on demand (the running hashes it held are lost).
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../start-worker.ts';
import type { ChunkerOptions } from './chunker.ts';
import type { ChunkHint, CodecName, EncodedChunk } from './codec.ts';
import { ChunkCorruptError } from './codec.ts';
import type { CodecReply as Reply } from './codec-worker.ts';

/** An object checked by CodecPool.verify: its raw bytes, and the object with its hex sha256. */
export interface VerifiedObject {
  raw: Uint8Array;
  stored: Uint8Array;
  storedSha256: string;
}

/** A chunk cut by a stream, with the sha256 of its bytes. */
export interface RawChunk {
  data: Uint8Array;
  digest: string;
}

type Pending = { resolve: (reply: Reply & { ok: true }) => void; reject: (err: Error) => void };

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** An ArrayBuffer holding exactly these bytes, safe to transfer away. */
function ownBuffer(data: Uint8Array): Uint8Array {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)) {
    return data;
  }
  return new Uint8Array(data);
}

const noop = () => {};

/**
 * A sha256 kept running in one worker across several streams: the content of
 * an upload session, whose requests each store a stream. Whoever holds it
 * (the registry's upload sessions) passes it to each stream and asks it for
 * the digest at the end; it lives until dropped.
 */
export class RunningHash {
  constructor(
    private readonly pool: CodecPool,
    /** @internal (CodecPool) the worker holding it */
    public slot: Slot,
    /** @internal (CodecPool) its key in that worker */
    readonly key: number,
  ) {}

  /** The digest of the bytes it has seen, and how many; undefined when lost (its worker exited, or it missed bytes). */
  async digest(): Promise<{ digest: string; size: number } | undefined> {
    if (!this.pool.holds(this.slot)) return undefined;
    const r = await this.pool.send(this.slot, { op: 'hash-digest', key: this.key }, []);
    return r.missing ? undefined : { digest: r.digest as string, size: r.size as number };
  }

  /**
   * Feeds it the bytes at offset `at` of the content (transferred: `data` is
   * unusable afterwards). Updates are applied in the order they are called;
   * one that does not continue exactly where the hash stands loses it.
   */
  update(data: Uint8Array, at: number): Promise<void> {
    if (!this.pool.holds(this.slot)) return Promise.resolve();
    const own = ownBuffer(data);
    return this.pool.send(this.slot, { op: 'hash-update', key: this.key, at, data: own }, [own.buffer as ArrayBuffer]).then(noop);
  }

  /** Frees it in its worker. */
  drop(): void {
    if (this.pool.holds(this.slot)) this.pool.send(this.slot, { op: 'hash-drop', key: this.key }, []).catch(noop);
  }
}

/**
 * One byte stream being cut into content-defined chunks in a worker. Feed it
 * in order; each feed resolves with the chunks it completed. The worker also
 * hashes the whole stream (and feeds a running hash, when opened with one).
 */
export class ChunkStream {
  constructor(
    private readonly pool: CodecPool,
    private readonly slot: Slot,
    private readonly id: number,
  ) {}

  feed(data: Uint8Array): Promise<RawChunk[]> {
    const own = ownBuffer(data);
    return this.pool.send(this.slot, { op: 'stream-feed', stream: this.id, data: own }, [own.buffer as ArrayBuffer]).then((r) => r.chunks as RawChunk[]);
  }

  /** The last chunks, and the digest and size of everything fed. */
  end(): Promise<{ chunks: RawChunk[]; digest: string; size: number }> {
    return this.pool.send(this.slot, { op: 'stream-end', stream: this.id }, []).then((r) => ({
      chunks: r.chunks as RawChunk[],
      digest: r.digest as string,
      size: r.size as number,
    }));
  }

  abort(): void {
    this.pool.send(this.slot, { op: 'stream-abort', stream: this.id }, []).catch(noop);
  }
}

export class CodecPool {
  private readonly size: number;
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, os.availableParallelism())) {
    this.size = size;
  }

  /**
   * Hash and compress; `hint` describes the data (element width, see
   * ChunkHint) when known, `digest` is the chunk's sha256 when known.
   */
  encode(data: Uint8Array, hint?: ChunkHint, digest?: string): Promise<EncodedChunk> {
    const own = ownBuffer(data);
    const request = { op: 'encode', data: own, ...(hint ? { hint } : {}), ...(digest ? { digest } : {}) };
    return this.send(undefined, request, [own.buffer as ArrayBuffer]).then((r) => ({
      digest: r.digest as string,
      codec: r.codec as CodecName,
      rawSize: r.rawSize as number,
      stored: r.stored as Uint8Array,
      storedSha256: r.storedSha256 as string,
    }));
  }

  /** Decompress and verify against `digest`; rejects with ChunkCorruptError on any mismatch. */
  decode(stored: Uint8Array, digest: string): Promise<Uint8Array> {
    const own = ownBuffer(stored);
    return this.send(undefined, { op: 'decode', data: own, digest }, [own.buffer as ArrayBuffer]).then((r) => r.raw as Uint8Array);
  }

  /**
   * Verifies an object from an untrusted source: its headers must declare
   * exactly `size` raw bytes (checked before decoding: no bomb is inflated)
   * and they must hash to `digest`. Resolves with the raw bytes and the
   * object itself (transferred there and back) with its own sha256.
   */
  verify(stored: Uint8Array, digest: string, size: number): Promise<VerifiedObject> {
    const own = ownBuffer(stored);
    return this.send(undefined, { op: 'decode', data: own, digest, size, keep: true }, [own.buffer as ArrayBuffer]).then((r) => ({
      raw: r.raw as Uint8Array,
      stored: r.stored as Uint8Array,
      storedSha256: r.storedSha256 as string,
    }));
  }

  /** A new running hash (see RunningHash), on the least busy worker; it starts with the first stream that feeds it. */
  runningHash(): RunningHash {
    if (this.closed) throw new Error('codec pool is closed');
    return new RunningHash(this, this.pick(), this.nextId++);
  }

  /**
   * Opens a chunking stream whose first byte is at stream offset `start`
   * (default 0); `cuts` are forced cut offsets (tensor boundaries). With
   * `hash`, the stream runs on that running hash's worker and feeds it too —
   * when it has seen exactly `hash.at` bytes (a fresh one when `at` is 0);
   * otherwise it is lost (its digest reports nothing). The first
   * `hash.replay` bytes fed are bytes it has already seen: they are chunked,
   * not hashed again.
   */
  openStream(
    chunking: ChunkerOptions,
    options: { start?: number; cuts?: readonly number[]; hash?: { running: RunningHash; at: number; replay?: number } } = {},
  ): ChunkStream {
    if (this.closed) throw new Error('codec pool is closed');
    const { start, cuts, hash } = options;
    // A running hash whose worker has exited is lost (the stream goes anywhere,
    // unhashed) — unless it starts again from the first byte.
    if (hash && hash.at === 0 && !this.holds(hash.running.slot)) hash.running.slot = this.pick();
    const kept = hash && this.holds(hash.running.slot) ? hash : undefined;
    const slot = kept ? kept.running.slot : this.pick();
    const id = this.nextId++;
    const request = {
      op: 'stream-open',
      stream: id,
      chunking: { ...chunking },
      start,
      ...(cuts ? { cuts: [...cuts] } : {}),
      ...(kept ? { hash: { key: kept.running.key, at: kept.at, replay: kept.replay } } : {}),
    };
    // Requests to one worker are handled in order: a failed open fails the first feed.
    this.send(slot, request, []).catch(noop);
    return new ChunkStream(this, slot, id);
  }

  /** @internal (RunningHash) Whether `slot`'s worker is still running. */
  holds(slot: Slot): boolean {
    return this.slots.includes(slot);
  }

  /** The least busy worker; a new one while the pool is below its size and all are busy. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const slot of this.slots) if (!best || slot.pending.size < best.pending.size) best = slot;
    if (!best || (best.pending.size > 0 && this.slots.length < this.size)) return this.spawn();
    return best;
  }

  /** @internal (ChunkStream) Sends to `slot`, or to the least busy worker. */
  send(to: Slot | undefined, request: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Reply & { ok: true }> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    const slot = to ?? this.pick();
    if (!this.slots.includes(slot)) return Promise.reject(new Error('codec worker exited'));
    const id = this.nextId++;
    return new Promise<Reply & { ok: true }>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref(); // keep the process alive while work is in flight
      slot.worker.postMessage({ ...request, id }, transfer);
    });
  }

  private spawn(): Slot {
    const worker = startWorker(import.meta.url, 'codec-worker', {
      // Workers handle multi-MiB buffers; a small young generation makes V8
      // collect them promptly instead of letting each worker's heap grow.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    this.slots.push(slot);
    worker.on('message', (reply: Reply) => {
      const pending = slot.pending.get(reply.id);
      slot.pending.delete(reply.id);
      // Once closing, a late reply must not undo close()'s ref: the loop could end before the worker exits.
      if (slot.pending.size === 0 && !this.closed) worker.unref();
      if (!pending) return;
      if (reply.ok) pending.resolve(reply);
      else pending.reject(reply.corrupt ? new ChunkCorruptError(reply.message) : new Error(`codec worker: ${reply.message}`));
    });
    const lost = (err: Error) => {
      const at = this.slots.indexOf(slot);
      if (at < 0) return;
      this.slots.splice(at, 1);
      const pending = [...slot.pending.values()];
      slot.pending.clear();
      for (const p of pending) p.reject(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`codec worker exited with code ${code}`)));
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map((s) => {
        s.worker.ref(); // idle workers are unref'd: without this the loop may end before they exit
        return s.worker.terminate();
      }),
    );
  }
}
