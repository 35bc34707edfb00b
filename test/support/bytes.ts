// Deterministic generated test bytes. Pseudo-random data comes from an
// AES-256-CTR keystream keyed by a seed string: incompressible, reproducible,
// and fast enough (GB/s) to generate hundreds of MiB on the fly.
import { createCipheriv, createHash } from 'node:crypto';

const ZEROS = Buffer.alloc(1 << 20);

/** A keystream generator for `seed`; each call to `next(n)` returns the next n bytes. */
export function keystream(seed: string): { next(n: number): Buffer } {
  const key = createHash('sha256').update(`cairn-test-${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return {
    next(n: number): Buffer {
      if (n <= ZEROS.length) return cipher.update(ZEROS.subarray(0, n));
      const parts: Buffer[] = [];
      for (let left = n; left > 0; left -= ZEROS.length) parts.push(cipher.update(ZEROS.subarray(0, Math.min(left, ZEROS.length))));
      return Buffer.concat(parts, n);
    },
  };
}

/** `size` incompressible bytes, the same for the same seed. */
export function randomBytesFor(seed: string, size: number): Buffer {
  return keystream(seed).next(size);
}

/** The same bytes as randomBytesFor(seed, size), streamed in pieces of `piece` bytes. */
export async function* randomStream(seed: string, size: number, piece = 1 << 20): AsyncGenerator<Buffer> {
  const ks = keystream(seed);
  for (let left = size; left > 0; left -= piece) yield ks.next(Math.min(piece, left));
}

/** Highly compressible text-like bytes. */
export function compressibleBytes(size: number, seed = 'text'): Buffer {
  const line = Buffer.from(`${seed}: the quick brown fox jumps over the lazy dog 0123456789\n`);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += line.length) line.copy(out, i, 0, Math.min(line.length, size - i));
  return out;
}

export function sha256hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function digestOf(data: Uint8Array): string {
  return `sha256:${sha256hex(data)}`;
}

export const MiB = 1024 * 1024;
export const KiB = 1024;

/** ~14 MiB in several chunks of every codec: incompressible, text-like, and bf16-like values. */
export function mixedCodecBytes(seed: string): Buffer {
  const bf16 = Buffer.alloc(4 * MiB);
  const noise = randomBytesFor(`${seed}-bf16`, bf16.length / 2);
  for (let i = 0; i < bf16.length; i += 2) {
    bf16[i] = noise[i / 2]!; // mantissa: noise
    bf16[i + 1] = 0x3c + (noise[i / 2]! & 3); // sign and exponent: a few values, like real weights
  }
  return Buffer.concat([randomBytesFor(seed, 6 * MiB), compressibleBytes(4 * MiB, seed), bf16]);
}
