// Chunk encoding, in plain JavaScript so that codec worker threads load it
// without a TypeScript loader (each loader costs a worker ~35 MiB of RSS).
// Types: codec-core.d.ts. A stored chunk object is one codec byte followed by
// the payload, so any object can be decoded from storage alone. Decoding is
// exact; a chunk is stored raw when compression does not shrink it.
import { createHash } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';

const CODEC_IDS = { raw: 0, zstd: 1 };
const CODEC_NAMES = ['raw', 'zstd'];

export const ZSTD_LEVEL = 3;

export class ChunkCorruptError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ChunkCorruptError';
  }
}

export function sha256(data) {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function withCodecByte(id, payload) {
  const stored = new Uint8Array(payload.byteLength + 1);
  stored[0] = id;
  stored.set(payload, 1);
  return stored;
}

export function encodeChunk(raw) {
  const digest = sha256(raw);
  const packed = compress(raw, { compressionLevel: ZSTD_LEVEL });
  if (packed.byteLength < raw.byteLength) {
    return { digest, codec: 'zstd', rawSize: raw.byteLength, stored: withCodecByte(CODEC_IDS.zstd, packed) };
  }
  return { digest, codec: 'raw', rawSize: raw.byteLength, stored: withCodecByte(CODEC_IDS.raw, raw) };
}

export function codecOf(stored) {
  const name = CODEC_NAMES[stored[0] ?? -1];
  if (!name) throw new ChunkCorruptError(`unknown codec byte ${stored[0]}`);
  return name;
}

/** Decode and verify: throws ChunkCorruptError unless the result hashes to `digest`. */
export function decodeChunk(stored, digest) {
  const payload = stored.subarray(1);
  let raw;
  try {
    raw = codecOf(stored) === 'zstd' ? decompress(payload) : payload;
  } catch (err) {
    if (err instanceof ChunkCorruptError) throw err;
    throw new ChunkCorruptError(`chunk ${digest} does not decode: ${err.message}`);
  }
  const actual = sha256(raw);
  if (actual !== digest) throw new ChunkCorruptError(`chunk ${digest} hashes to ${actual}`);
  return raw;
}
