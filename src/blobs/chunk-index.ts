// What the chunk store needs to know of what is stored, and how it records
// what it wrote. Declared here, implemented by the metadata layer (SQLite,
// metadata/blobs.ts): the bytes know nothing of the catalogue. The store
// records chunks only; a blob (a file's content as an ordered chunk list) is
// recorded by whoever stored it (the registry), from what `store` returns.
import type { CodecName } from '../codecs/codec.ts';

/** A chunk's place in a byte stream or blob. */
export interface ChunkRef {
  digest: string;
  offset: number;
  size: number;
}

/** A chunk the store has written, durable in storage. */
export interface ChunkRecord {
  digest: string;
  rawSize: number;
  storedSize: number;
  codec: CodecName;
}

/** A chunk of a blob as stored: its place in the blob, its codec and object size. */
export interface StoredChunkRef extends ChunkRef {
  codec: CodecName;
  storedSize: number;
}

export interface ChunkIndex {
  /** Whether a chunk is recorded: its object is durable, it need not be written again. */
  hasChunk(digest: string): boolean;
  /** Records chunks already durable in storage, and runs `also` in the same transaction. */
  recordChunks(chunks: ChunkRecord[], also?: () => void): void;
  /** A recorded blob, or undefined. */
  getBlob(digest: string): { size: number } | undefined;
  /** The chunks of a recorded blob that overlap the inclusive byte range [start, end], in order. */
  chunksInRange(blob: string, start: number, end: number): ChunkRef[];
  /** The same, with how each chunk is stored. */
  storedChunksInRange(blob: string, start: number, end: number): StoredChunkRef[];
}
