// A download's chunks fetched ahead of sending them, bounded by bytes: each
// download within an allowance of its own, all of a store's downloads within
// one shared budget, so that many concurrent downloads do not multiply the
// memory held (chunk-store.ts opens downloads with it).
import type { ChunkRef } from './chunk-index.ts';

const MiB = 1024 * 1024;
/**
 * Per download: ~14 chunks of the default average size, for S3 far away
 * (through a 1 Gbit/s link with 100 ms RTT each ~2 MiB GET took ~360 ms). A
 * single 512 MiB pull peaked at 226-270 MiB of server RSS with it
 * (bench/push-pull.ts), 288 with 64 MiB.
 */
export const DEFAULT_READ_AHEAD_BYTES = 32 * MiB;
/**
 * Per store (process): one download reads ahead fully, concurrent ones share
 * it. Eight concurrent 512 MiB pulls peaked at 344-369 MiB of server RSS with
 * 6 chunks each, 291-310 MiB with 64 MiB here, 296-305 with 48, 257-276
 * with 32 (bench/push-pull.ts --link 1gbit --pulls 8).
 */
export const DEFAULT_READ_AHEAD_TOTAL_BYTES = 32 * MiB;

/**
 * Bytes of chunks fetched ahead of downloads, shared by all of them. A
 * download may always take its next chunk, past the limit (it must make
 * progress); whatever it takes beyond that must fit.
 */
export class ReadAheadBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Bytes taken now. */
  get inUse(): number {
    return this.used;
  }

  /** Takes `bytes` if they fit under the limit, or anyway with `force`. */
  take(bytes: number, force = false): boolean {
    if (!force && this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

type Fetch = { data: Promise<Uint8Array>; bytes: number };

const noop = () => {};

/**
 * The chunks of one download, fetched in order ahead of the one being sent:
 * the next chunk always, more while they fit both its allowance and the shared
 * budget. Each is counted from its fetch until it is taken, or, once the
 * download is closed, until its fetch settles.
 */
export class ReadAhead {
  private readonly pending: Fetch[] = [];
  private readonly held = new Set<Fetch>();
  private ahead = 0;
  private next = 0;
  private closed = false;

  constructor(
    private readonly chunks: readonly ChunkRef[],
    /** fetches and verifies one chunk */
    private readonly fetch: (chunk: ChunkRef) => Promise<Uint8Array>,
    private readonly allowance: number,
    private readonly budget: ReadAheadBudget,
  ) {
    this.fill();
  }

  /** Settles once the first chunk is fetched and verified, failing as it does. */
  async ready(): Promise<void> {
    if (this.pending.length > 0) await this.pending[0]!.data;
  }

  /** The next chunk's bytes, in order; undefined when there are no more or once closed. */
  async take(): Promise<Uint8Array | undefined> {
    const fetch = this.pending.shift();
    if (!fetch) return undefined;
    const raw = await fetch.data;
    if (this.closed) return undefined; // close() gives it back as it settles
    this.free(fetch);
    this.fill();
    return raw;
  }

  /** Stops fetching; what is still held is given back as its fetch settles. */
  close(): void {
    this.closed = true;
    for (const fetch of this.held) fetch.data.then(() => this.free(fetch), () => this.free(fetch));
  }

  private free(fetch: Fetch): void {
    if (!this.held.delete(fetch)) return;
    this.ahead -= fetch.bytes;
    this.budget.give(fetch.bytes);
  }

  private fill(): void {
    while (!this.closed && this.next < this.chunks.length) {
      const chunk = this.chunks[this.next]!;
      const first = this.pending.length === 0;
      if (!first && (this.ahead + chunk.size > this.allowance || !this.budget.take(chunk.size))) break;
      if (first) this.budget.take(chunk.size, true);
      this.next++;
      this.ahead += chunk.size;
      const fetch = { data: this.fetch(chunk), bytes: chunk.size };
      fetch.data.catch(noop); // taken (or given back) in order; this only marks it handled
      this.held.add(fetch);
      this.pending.push(fetch);
    }
  }
}
