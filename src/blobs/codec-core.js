// Chunk encoding, in plain JavaScript so that codec worker threads load it
// without a TypeScript loader (each loader costs a worker ~35 MiB of RSS).
// Types: codec-core.d.ts. A stored chunk object is one codec byte followed by
// the payload, so any object can be decoded from storage alone. Decoding is
// exact; a chunk is stored raw when compression does not shrink it.
//
// Codecs (the codec byte; ids are part of the storage format, never reused):
//   0 raw        the bytes as they are
//   1 zstd       zstd (level ZSTD_LEVEL) of the bytes
//   2 zstd-bg2   byte-grouped zstd for 2-byte elements (bf16, f16)
//   3 zstd-bg4   byte-grouped zstd for 4-byte elements (f32)
// A byte-grouped payload is one parameter byte then two sections. Parameter
// byte: bits 0-1 `skip` (0..w-1 leading bytes kept as they are, so elements
// that straddle the chunk's start do not misalign the planes), bit 2 `rot`
// (each element rotated left by one bit first, which moves the sign bit to the
// bottom so the top plane is the whole exponent for bf16 and f32); other bits
// reserved (0). Transformed bytes: the `skip` leading bytes, plane 0 (byte 0 of
// every whole element, little-endian), plane 1, … plane w-1, then the 0..w-1
// tail bytes. Section A = the leading bytes and planes 0..w-2 (mostly mantissa:
// near-incompressible), section B = plane w-1 and the tail (the exponent:
// ~3 bits of entropy, entropy-coded by zstd). Each section: a mode byte (0 raw,
// 1 zstd), then for A a u32 LE byte count of what follows, then the bytes; B
// runs to the end of the object.
import { createHash } from 'node:crypto';
import { Compressor, decompress } from 'zstd-napi';

const CODEC_IDS = { raw: 0, zstd: 1, 'zstd-bg2': 2, 'zstd-bg4': 3 };
const CODEC_NAMES = ['raw', 'zstd', 'zstd-bg2', 'zstd-bg4'];

export const ZSTD_LEVEL = 3;

/** Bytes of a chunk sampled by the float heuristic (when no element width is hinted). */
const SAMPLE_BYTES = 64 * 1024;
/** Below this, byte grouping is not tried (too little to gain). */
const MIN_GROUPED = 4 * 1024;

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

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Whole elements as a typed-array view when the platform and alignment allow it (fast path). */
function elements(bytes, at, n, width) {
  if (!LITTLE_ENDIAN || (bytes.byteOffset + at) % width !== 0) return undefined;
  return width === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset + at, n) : new Uint32Array(bytes.buffer, bytes.byteOffset + at, n);
}

/** Byte-plane split (see the header comment); `out` gets exactly raw.length bytes. */
export function groupBytes(raw, width, skip, rot) {
  const len = raw.length;
  const s = Math.min(skip, len);
  const n = Math.floor((len - s) / width);
  const out = new Uint8Array(len);
  for (let i = 0; i < s; i++) out[i] = raw[i];
  const view = rot ? elements(raw, s, n, width) : undefined;
  if (view && width === 2) {
    const p1 = s + n;
    for (let i = 0; i < n; i++) {
      const v = view[i];
      const r = ((v << 1) | (v >>> 15)) & 0xffff;
      out[s + i] = r & 0xff;
      out[p1 + i] = r >>> 8;
    }
  } else if (view) {
    const p1 = s + n;
    const p2 = s + 2 * n;
    const p3 = s + 3 * n;
    for (let i = 0; i < n; i++) {
      const v = view[i];
      const r = ((v << 1) | (v >>> 31)) >>> 0;
      out[s + i] = r & 0xff;
      out[p1 + i] = (r >>> 8) & 0xff;
      out[p2 + i] = (r >>> 16) & 0xff;
      out[p3 + i] = r >>> 24;
    }
  } else if (width === 2) {
    const p0 = s;
    const p1 = s + n;
    let j = s;
    if (rot) {
      for (let i = 0; i < n; i++, j += 2) {
        const v = raw[j] | (raw[j + 1] << 8);
        const r = ((v << 1) | (v >>> 15)) & 0xffff;
        out[p0 + i] = r & 0xff;
        out[p1 + i] = r >>> 8;
      }
    } else {
      for (let i = 0; i < n; i++, j += 2) {
        out[p0 + i] = raw[j];
        out[p1 + i] = raw[j + 1];
      }
    }
  } else {
    const p0 = s;
    const p1 = s + n;
    const p2 = s + 2 * n;
    const p3 = s + 3 * n;
    let j = s;
    if (rot) {
      for (let i = 0; i < n; i++, j += 4) {
        const v = (raw[j] | (raw[j + 1] << 8) | (raw[j + 2] << 16) | (raw[j + 3] << 24)) >>> 0;
        const r = ((v << 1) | (v >>> 31)) >>> 0;
        out[p0 + i] = r & 0xff;
        out[p1 + i] = (r >>> 8) & 0xff;
        out[p2 + i] = (r >>> 16) & 0xff;
        out[p3 + i] = r >>> 24;
      }
    } else {
      for (let i = 0; i < n; i++, j += 4) {
        out[p0 + i] = raw[j];
        out[p1 + i] = raw[j + 1];
        out[p2 + i] = raw[j + 2];
        out[p3 + i] = raw[j + 3];
      }
    }
  }
  for (let i = s + n * width; i < len; i++) out[i] = raw[i];
  return out;
}

/** Inverse of groupBytes. */
export function ungroupBytes(grouped, width, skip, rot) {
  const len = grouped.length;
  const s = Math.min(skip, len);
  const n = Math.floor((len - s) / width);
  const out = new Uint8Array(len);
  for (let i = 0; i < s; i++) out[i] = grouped[i];
  const view = rot ? elements(out, s, n, width) : undefined;
  if (view && width === 2) {
    const p1 = s + n;
    for (let i = 0; i < n; i++) {
      const r = grouped[s + i] | (grouped[p1 + i] << 8);
      view[i] = (r >>> 1) | (r << 15);
    }
  } else if (view) {
    const p1 = s + n;
    const p2 = s + 2 * n;
    const p3 = s + 3 * n;
    for (let i = 0; i < n; i++) {
      const r = grouped[s + i] | (grouped[p1 + i] << 8) | (grouped[p2 + i] << 16) | (grouped[p3 + i] << 24);
      view[i] = (r >>> 1) | (r << 31);
    }
  } else if (width === 2) {
    const p0 = s;
    const p1 = s + n;
    let j = s;
    if (rot) {
      for (let i = 0; i < n; i++, j += 2) {
        const r = grouped[p0 + i] | (grouped[p1 + i] << 8);
        const v = ((r >>> 1) | (r << 15)) & 0xffff;
        out[j] = v & 0xff;
        out[j + 1] = v >>> 8;
      }
    } else {
      for (let i = 0; i < n; i++, j += 2) {
        out[j] = grouped[p0 + i];
        out[j + 1] = grouped[p1 + i];
      }
    }
  } else {
    const p0 = s;
    const p1 = s + n;
    const p2 = s + 2 * n;
    const p3 = s + 3 * n;
    let j = s;
    if (rot) {
      for (let i = 0; i < n; i++, j += 4) {
        const r = (grouped[p0 + i] | (grouped[p1 + i] << 8) | (grouped[p2 + i] << 16) | (grouped[p3 + i] << 24)) >>> 0;
        const v = ((r >>> 1) | (r << 31)) >>> 0;
        out[j] = v & 0xff;
        out[j + 1] = (v >>> 8) & 0xff;
        out[j + 2] = (v >>> 16) & 0xff;
        out[j + 3] = v >>> 24;
      }
    } else {
      for (let i = 0; i < n; i++, j += 4) {
        out[j] = grouped[p0 + i];
        out[j + 1] = grouped[p1 + i];
        out[j + 2] = grouped[p2 + i];
        out[j + 3] = grouped[p3 + i];
      }
    }
  }
  for (let i = s + n * width; i < len; i++) out[i] = grouped[i];
  return out;
}

// One compressor per thread and setting (a context is costly to create).
const plainZstd = new Compressor();
plainZstd.setParameters({ compressionLevel: ZSTD_LEVEL });
// Planes: fast level, long minimum match (matches inside float planes are
// rare and mostly noise; what pays is the Huffman coding of the literals).
const planeZstd = new Compressor();
planeZstd.setParameters({ compressionLevel: 1, minMatch: 7 });
const zstd = (bytes) => plainZstd.compress(bytes);

/** A section: mode byte + bytes (zstd when it shrinks them, else raw). */
function section(bytes) {
  const packed = bytes.byteLength >= 64 ? planeZstd.compress(bytes) : undefined;
  return packed && packed.byteLength < bytes.byteLength ? { mode: 1, data: packed } : { mode: 0, data: bytes };
}

/** Byte-grouped payload (without the codec byte): param, section A, section B. */
function groupedPayload(raw, width, skip) {
  const g = groupBytes(raw, width, skip, true);
  const s = Math.min(skip, raw.length);
  const n = Math.floor((raw.length - s) / width);
  const split = s + n * (width - 1);
  const a = section(g.subarray(0, split));
  const b = section(g.subarray(split));
  const out = new Uint8Array(1 + 1 + 4 + a.data.byteLength + 1 + b.data.byteLength);
  out[0] = skip | 4;
  out[1] = a.mode;
  new DataView(out.buffer).setUint32(2, a.data.byteLength, true);
  out.set(a.data, 6);
  out[6 + a.data.byteLength] = b.mode;
  out.set(b.data, 7 + a.data.byteLength);
  return out;
}

function ungroupedPayload(payload, width) {
  const param = payload[0];
  if (param === undefined || payload.length < 7 || (param & ~7) !== 0 || (param & 3) >= width) throw new ChunkCorruptError(`bad byte-grouped header`);
  const lenA = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(2, true);
  if (7 + lenA > payload.length) throw new ChunkCorruptError('byte-grouped section A overruns the object');
  const open = (mode, bytes) => {
    if (mode === 0) return bytes;
    if (mode === 1) return decompress(bytes);
    throw new ChunkCorruptError(`bad section mode ${mode}`);
  };
  const a = open(payload[1], payload.subarray(6, 6 + lenA));
  const b = open(payload[6 + lenA], payload.subarray(7 + lenA));
  const grouped = new Uint8Array(a.byteLength + b.byteLength);
  grouped.set(a, 0);
  grouped.set(b, a.byteLength);
  return ungroupBytes(grouped, width, param & 3, (param & 4) !== 0);
}

/**
 * Guesses whether a chunk is float data of some element width: compresses a
 * sample plainly and byte-grouped (widths 2 and 4, every alignment) and
 * returns the best grouping when it clearly beats plain zstd.
 */
export function guessLayout(raw) {
  if (raw.length < MIN_GROUPED) return undefined;
  const n = Math.min(SAMPLE_BYTES, raw.length);
  const from = Math.floor((raw.length - n) / 2 / 4) * 4;
  const sample = raw.subarray(from, from + n);
  const plain = zstd(sample).byteLength;
  let best;
  let bestSize = plain * 0.97; // must win by 3% to be worth a second full compression
  for (const width of [2, 4]) {
    for (let skip = 0; skip < width; skip++) {
      const size = groupedPayload(sample, width, skip).byteLength;
      if (size < bestSize) {
        bestSize = size;
        best = { width, skip: (skip + from) % width };
      }
    }
  }
  return best;
}

/**
 * Encodes a chunk with the codec that stores it smallest. `hint` (optional)
 * describes the chunk's data: `{ width }` is the element width of a tensor
 * the chunk lies in (2, 4: try byte grouping; 1 or 0: do not), `{ skip }` how
 * many leading bytes belong to an element that started before the chunk.
 * Without a hint a sample decides (guessLayout). Plain zstd is always tried,
 * so the choice is never larger than plain zstd; raw when nothing shrinks.
 */
export function encodeChunk(raw, hint) {
  const digest = sha256(raw);
  let bestId = CODEC_IDS.raw;
  let bestPayload = raw;
  const packed = zstd(raw);
  if (packed.byteLength < bestPayload.byteLength) {
    bestId = CODEC_IDS.zstd;
    bestPayload = packed;
  }
  let layout;
  if (hint && (hint.width === 2 || hint.width === 4)) {
    if (raw.length >= MIN_GROUPED) layout = { width: hint.width, skip: (hint.skip ?? 0) % hint.width };
  } else if (!hint || hint.width === undefined) {
    layout = guessLayout(raw);
  }
  if (layout) {
    const grouped = groupedPayload(raw, layout.width, layout.skip);
    if (grouped.byteLength < bestPayload.byteLength) {
      bestId = layout.width === 2 ? CODEC_IDS['zstd-bg2'] : CODEC_IDS['zstd-bg4'];
      bestPayload = grouped;
    }
  }
  return { digest, codec: CODEC_NAMES[bestId], rawSize: raw.byteLength, stored: withCodecByte(bestId, bestPayload) };
}

export function codecOf(stored) {
  const name = CODEC_NAMES[stored[0] ?? -1];
  if (!name) throw new ChunkCorruptError(`unknown codec byte ${stored[0]}`);
  return name;
}

function decodePayload(stored) {
  const codec = codecOf(stored);
  if (codec === 'raw') return stored.subarray(1);
  if (codec === 'zstd') return decompress(stored.subarray(1));
  return ungroupedPayload(stored.subarray(1), codec === 'zstd-bg2' ? 2 : 4);
}

/** Decode and verify: throws ChunkCorruptError unless the result hashes to `digest`. */
export function decodeChunk(stored, digest) {
  let raw;
  try {
    raw = decodePayload(stored);
  } catch (err) {
    if (err instanceof ChunkCorruptError) throw err;
    throw new ChunkCorruptError(`chunk ${digest} does not decode: ${err.message}`);
  }
  const actual = sha256(raw);
  if (actual !== digest) throw new ChunkCorruptError(`chunk ${digest} hashes to ${actual}`);
  return raw;
}
