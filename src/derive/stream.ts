// The shapes every transform shares: a byte range of a source read in bounded
// windows, a lazily produced byte stream of known length, and the derived file
// a transform hands back (its bytes, streamed once, and its numbers).
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';

/** Bytes read per window: the most any transform holds of one tensor at a time. */
export const WINDOW = 1 << 20;

/** A tensor's bytes: [begin, end) of `file`. */
export interface ByteRange {
  file: FileSource;
  begin: number;
  end: number;
}

/** Bytes produced on demand; `byteLength` is exact and known before the first byte. */
export interface ByteStream {
  byteLength: number;
  chunks(): AsyncIterable<Uint8Array>;
}

/** [begin, end) of `file` in windows of at most `window` bytes (a multiple of 8, so elements never straddle two). */
export async function* readWindows(range: ByteRange, window = WINDOW): AsyncGenerator<Uint8Array> {
  for (let at = range.begin; at < range.end; ) {
    const n = Math.min(window, range.end - at);
    const bytes = await range.file.read(at, n);
    if (bytes.byteLength !== n) {
      throw new CairnError('INVALID_MODEL_FILE', `${range.file.path}: truncated: wanted ${n} bytes at ${at}, got ${bytes.byteLength}`);
    }
    yield bytes;
    at += n;
  }
}

export function bytesStream(bytes: Uint8Array): ByteStream {
  return {
    byteLength: bytes.byteLength,
    async *chunks() {
      if (bytes.byteLength > 0) yield bytes;
    },
  };
}

export function rangeStream(range: ByteRange): ByteStream {
  return { byteLength: range.end - range.begin, chunks: () => readWindows(range) };
}

/** A derived file: its bytes and the transform's numbers. */
export interface Derived<R> {
  /** exact length of the output in bytes */
  readonly size: number;
  /** the output in order; can be iterated once */
  stream(): AsyncGenerator<Uint8Array>;
  /** the transform's numbers; complete once stream() has been read to its end (throws before) */
  report(): R;
}

/**
 * Wraps a transform's output: checks it is produced once and has exactly
 * `size` bytes (a mismatch is a bug in the transform, never sent on as a
 * valid file), and releases the report only after the last byte.
 */
export function derived<R>(size: number, parts: () => AsyncIterable<Uint8Array>, report: () => R): Derived<R> {
  let started = false;
  let finished = false;
  return {
    size,
    async *stream() {
      if (started) throw new Error('derive: the output stream can be read once');
      started = true;
      let produced = 0;
      for await (const chunk of parts()) {
        produced += chunk.byteLength;
        if (produced > size) throw new Error(`derive: produced more than the announced ${size} bytes`);
        if (chunk.byteLength > 0) yield chunk;
      }
      if (produced !== size) throw new Error(`derive: produced ${produced} bytes, announced ${size}`);
      finished = true;
    },
    report() {
      if (!finished) throw new Error('derive: the report is complete once the output has been read to its end');
      return report();
    },
  };
}
