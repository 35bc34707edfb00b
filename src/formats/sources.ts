// FileSource implementations: over an in-memory buffer (tests, fuzzing) and
// with a small read-through cache of aligned blocks (for sources whose reads
// are expensive, like stored chunks).
import type { FileSource } from './types.ts';

export function bufferSource(path: string, bytes: Uint8Array): FileSource {
  return {
    path,
    size: bytes.byteLength,
    async read(offset, length) {
      if (offset < 0 || length < 0) throw new RangeError('negative read');
      return bytes.subarray(Math.min(offset, bytes.byteLength), Math.min(offset + length, bytes.byteLength));
    },
  };
}

/**
 * Caches reads in aligned blocks so that parsers doing many small reads
 * (protobuf field headers, zip directories) cost one fetch per block.
 */
export function cachedSource(inner: FileSource, blockSize = 1 << 20, maxBlocks = 8): FileSource {
  const blocks = new Map<number, Promise<Uint8Array>>();
  const block = (index: number): Promise<Uint8Array> => {
    let b = blocks.get(index);
    if (b) {
      blocks.delete(index); // move to the back: most recently used
      blocks.set(index, b);
      return b;
    }
    b = inner.read(index * blockSize, blockSize);
    blocks.set(index, b);
    if (blocks.size > maxBlocks) blocks.delete(blocks.keys().next().value!);
    return b;
  };
  return {
    path: inner.path,
    size: inner.size,
    async read(offset, length) {
      if (offset < 0 || length < 0) throw new RangeError('negative read');
      const end = Math.min(offset + length, inner.size);
      if (offset >= end) return new Uint8Array(0);
      if (end - offset > blockSize * 2) return inner.read(offset, end - offset);
      const first = Math.floor(offset / blockSize);
      const last = Math.floor((end - 1) / blockSize);
      if (first === last) {
        const b = await block(first);
        return b.subarray(offset - first * blockSize, end - first * blockSize);
      }
      const out = new Uint8Array(end - offset);
      let at = 0;
      for (let i = first; i <= last; i++) {
        const b = await block(i);
        const from = i === first ? offset - i * blockSize : 0;
        const to = i === last ? end - i * blockSize : b.byteLength;
        out.set(b.subarray(from, to), at);
        at += to - from;
      }
      return out;
    },
  };
}
