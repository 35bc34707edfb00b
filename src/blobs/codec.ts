// Chunk encoding. A stored chunk object is one codec byte followed by the
// payload, so any object can be decoded from storage alone. Decoding is
// exact; a chunk is stored raw when compression does not shrink it.
import { createHash } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';

export type CodecName = 'raw' | 'zstd';

const CODEC_IDS: Record<CodecName, number> = { raw: 0, zstd: 1 };
const CODEC_NAMES: Record<number, CodecName> = { 0: 'raw', 1: 'zstd' };

export const ZSTD_LEVEL = 3;

export interface EncodedChunk {
  digest: string;
  codec: CodecName;
  rawSize: number;
  /** codec byte + payload: the bytes written to storage */
  stored: Uint8Array;
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function encodeChunk(raw: Uint8Array): EncodedChunk {
  const digest = sha256(raw);
  const packed = compress(raw, { compressionLevel: ZSTD_LEVEL });
  if (packed.byteLength < raw.byteLength) {
    const stored = new Uint8Array(packed.byteLength + 1);
    stored[0] = CODEC_IDS.zstd;
    stored.set(packed, 1);
    return { digest, codec: 'zstd', rawSize: raw.byteLength, stored };
  }
  const stored = new Uint8Array(raw.byteLength + 1);
  stored[0] = CODEC_IDS.raw;
  stored.set(raw, 1);
  return { digest, codec: 'raw', rawSize: raw.byteLength, stored };
}

export class ChunkCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkCorruptError';
  }
}

export function codecOf(stored: Uint8Array): CodecName {
  const name = CODEC_NAMES[stored[0] ?? -1];
  if (!name) throw new ChunkCorruptError(`unknown codec byte ${stored[0]}`);
  return name;
}

/** Decode and verify: throws ChunkCorruptError unless the result hashes to `digest`. */
export function decodeChunk(stored: Uint8Array, digest: string): Uint8Array {
  const payload = stored.subarray(1);
  let raw: Uint8Array;
  try {
    raw = codecOf(stored) === 'zstd' ? decompress(payload) : payload;
  } catch (err) {
    if (err instanceof ChunkCorruptError) throw err;
    throw new ChunkCorruptError(`chunk ${digest} does not decode: ${(err as Error).message}`);
  }
  const actual = sha256(raw);
  if (actual !== digest) throw new ChunkCorruptError(`chunk ${digest} hashes to ${actual}`);
  return raw;
}
