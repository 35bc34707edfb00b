// Content-defined chunking (FastCDC-style Gear hash with normalized chunking),
// run in the codec worker threads that chunk uploads (codec-worker.ts). Cut points depend only on the bytes around them, so an insertion or a
// changed header shifts at most the chunks that touch it and dedup survives.
//
// The Gear table and the size parameters are part of the storage format:
// changing them changes every future cut point (old data stays readable, but
// stops deduplicating against new uploads).
import { createHash } from 'node:crypto';

// Sized for object stores: ~2 MiB objects keep request counts and per-object
// overhead low while still deduplicating at a useful granularity.
export interface ChunkerOptions {
  minSize: number;
  avgSize: number;
  maxSize: number;
  /**
   * Tensor files: a tensor of at least this many bytes starts and ends
   * chunks of its own; runs of smaller tensors are grouped into chunks of
   * about this size (forcedCuts in blobs/tensor-layout.ts). Below the
   * content-defined minSize on purpose: a changed tensor re-stores at most
   * its group, not a minSize's worth of unchanged neighbours. When absent,
   * minSize.
   */
  tensorGroupSize?: number;
}

// Part of the storage format (see the top), tensorGroupSize included. 32 KiB:
// a changed small tensor re-stores < 64 KiB of neighbours, and only tensors
// under 32 KiB (biases, norms, small kernels) share chunks; LLM-sized models
// get no more chunks than with grouping by minSize. Chosen on
// bench/storage-efficiency.ts --v2-of (issue 17; bench/README.md has the
// trade-off against the number of chunks).
export const DEFAULT_CHUNKING: Readonly<ChunkerOptions> = Object.freeze({
  minSize: 512 * 1024,
  avgSize: 2 * 1024 * 1024,
  maxSize: 8 * 1024 * 1024,
  tensorGroupSize: 32 * 1024,
});

// 256 pseudo-random 32-bit values derived from a fixed seed: stable forever.
// Held as int32: the rolling hash then stays in 32-bit integer registers
// (a uint32 above 2^31 would not), which more than doubles the scan speed;
// the bits, and so the cut points, are the same.
const GEAR = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHash('sha256').update(`cairn-gear-${i}`).digest().readInt32BE(0);
  }
  return table;
})();

/** Mask of the `bits` highest bits: with a left-shifting Gear hash the high bits depend on the most bytes. */
function highMask(bits: number): number {
  return bits <= 0 ? 0 : (0xffffffff << (32 - bits)) | 0;
}

/**
 * Splits a byte stream into content-defined chunks. Feed it buffers with
 * `push`, then call `finish`; each returns the chunks completed so far, each
 * in its own exactly-sized buffer (safe to transfer to another thread).
 */
export class Chunker {
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskSmall: number;
  private readonly maskLarge: number;
  private readonly buf: Buffer;
  private fill = 0;
  private scanned = 0;
  private hash = 0;
  /** stream offset of buf[0] */
  private pos: number;
  /** forced cut points (stream offsets), ascending; consumed from `nextCut` */
  private cuts: number[] = [];
  private nextCut = 0;

  /**
   * `start` is the stream offset of the first byte pushed: a stream resumed
   * at a cut point (an upload continued by a later request) cuts exactly as
   * the uninterrupted stream would, forced cuts included.
   */
  constructor(options: ChunkerOptions = DEFAULT_CHUNKING, start = 0) {
    if (!(options.minSize > 0 && options.minSize <= options.avgSize && options.avgSize <= options.maxSize)) {
      throw new Error('chunker: need 0 < min <= avg <= max');
    }
    this.min = options.minSize;
    this.avg = options.avgSize;
    this.max = options.maxSize;
    const bits = Math.round(Math.log2(options.avgSize));
    // Normalized chunking: harder to cut before the average size, easier after.
    this.maskSmall = highMask(bits + 2);
    this.maskLarge = highMask(bits - 2);
    this.buf = Buffer.allocUnsafeSlow(this.max);
    this.pos = start;
  }

  /**
   * Forces cuts at these stream offsets (e.g. tensor boundaries), on top of the
   * content-defined ones. Content-defined cutting restarts at each forced cut,
   * so the cuts between two forced cuts depend only on the bytes between them.
   * Set before the bytes at those offsets are pushed; offsets already passed
   * are ignored.
   */
  setForcedCuts(offsets: readonly number[]): void {
    this.cuts = [...offsets].sort((a, b) => a - b);
    this.nextCut = 0;
  }

  push(data: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(data.length - offset, this.max - this.fill);
      this.buf.set(data.subarray(offset, offset + take), this.fill);
      this.fill += take;
      offset += take;
      let cut = this.findCut();
      while (cut > 0) {
        out.push(this.emit(cut));
        cut = this.findCut();
      }
    }
    return out;
  }

  finish(): Buffer[] {
    const out: Buffer[] = [];
    while (this.fill > 0) {
      const cut = this.findCut();
      out.push(this.emit(cut > 0 ? cut : this.fill));
    }
    return out;
  }

  /** Scan the buffered bytes; return the cut length, or 0 when more input is needed. */
  private findCut(): number {
    const { fill, min, avg, max } = this;
    while (this.nextCut < this.cuts.length && this.cuts[this.nextCut]! <= this.pos) this.nextCut++;
    // a forced cut ahead, as a length from buf[0]; Infinity when none
    const bound = this.nextCut < this.cuts.length ? this.cuts[this.nextCut]! - this.pos : Infinity;
    const end = Math.min(fill, bound);
    if (end < min) return bound <= fill ? bound : 0;
    const start = Math.max(this.scanned, min);
    const small = Math.min(avg, end);
    const large = Math.min(max, end);
    const found = scan(this.buf, start, small, large, this.hash, this.maskSmall, this.maskLarge);
    if (found > 0) return found;
    if (bound <= fill && bound <= max) return bound;
    if (fill >= max) return max;
    this.scanned = Math.max(start, large);
    this.hash = scanState;
    return 0;
  }

  private emit(length: number): Buffer {
    const chunk = Buffer.allocUnsafeSlow(length);
    this.buf.copy(chunk, 0, 0, length);
    // Keep the remainder at the front; it is at most one input buffer long.
    this.buf.copy(this.buf, 0, length, this.fill);
    this.fill -= length;
    this.pos += length;
    this.scanned = 0;
    this.hash = 0;
    return chunk;
  }
}

/** The rolling hash where `scan` stopped without a cut (a second return value, without allocating). */
let scanState = 0;

/**
 * The Gear scan: bytes [i, small) with the strict mask, then [small, large)
 * with the loose one. Returns the cut length, or 0 (and leaves the hash in
 * scanState). A plain function over locals so that V8 keeps it tight.
 */
function scan(buf: Uint8Array, i: number, small: number, large: number, h: number, maskSmall: number, maskLarge: number): number {
  const gear = GEAR;
  for (; i < small; i++) {
    h = ((h << 1) + gear[buf[i]!]!) | 0;
    if ((h & maskSmall) === 0) return i + 1;
  }
  for (; i < large; i++) {
    h = ((h << 1) + gear[buf[i]!]!) | 0;
    if ((h & maskLarge) === 0) return i + 1;
  }
  scanState = h;
  return 0;
}
