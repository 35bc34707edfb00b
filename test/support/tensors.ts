// Generated safetensors files with realistic float weights, streamed (never
// held whole in memory): normal-distributed values with a per-tensor scale,
// stored as BF16 (round-to-nearest-even from float32) or F32. Randomness comes
// from an AES-CTR keystream (test/support/bytes.ts): reproducible per seed.
import { keystream } from './bytes.ts';

export interface TensorSpec {
  name: string;
  dtype: 'BF16' | 'F32';
  /** number of elements */
  elements: number;
  /** seed of its values; change it to change the tensor */
  seed: string;
  /** standard deviation */
  scale: number;
}

const WIDTH = { BF16: 2, F32: 4 } as const;

/** 2^16 standard-normal float32 values (inverse CDF at evenly spaced quantiles), indexed by random 16 bits. */
const NORMAL = (() => {
  const n = 1 << 16;
  const t = new Float32Array(n);
  // Acklam-style rational approximation is overkill; Box-Muller on a fixed grid is exact enough.
  for (let i = 0; i < n; i += 2) {
    const u1 = (i + 0.5) / n;
    const u2 = ((i * 40503) % n + 0.5) / n;
    const r = Math.sqrt(-2 * Math.log(u1));
    t[i] = r * Math.cos(2 * Math.PI * u2);
    t[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return t;
})();

export function safetensorsHeader(tensors: TensorSpec[], metadata?: Record<string, string>): Buffer {
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    const bytes = t.elements * WIDTH[t.dtype];
    json[t.name] = { dtype: t.dtype, shape: [t.elements], data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return Buffer.concat([head, Buffer.from(text)]);
}

export function safetensorsSize(tensors: TensorSpec[], metadata?: Record<string, string>): number {
  return safetensorsHeader(tensors, metadata).length + tensors.reduce((n, t) => n + t.elements * WIDTH[t.dtype], 0);
}

/** `elements` values of one tensor, in pieces of at most `piece` elements. */
export function* tensorBytes(t: TensorSpec, piece = 1 << 19): Generator<Buffer> {
  const ks = keystream(`tensor-${t.seed}`);
  const w = WIDTH[t.dtype];
  const f = new Float32Array(Math.min(piece, t.elements));
  const u = new Uint32Array(f.buffer);
  for (let left = t.elements; left > 0; left -= piece) {
    const n = Math.min(piece, left);
    const rnd = ks.next(n * 2);
    const idx = new Uint16Array(rnd.buffer, rnd.byteOffset, n);
    for (let i = 0; i < n; i++) f[i] = NORMAL[idx[i]!]! * t.scale;
    const out = Buffer.allocUnsafe(n * w);
    if (w === 4) {
      Buffer.from(f.buffer, 0, n * 4).copy(out);
    } else {
      const o = new Uint16Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const x = u[i]!;
        o[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
      }
    }
    yield out;
  }
}

/** The whole file, streamed. */
export function* safetensorsStream(tensors: TensorSpec[], metadata?: Record<string, string>): Generator<Buffer> {
  yield safetensorsHeader(tensors, metadata);
  for (const t of tensors) yield* tensorBytes(t);
}

/**
 * A transformer-like model of about `totalBytes`: per layer a few large weight
 * matrices and a tiny norm vector; scales vary per tensor.
 */
export function modelSpec(totalBytes: number, dtype: 'BF16' | 'F32', options: { matrixBytes?: number; seed?: string } = {}): TensorSpec[] {
  const w = WIDTH[dtype];
  const matrix = options.matrixBytes ?? 16 * 1024 * 1024;
  const norm = 4096;
  const specs: TensorSpec[] = [];
  let bytes = 0;
  for (let layer = 0; bytes < totalBytes; layer++) {
    specs.push({ name: `layers.${layer}.norm.weight`, dtype, elements: norm, seed: `${options.seed ?? 'm'}-${layer}-norm`, scale: 1 });
    bytes += norm * w;
    for (const part of ['q', 'k', 'v', 'o']) {
      if (bytes >= totalBytes) break;
      const elements = Math.min(matrix, totalBytes - bytes) / w | 0;
      if (elements <= 0) break;
      specs.push({ name: `layers.${layer}.attn.${part}.weight`, dtype, elements, seed: `${options.seed ?? 'm'}-${layer}-${part}`, scale: 0.01 + 0.03 * (((layer * 7 + part.charCodeAt(0)) % 11) / 11) });
      bytes += elements * w;
    }
  }
  return specs;
}
