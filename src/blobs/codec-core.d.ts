export type CodecName = 'raw' | 'zstd' | 'zstd-bg2' | 'zstd-bg4';

export interface EncodedChunk {
  digest: string;
  codec: CodecName;
  rawSize: number;
  /** codec byte + payload: the bytes written to storage */
  stored: Uint8Array;
  /** hex sha256 of `stored` (what S3 signs as the payload hash) */
  storedSha256: string;
}

/**
 * What the caller knows about a chunk's bytes. `width`: element width of the
 * tensor the chunk lies in (2 or 4: try byte grouping; 1: do not; undefined:
 * guess from a sample). `skip`: bytes at the chunk's start that belong to an
 * element begun before it.
 */
export interface ChunkHint {
  width?: number;
  skip?: number;
}

export declare const ZSTD_LEVEL: number;
export declare class ChunkCorruptError extends Error {
  constructor(message: string);
}
export declare function sha256(data: Uint8Array): string;
export declare function groupBytes(raw: Uint8Array, width: number, skip: number, rot: boolean): Uint8Array;
export declare function ungroupBytes(grouped: Uint8Array, width: number, skip: number, rot: boolean): Uint8Array;
export declare function guessLayout(raw: Uint8Array): { width: number; skip: number } | undefined;
export declare function encodeChunk(raw: Uint8Array, hint?: ChunkHint, digest?: string): EncodedChunk;
export declare function codecOf(stored: Uint8Array): CodecName;
/** Decode and verify: throws ChunkCorruptError unless the result hashes to `digest`. */
export declare function decodeChunk(stored: Uint8Array, digest: string): Uint8Array;
