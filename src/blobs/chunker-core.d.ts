export interface ChunkerOptions {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

export declare const DEFAULT_CHUNKING: Readonly<ChunkerOptions>;

/**
 * Splits a byte stream into content-defined chunks. Feed it buffers with
 * `push`, then call `finish`; each returns the chunks completed so far, each
 * in its own exactly-sized buffer (safe to transfer to another thread).
 */
export declare class Chunker {
  /** `start`: the stream offset of the first byte pushed (a stream resumed at a cut point). */
  constructor(options?: ChunkerOptions, start?: number);
  /** Forced cuts at these stream offsets (tensor boundaries), on top of the content-defined ones. */
  setForcedCuts(offsets: readonly number[]): void;
  push(data: Uint8Array): Buffer[];
  finish(): Buffer[];
}
