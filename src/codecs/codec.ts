// Chunk encoding, run in the codec worker threads (codec-worker.ts) and,
// for tests and tools, on the main thread. A stored chunk object is one codec byte followed by
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
import zstdBinding from 'zstd-napi/binding.js';

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

/** Where the elements of a chunk's data lie: their width, and the bytes before the first whole one. */
interface ElementLayout {
  width: number;
  skip: number;
}

const CODEC_IDS: Record<CodecName, number> = { raw: 0, zstd: 1, 'zstd-bg2': 2, 'zstd-bg4': 3 };
const CODEC_NAMES: readonly CodecName[] = ['raw', 'zstd', 'zstd-bg2', 'zstd-bg4'];

export const ZSTD_LEVEL = 3;

/** Bytes of a chunk sampled by the float heuristic (when no element width is hinted). */
const SAMPLE_BYTES = 64 * 1024;
/** Below this, byte grouping is not tried (too little to gain). */
const MIN_GROUPED = 4 * 1024;

export class ChunkCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkCorruptError';
  }
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Whole elements as a typed-array view when the platform and alignment allow it (fast path). */
function elements(bytes: Uint8Array, at: number, n: number, width: number): Uint16Array | Uint32Array | undefined {
  if (!LITTLE_ENDIAN || (bytes.byteOffset + at) % width !== 0) return undefined;
  return width === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset + at, n) : new Uint32Array(bytes.buffer, bytes.byteOffset + at, n);
}

/** Byte-plane split (see the header comment) into `out` (raw.length bytes; a new array by default). */
export function groupBytes(raw: Uint8Array, width: number, skip: number, rot: boolean, out: Uint8Array = new Uint8Array(raw.length)): Uint8Array {
  const len = raw.length;
  const s = Math.min(skip, len);
  const n = Math.floor((len - s) / width);
  for (let i = 0; i < s; i++) out[i] = raw[i]!;
  const view = rot ? elements(raw, s, n, width) : undefined;
  if (view && width === 2) {
    const p1 = s + n;
    for (let i = 0; i < n; i++) {
      const v = view[i]!;
      const r = ((v << 1) | (v >>> 15)) & 0xffff;
      out[s + i] = r & 0xff;
      out[p1 + i] = r >>> 8;
    }
  } else if (view) {
    const p1 = s + n;
    const p2 = s + 2 * n;
    const p3 = s + 3 * n;
    for (let i = 0; i < n; i++) {
      const v = view[i]!;
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
        const v = raw[j]! | (raw[j + 1]! << 8);
        const r = ((v << 1) | (v >>> 15)) & 0xffff;
        out[p0 + i] = r & 0xff;
        out[p1 + i] = r >>> 8;
      }
    } else {
      for (let i = 0; i < n; i++, j += 2) {
        out[p0 + i] = raw[j]!;
        out[p1 + i] = raw[j + 1]!;
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
        const v = (raw[j]! | (raw[j + 1]! << 8) | (raw[j + 2]! << 16) | (raw[j + 3]! << 24)) >>> 0;
        const r = ((v << 1) | (v >>> 31)) >>> 0;
        out[p0 + i] = r & 0xff;
        out[p1 + i] = (r >>> 8) & 0xff;
        out[p2 + i] = (r >>> 16) & 0xff;
        out[p3 + i] = r >>> 24;
      }
    } else {
      for (let i = 0; i < n; i++, j += 4) {
        out[p0 + i] = raw[j]!;
        out[p1 + i] = raw[j + 1]!;
        out[p2 + i] = raw[j + 2]!;
        out[p3 + i] = raw[j + 3]!;
      }
    }
  }
  for (let i = s + n * width; i < len; i++) out[i] = raw[i]!;
  return out;
}

/** Inverse of groupBytes. */
export function ungroupBytes(grouped: Uint8Array, width: number, skip: number, rot: boolean): Uint8Array {
  const len = grouped.length;
  const s = Math.min(skip, len);
  const n = Math.floor((len - s) / width);
  const out = new Uint8Array(len);
  for (let i = 0; i < s; i++) out[i] = grouped[i]!;
  const view = rot ? elements(out, s, n, width) : undefined;
  if (view && width === 2) {
    const p1 = s + n;
    for (let i = 0; i < n; i++) {
      const r = grouped[s + i]! | (grouped[p1 + i]! << 8);
      view[i] = (r >>> 1) | (r << 15);
    }
  } else if (view) {
    const p1 = s + n;
    const p2 = s + 2 * n;
    const p3 = s + 3 * n;
    for (let i = 0; i < n; i++) {
      const r = grouped[s + i]! | (grouped[p1 + i]! << 8) | (grouped[p2 + i]! << 16) | (grouped[p3 + i]! << 24);
      view[i] = (r >>> 1) | (r << 31);
    }
  } else if (width === 2) {
    const p0 = s;
    const p1 = s + n;
    let j = s;
    if (rot) {
      for (let i = 0; i < n; i++, j += 2) {
        const r = grouped[p0 + i]! | (grouped[p1 + i]! << 8);
        const v = ((r >>> 1) | (r << 15)) & 0xffff;
        out[j] = v & 0xff;
        out[j + 1] = v >>> 8;
      }
    } else {
      for (let i = 0; i < n; i++, j += 2) {
        out[j] = grouped[p0 + i]!;
        out[j + 1] = grouped[p1 + i]!;
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
        const r = (grouped[p0 + i]! | (grouped[p1 + i]! << 8) | (grouped[p2 + i]! << 16) | (grouped[p3 + i]! << 24)) >>> 0;
        const v = ((r >>> 1) | (r << 31)) >>> 0;
        out[j] = v & 0xff;
        out[j + 1] = (v >>> 8) & 0xff;
        out[j + 2] = (v >>> 16) & 0xff;
        out[j + 3] = v >>> 24;
      }
    } else {
      for (let i = 0; i < n; i++, j += 4) {
        out[j] = grouped[p0 + i]!;
        out[j + 1] = grouped[p1 + i]!;
        out[j + 2] = grouped[p2 + i]!;
        out[j + 3] = grouped[p3 + i]!;
      }
    }
  }
  for (let i = s + n * width; i < len; i++) out[i] = grouped[i]!;
  return out;
}

// zstd through zstd-napi's binding (its documented low-level API): the
// high-level Compressor/decompress allocate a new buffer per call; here the
// output goes into a buffer we choose. One context per thread and setting (a
// context is costly to create).
const { CCtx, DCtx, CParameter } = zstdBinding;
const plainZstd = new CCtx();
plainZstd.setParameter(CParameter.compressionLevel, ZSTD_LEVEL);
// Planes: fast level, long minimum match (matches inside float planes are
// rare and mostly noise; what pays is the Huffman coding of the literals).
const planeZstd = new CCtx();
planeZstd.setParameter(CParameter.compressionLevel, 1);
planeZstd.setParameter(CParameter.minMatch, 7);
const unzstd = new DCtx();

// Encoding works in two per-thread scratch areas (grouped planes, compressed
// output) and allocates only the stored object. They grow with the largest
// chunk seen (the pack area to about twice maxSize, when both codecs are
// tried) and stay.
class Scratch {
  bytes = new Uint8Array(0);
  /** The first n bytes; what an earlier view held is kept. */
  view(n: number): Uint8Array {
    if (this.bytes.length < n) {
      const bigger = new Uint8Array(n);
      bigger.set(this.bytes);
      this.bytes = bigger;
    }
    return this.bytes.subarray(0, n);
  }
}
const scratch = { group: new Scratch(), pack: new Scratch() };

/** ZSTD_COMPRESSBOUND: the most a zstd frame of `n` bytes can take. */
const compressBound = (n: number): number => n + (n >>> 8) + (n < 131072 ? (131072 - n) >>> 11 : 0);

/** Largest frame content accepted: anything bigger is a damaged header, not a chunk. */
const MAX_FRAME_CONTENT = 1024 * 1024 * 1024;

/** The content size a zstd frame's header declares (our frames always have one). */
function frameContentSize(src: Uint8Array): number {
  const size = zstdBinding.getFrameContentSize(src);
  if (size === null || !(size >= 0 && size <= MAX_FRAME_CONTENT)) throw new ChunkCorruptError('zstd frame without a valid content size');
  return size;
}

/** Decompresses one zstd frame into a new buffer of the size its header declares. */
function unzstdFrame(src: Uint8Array): Buffer {
  const size = frameContentSize(src);
  const out = Buffer.allocUnsafeSlow(size);
  const n = unzstd.decompress(out, src);
  if (n !== size) throw new ChunkCorruptError(`zstd frame declares ${size} bytes, holds ${n}`);
  return out;
}

/** Size of `bytes` compressed plainly (the output goes to the pack scratch). */
const zstdSize = (bytes: Uint8Array): number => plainZstd.compress2(scratch.pack.view(compressBound(bytes.length)), bytes);

/**
 * A section planned at `at` in the pack scratch: { mode, data } with data a
 * view of the scratch (compressed) or of `bytes` (raw, when zstd does not shrink).
 */
function section(bytes: Uint8Array, at: number): { mode: number; data: Uint8Array } {
  if (bytes.byteLength >= 64) {
    const dest = scratch.pack.view(at + compressBound(bytes.byteLength)).subarray(at);
    const n = planeZstd.compress2(dest, bytes);
    if (n < bytes.byteLength) return { mode: 1, data: dest.subarray(0, n) };
  }
  return { mode: 0, data: bytes };
}

/**
 * Plans a byte-grouped payload: param, section A, section B (see the header
 * comment), built in the scratch buffers from pack offset `at` on. Returns its
 * size and a function that writes it at `target[offset]`. Valid until the
 * scratch buffers are used again.
 */
function planGrouped(raw: Uint8Array, width: number, skip: number, at = 0): { size: number; write: (target: Uint8Array, offset: number) => void } {
  const g = groupBytes(raw, width, skip, true, scratch.group.view(raw.length));
  const s = Math.min(skip, raw.length);
  const n = Math.floor((raw.length - s) / width);
  const split = s + n * (width - 1);
  scratch.pack.view(at + compressBound(split) + compressBound(raw.length - split)); // room for both sections
  const a = section(g.subarray(0, split), at);
  const b = section(g.subarray(split), at + a.data.byteLength);
  const size = 1 + 1 + 4 + a.data.byteLength + 1 + b.data.byteLength;
  const write = (target: Uint8Array, offset: number) => {
    target[offset] = skip | 4;
    target[offset + 1] = a.mode;
    new DataView(target.buffer, target.byteOffset).setUint32(offset + 2, a.data.byteLength, true);
    target.set(a.data, offset + 6);
    target[offset + 6 + a.data.byteLength] = b.mode;
    target.set(b.data, offset + 7 + a.data.byteLength);
  };
  return { size, write };
}

/** A byte-grouped payload's header: its param byte and its two sections with the raw size each declares. */
function groupedSections(payload: Uint8Array, width: number): { param: number; sections: Array<{ mode: number; bytes: Uint8Array; size: number }> } {
  const param = payload[0];
  if (param === undefined || payload.length < 7 || (param & ~7) !== 0 || (param & 3) >= width) throw new ChunkCorruptError(`bad byte-grouped header`);
  const lenA = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(2, true);
  if (7 + lenA > payload.length) throw new ChunkCorruptError('byte-grouped section A overruns the object');
  const section = (mode: number | undefined, bytes: Uint8Array) => {
    if (mode === 0) return { mode, bytes, size: bytes.byteLength };
    if (mode === 1) return { mode, bytes, size: frameContentSize(bytes) };
    throw new ChunkCorruptError(`bad section mode ${mode}`);
  };
  return { param, sections: [section(payload[1], payload.subarray(6, 6 + lenA)), section(payload[6 + lenA], payload.subarray(7 + lenA))] };
}

function ungroupedPayload(payload: Uint8Array, width: number): Uint8Array {
  const { param, sections } = groupedSections(payload, width);
  const sizes = sections.map((x) => x.size);
  // Both sections are opened straight into the grouped scratch: no buffer per section.
  const grouped = scratch.group.view(sizes[0]! + sizes[1]!);
  let at = 0;
  sections.forEach(({ mode, bytes }, i) => {
    const dest = grouped.subarray(at, at + sizes[i]!);
    if (mode === 0) dest.set(bytes);
    else if (unzstd.decompress(dest, bytes) !== sizes[i]) throw new ChunkCorruptError('zstd section shorter than its header declares');
    at += sizes[i]!;
  });
  return ungroupBytes(grouped, width, param & 3, (param & 4) !== 0);
}

/**
 * Up to SAMPLE_BYTES from the middle of a chunk, starting at `from`, a
 * multiple of 4: the sample's elements align like the chunk's.
 */
function middleSample(raw: Uint8Array): { sample: Uint8Array; from: number } {
  const n = Math.min(SAMPLE_BYTES, raw.length);
  const from = Math.floor((raw.length - n) / 2 / 4) * 4;
  return { sample: raw.subarray(from, from + n), from };
}

/**
 * Guesses whether a chunk is float data of some element width: compresses a
 * sample plainly and byte-grouped (widths 2 and 4, every alignment) and
 * returns the best grouping when it clearly beats plain zstd.
 */
export function guessLayout(raw: Uint8Array): ElementLayout | undefined {
  if (raw.length < MIN_GROUPED) return undefined;
  const { sample, from } = middleSample(raw);
  const plain = zstdSize(sample);
  let best: ElementLayout | undefined;
  let bestSize = plain * 0.97; // must win by 3% to be worth a second full compression
  for (const width of [2, 4]) {
    for (let skip = 0; skip < width; skip++) {
      const size = planGrouped(sample, width, skip).size;
      if (size < bestSize) {
        bestSize = size;
        best = { width, skip: (skip + from) % width };
      }
    }
  }
  return best;
}

/** Whether byte grouping beats plain zstd by a margin on a sample of the chunk. */
function groupingWins(raw: Uint8Array, layout: ElementLayout): boolean {
  const { sample } = middleSample(raw);
  return planGrouped(sample, layout.width, layout.skip).size < zstdSize(sample) * 0.97;
}

/**
 * Encodes a chunk. `hint` (optional) describes the chunk's data: `{ width }`
 * is the element width of the tensor the chunk lies in (2, 4: byte grouping;
 * 1 or 0: plain zstd), `{ skip }` how many leading bytes belong to an element
 * that started before the chunk. Without a hint a sample decides
 * (guessLayout) whether to try grouping besides plain zstd. Chunks of a float
 * tensor get one full compression, byte-grouped, once a sample shows that
 * grouping clearly wins; when it does not (a tensor of zeros, or bytes that
 * are not what the dtype says) plain zstd is tried as well and the smaller is
 * kept. Raw when nothing shrinks the chunk.
 * `digest` is the chunk's sha256 when the caller has it already (the chunking
 * worker computes it), else it is computed here. `storedSha256` is the hex
 * sha256 of `stored`, for storage drivers that send it (S3 signs the payload).
 */
export function encodeChunk(raw: Uint8Array, hint?: ChunkHint, digest = sha256(raw)): EncodedChunk {
  let layout: ElementLayout | undefined;
  let plain = true;
  if (hint && (hint.width === 2 || hint.width === 4)) {
    if (raw.length >= MIN_GROUPED) {
      layout = { width: hint.width, skip: (hint.skip ?? 0) % hint.width };
      plain = !groupingWins(raw, layout);
    }
  } else if (!hint || hint.width === undefined) {
    // No dtype known (not a tensor file): a sample says whether grouping may
    // pay; then both are tried, since one sample of a mixed file can mislead.
    layout = guessLayout(raw);
  }
  // Candidates live in the pack scratch (plain first, then the grouped
  // sections after it); only the winner is copied into the stored object.
  let id = CODEC_IDS.raw;
  let size = raw.byteLength;
  let write = (target: Uint8Array) => target.set(raw, 1);
  let used = 0;
  if (plain) {
    const dest = scratch.pack.view(compressBound(raw.byteLength));
    const n = plainZstd.compress2(dest, raw);
    if (n < size) {
      id = CODEC_IDS.zstd;
      size = n;
      used = n;
      const packed = dest.subarray(0, n); // a view: stays valid if the scratch moves to a bigger buffer
      write = (target: Uint8Array) => target.set(packed, 1);
    }
  }
  if (layout) {
    const plan = planGrouped(raw, layout.width, layout.skip, used);
    if (plan.size < size) {
      id = layout.width === 2 ? CODEC_IDS['zstd-bg2'] : CODEC_IDS['zstd-bg4'];
      size = plan.size;
      write = (target: Uint8Array) => plan.write(target, 1);
    }
  }
  const stored = new Uint8Array(1 + size);
  stored[0] = id;
  write(stored);
  return { digest, codec: CODEC_NAMES[id]!, rawSize: raw.byteLength, stored, storedSha256: createHash('sha256').update(stored).digest('hex') };
}

export function codecOf(stored: Uint8Array): CodecName {
  const name = CODEC_NAMES[stored[0] ?? -1];
  if (!name) throw new ChunkCorruptError(`unknown codec byte ${stored[0]}`);
  return name;
}

const groupWidth = (codec: CodecName): number => (codec === 'zstd-bg2' ? 2 : 4);

function decodePayload(stored: Uint8Array): Uint8Array {
  const codec = codecOf(stored);
  if (codec === 'raw') return stored.subarray(1);
  if (codec === 'zstd') return unzstdFrame(stored.subarray(1));
  return ungroupedPayload(stored.subarray(1), groupWidth(codec));
}

/**
 * The raw size an object's headers declare, read without decoding: a chunk
 * from an untrusted source (a client's direct push) is checked against the
 * size it claims before anything is allocated for it.
 */
export function declaredRawSize(stored: Uint8Array): number {
  const codec = codecOf(stored);
  const payload = stored.subarray(1);
  if (codec === 'raw') return payload.byteLength;
  if (codec === 'zstd') return frameContentSize(payload);
  return groupedSections(payload, groupWidth(codec)).sections.reduce((n, x) => n + x.size, 0);
}

/**
 * Decode and verify: throws ChunkCorruptError unless the result hashes to
 * `digest` (and, given `size`, unless its headers declare exactly that many
 * bytes, checked before decoding).
 */
export function decodeChunk(stored: Uint8Array, digest: string, size?: number): Uint8Array {
  let raw: Uint8Array;
  try {
    if (size !== undefined) {
      const declared = declaredRawSize(stored);
      if (declared !== size) throw new ChunkCorruptError(`chunk ${digest} declares ${declared} bytes, not ${size}`);
    }
    raw = decodePayload(stored);
  } catch (err) {
    if (err instanceof ChunkCorruptError) throw err;
    throw new ChunkCorruptError(`chunk ${digest} does not decode: ${(err as Error).message}`);
  }
  const actual = sha256(raw);
  if (actual !== digest) throw new ChunkCorruptError(`chunk ${digest} hashes to ${actual}`);
  return raw;
}
