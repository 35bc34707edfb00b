// Dynamic batching for one loaded version. Requests whose inputs all share
// their trailing dims (so they stack along dim 0) are merged into one run;
// each gets its own rows of every output back. A request never waits while
// the version has a run slot free (one per worker) — unless `maxDelayMs` asks
// to hold a batch open that long for company; requests that arrive while
// the slots are busy queue, and the next free slot takes as many of them as
// fit in `maxBatchSize` rows. So at low load nothing is added to latency,
// and under load batches grow by themselves.
import { concatRows, sliceRows, type Tensor, type TensorSpec } from './tensors.ts';

export interface BatchingOptions {
  /** rows (dim 0) in one merged run */
  maxBatchSize: number;
  /** how long a batch may wait for more requests while a run slot is free (0: never) */
  maxDelayMs: number;
}

export type Feeds = Record<string, Tensor>;
export type RunFn = (feeds: Feeds) => Promise<Feeds>;

interface Waiting {
  feeds: Feeds;
  rows: number;
  resolve: (outputs: Feeds) => void;
  reject: (err: Error) => void;
}

interface Queue {
  items: Waiting[];
  rows: number;
  timer?: NodeJS.Timeout;
  since: number;
}

/** Whether a model can batch at all: every input and output has a symbolic dim 0. */
export function canBatch(inputs: TensorSpec[], outputs: TensorSpec[]): boolean {
  const symbolic0 = (s: TensorSpec) => s.shape.length > 0 && typeof s.shape[0] === 'string';
  return inputs.length > 0 && inputs.every(symbolic0) && outputs.every(symbolic0);
}

export class Batcher {
  private readonly queues = new Map<string, Queue>();
  private running = 0;
  /** false once a merged run's outputs did not split by rows: the model cannot batch after all */
  private merging = true;

  constructor(
    private readonly run: RunFn,
    private readonly slots: number,
    private readonly options: BatchingOptions,
    private readonly onBatch: (size: number) => void,
    private readonly onUnbatchable: (why: string) => void,
  ) {}

  submit(feeds: Feeds): Promise<Feeds> {
    const rows = this.rowsOf(feeds);
    if (rows === undefined || !this.merging) return this.direct(feeds, 1);
    const key = Object.entries(feeds)
      .map(([name, t]) => `${name}:${t.type}:${t.dims.slice(1).join('x')}`)
      .join('|');
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { items: [], rows: 0, since: Date.now() };
      this.queues.set(key, queue);
    }
    const q = queue;
    return new Promise<Feeds>((resolve, reject) => {
      q.items.push({ feeds, rows, resolve, reject });
      q.rows += rows;
      this.pump();
    });
  }

  /** Rows of a request that can merge: every input has the same dim 0. */
  private rowsOf(feeds: Feeds): number | undefined {
    let rows: number | undefined;
    for (const t of Object.values(feeds)) {
      if (t.dims.length === 0) return undefined;
      if (rows === undefined) rows = t.dims[0];
      else if (t.dims[0] !== rows) return undefined;
    }
    return rows && rows > 0 ? rows : undefined;
  }

  private async direct(feeds: Feeds, size: number): Promise<Feeds> {
    this.running++;
    try {
      this.onBatch(size);
      return await this.run(feeds);
    } finally {
      this.running--;
      this.pump();
    }
  }

  /** Starts runs while slots are free and requests wait. */
  private pump(): void {
    while (this.running < this.slots) {
      const next = this.pick();
      if (!next) return;
      const [key, queue] = next;
      if (queue.rows < this.options.maxBatchSize && this.options.maxDelayMs > 0) {
        const left = queue.since + this.options.maxDelayMs - Date.now();
        if (left > 0) {
          queue.timer ??= setTimeout(() => {
            queue.timer = undefined;
            queue.since = -Infinity; // waited long enough
            this.pump();
          }, left);
          return;
        }
      }
      if (queue.timer) clearTimeout(queue.timer);
      queue.timer = undefined;
      // the oldest always goes (even alone past maxBatchSize); then whoever fits
      const first = queue.items.shift()!;
      const batch: Waiting[] = [first];
      let rows = first.rows;
      while (queue.items.length && rows + queue.items[0]!.rows <= this.options.maxBatchSize) {
        const item = queue.items.shift()!;
        batch.push(item);
        rows += item.rows;
      }
      queue.rows -= rows;
      if (queue.items.length === 0) this.queues.delete(key);
      else queue.since = Date.now();
      void this.dispatch(batch, rows);
    }
  }

  /** The queue whose oldest request has waited longest. */
  private pick(): [string, Queue] | undefined {
    let best: [string, Queue] | undefined;
    for (const entry of this.queues) if (!best || entry[1].since < best[1].since) best = entry;
    return best;
  }

  private async dispatch(batch: Waiting[], rows: number): Promise<void> {
    if (batch.length === 1) {
      const only = batch[0]!;
      this.direct(only.feeds, only.rows).then(only.resolve, only.reject);
      return;
    }
    this.running++;
    let outputs: Feeds;
    try {
      const merged: Feeds = {};
      for (const name of Object.keys(batch[0]!.feeds)) merged[name] = concatRows(batch.map((b) => b.feeds[name]!));
      this.onBatch(rows);
      outputs = await this.run(merged);
    } catch (err) {
      // one request's values can fail the merged run: run each alone, so only that one fails
      this.running--;
      for (const item of batch) this.direct(item.feeds, item.rows).then(item.resolve, item.reject);
      void err;
      return;
    }
    this.running--;
    const bad = Object.entries(outputs).find(([, t]) => t.dims.length === 0 || t.dims[0] !== rows);
    if (bad) {
      this.merging = false;
      this.onUnbatchable(`output '${bad[0]}' has shape [${bad[1].dims.join(', ')}] for ${rows} merged rows: it does not split by request`);
      for (const item of batch) this.direct(item.feeds, item.rows).then(item.resolve, item.reject);
      return;
    }
    let at = 0;
    for (const item of batch) {
      const mine: Feeds = {};
      for (const [name, t] of Object.entries(outputs)) mine[name] = sliceRows(t, at, at + item.rows);
      at += item.rows;
      item.resolve(mine);
    }
    this.pump();
  }

  /** Fails every request still waiting (the version is going away). */
  close(err: Error): void {
    for (const q of this.queues.values()) {
      if (q.timer) clearTimeout(q.timer);
      for (const item of q.items) item.reject(err);
    }
    this.queues.clear();
  }
}
