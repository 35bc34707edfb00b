// Files for the derive tests: a FileSource over a file on disk (positional
// reads, nothing held), writing a derived stream to disk, and the derives
// whose memory the tests measure from outside (in a child process).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deriveOnnx, type OnnxParams } from '../../src/derive/onnx-transforms.ts';
import { deriveSafetensors } from '../../src/derive/safetensors-transforms.ts';
import type { Derived } from '../../src/derive/stream.ts';
import type { FileSource } from '../../src/formats/types.ts';

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

/** Reads the derived stream to its end (holding nothing); the bytes it gave. */
async function drain(d: Derived<unknown>): Promise<number> {
  let bytes = 0;
  for await (const chunk of d.stream()) bytes += chunk.byteLength;
  return bytes;
}

// Work for process-memory.ts's runInChild: the derive tests measure a
// child's memory while it does this, from outside (JSON in, JSON out).

/** Derives an ONNX file and reads the result to its end. */
export async function deriveOnnxFile(file: string, params: OnnxParams): Promise<{ inputSize: number; size: number; bytes: number }> {
  const source = diskSource(file);
  try {
    const d = await deriveOnnx(source, params);
    return { inputSize: source.size, size: d.size, bytes: await drain(d) };
  } finally {
    source.close();
  }
}

/**
 * Casts one F32 tensor of `elements` to BF16 and reads the result to its
 * end. The tensor's data repeats a 1 MiB pattern, made as it is read: the
 * source holds nothing of it either.
 */
export async function castPatternTensor(elements: number): Promise<{ inputSize: number; size: number; bytes: number; biggestRead: number }> {
  const header = Buffer.from(JSON.stringify({ big: { dtype: 'F32', shape: [elements / 8192, 8192], data_offsets: [0, elements * 4] } }).padEnd(96, ' '));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.byteLength));
  const head = Buffer.concat([prefix, header]);
  let biggestRead = 0;
  const pattern = new Uint8Array(new Float32Array(1 << 18).map((_, i) => Math.sin(i) * 3).buffer);
  const source: FileSource = {
    path: 'big.safetensors',
    size: head.byteLength + elements * 4,
    async read(offset, length) {
      const end = Math.min(offset + length, this.size);
      biggestRead = Math.max(biggestRead, end - offset);
      const out = new Uint8Array(Math.max(0, end - offset));
      for (let at = offset; at < end; ) {
        if (at < head.byteLength) {
          out[at - offset] = head[at++]!;
          continue;
        }
        const p = (at - head.byteLength) % pattern.byteLength;
        const n = Math.min(pattern.byteLength - p, end - at);
        out.set(pattern.subarray(p, p + n), at - offset);
        at += n;
      }
      return out;
    },
  };
  const d = await deriveSafetensors(source, { transform: 'cast', to: 'BF16' });
  return { inputSize: source.size, size: d.size, bytes: await drain(d), biggestRead };
}
