export type CodecName = 'raw' | 'zstd';

export interface EncodedChunk {
  digest: string;
  codec: CodecName;
  rawSize: number;
  /** codec byte + payload: the bytes written to storage */
  stored: Uint8Array;
}

export declare const ZSTD_LEVEL: number;
export declare class ChunkCorruptError extends Error {
  constructor(message: string);
}
export declare function sha256(data: Uint8Array): string;
export declare function encodeChunk(raw: Uint8Array): EncodedChunk;
export declare function codecOf(stored: Uint8Array): CodecName;
/** Decode and verify: throws ChunkCorruptError unless the result hashes to `digest`. */
export declare function decodeChunk(stored: Uint8Array, digest: string): Uint8Array;
