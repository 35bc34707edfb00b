// Files for the derive tests: a FileSource over a file on disk (positional
// reads, nothing held), and writing a derived stream to disk.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FileSource } from '../../src/formats/types.ts';
import type { Derived } from '../../src/derive/stream.ts';

export function diskSource(file: string): FileSource & { close(): void } {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  return {
    path: file,
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.allocUnsafe(n);
      let done = 0;
      while (done < n) {
        const got = fs.readSync(fd, buf, done, n - done, offset + done);
        if (got === 0) break;
        done += got;
      }
      return buf.subarray(0, done);
    },
    close: () => fs.closeSync(fd),
  };
}

/** Writes the derived bytes to `file`; returns their sha256. */
export async function writeDerived(d: Derived<unknown>, file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    Readable.from(d.stream()),
    async function* (chunks: AsyncIterable<Uint8Array>) {
      for await (const c of chunks) {
        hash.update(c);
        yield c;
      }
    },
    fs.createWriteStream(file),
  );
  return hash.digest('hex');
}

/** Reads the derived stream to its end; returns the bytes and how far ArrayBuffer memory grew meanwhile. */
export async function drainMeasuringMemory(d: Derived<unknown>): Promise<{ bytes: number; peak: number }> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  let bytes = 0;
  for await (const chunk of d.stream()) {
    bytes += chunk.byteLength;
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  }
  return { bytes, peak };
}
