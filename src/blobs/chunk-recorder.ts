// Chunks written to storage are recorded in batches, each in one transaction
// with what goes with it (a session's chunk list): one synchronous SQLite
// commit per chunk would stall the event loop on fsync. A chunk is added
// once it and all before it are durable in storage.
import type { ChunkIndex, ChunkRecord, ChunkRef } from './chunk-index.ts';

const RECORD_BATCH = 16;

export class ChunkRecorder {
  private records: ChunkRecord[] = [];
  private batch: ChunkRef[] = [];

  constructor(
    private readonly index: ChunkIndex,
    /** sees every chunk, in order, inside the transaction that records its batch */
    private readonly onChunks?: (chunks: ChunkRef[]) => void,
  ) {}

  /** A chunk in its place; `record` when it was newly written. */
  add(chunk: ChunkRef, record?: ChunkRecord): void {
    this.batch.push(chunk);
    if (record) this.records.push(record);
    if (this.batch.length >= RECORD_BATCH) this.flush();
  }

  /** Records what is pending (also on failure: whatever is durable gets recorded). */
  flush(): void {
    if (this.batch.length === 0) return;
    const [records, batch] = [this.records, this.batch];
    this.records = [];
    this.batch = [];
    this.index.recordChunks(records, () => this.onChunks?.(batch));
  }
}
