// Tensor layout of a file being stored, read from the first bytes of its
// stream: where each tensor starts and ends and how wide its elements are.
// The chunk store uses it to cut chunks at tensor boundaries (an unchanged
// tensor stays an unchanged chunk even when the header before it changes size)
// and to hint the codec at float element widths (byte-grouped zstd).
//
// Formats: safetensors (u64 LE header length + JSON with `data_offsets`) and
// GGUF v2/v3 little-endian. Detection is by content (the first bytes), not by
// name. This runs on the event loop while a file is uploaded, so its cost is
// bounded: the header is read from a bounded prefix of the stream
// (MAX_LAYOUT_HEADER; a safetensors JSON header, which JSON.parse must take
// whole, MAX_SAFETENSORS_LAYOUT_HEADER), and at most MAX_LAYOUT_TENSORS
// tensors are laid out. A larger or malformed header simply disables the
// optimisation — the file is then chunked by content only, as before.

/** A tensor's byte range in the file, [begin, end), and its element width in bytes (1 = not a float type we group). */
export interface TensorSpan {
  begin: number;
  end: number;
  width: number;
}

export interface TensorLayout {
  format: 'safetensors' | 'gguf';
  /** where the tensor data starts (everything before it is header) */
  dataStart: number;
  /** in file order, non-overlapping */
  tensors: TensorSpan[];
}

/** Headers larger than this are not parsed (the optimisation is skipped). GGUF headers hold the vocabulary: several MiB. */
export const MAX_LAYOUT_HEADER = 16 * 1024 * 1024;
/**
 * A safetensors header is JSON, parsed in one go: ~100 ms per MiB of
 * adversarial JSON (tiny objects), so it is kept to 1 MiB — ~10,000 tensors,
 * more than real files hold (a 7B model: ~300; SDXL in one file: ~2,500).
 */
export const MAX_SAFETENSORS_LAYOUT_HEADER = 1024 * 1024;
/** More tensors than this: no layout (each becomes a cut, a span, a row in the session's saved layout). */
export const MAX_LAYOUT_TENSORS = 16_384;

const SAFETENSORS_WIDTH: Record<string, number> = { BF16: 2, F16: 2, F32: 4 };
const GGUF_WIDTH: Record<number, number> = { 0: 4, 1: 2, 30: 2 }; // F32, F16, BF16

export type LayoutProbe =
  | { state: 'need'; bytes: number } // give me at least this many bytes of the stream
  | { state: 'none' } // not a known tensor format, or its header is too large / malformed
  | { state: 'found'; layout: TensorLayout };

/**
 * Looks at the first bytes of a stream (`head`; `ended` when that is all of
 * it). Asks for more when the header is not complete yet (never more than
 * MAX_LAYOUT_HEADER).
 */
export function probeLayout(head: Uint8Array, ended: boolean): LayoutProbe {
  if (head.length < 8) return ended ? { state: 'none' } : { state: 'need', bytes: 8 };
  if (head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) return probeGguf(head, ended);
  return probeSafetensors(head, ended);
}

const DATA_OFFSETS = Buffer.from('"data_offsets"');

function probeSafetensors(head: Uint8Array, ended: boolean): LayoutProbe {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const n = view.getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_SAFETENSORS_LAYOUT_HEADER - 8)) return { state: 'none' };
  const headerEnd = 8 + Number(n);
  if (head.length > 8 && head[8] !== 0x7b /* { */) return { state: 'none' };
  if (head.length < headerEnd) return ended ? { state: 'none' } : { state: 'need', bytes: headerEnd };
  // Count the tensors before building any object for them.
  const bytes = Buffer.from(head.buffer, head.byteOffset, headerEnd);
  let entries = 0;
  for (let at = bytes.indexOf(DATA_OFFSETS, 8); at >= 0; at = bytes.indexOf(DATA_OFFSETS, at + DATA_OFFSETS.length)) {
    if (++entries > MAX_LAYOUT_TENSORS) return { state: 'none' };
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(head.buffer, head.byteOffset + 8, headerEnd - 8).toString('utf8'));
  } catch {
    return { state: 'none' };
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return { state: 'none' };
  const tensors: TensorSpan[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; data_offsets?: unknown };
    const offs = e?.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || typeof e.dtype !== 'string') return { state: 'none' };
    const [b, en] = offs as unknown[];
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(en) || (b as number) < 0 || (en as number) < (b as number)) return { state: 'none' };
    tensors.push({ begin: headerEnd + (b as number), end: headerEnd + (en as number), width: SAFETENSORS_WIDTH[e.dtype] ?? 1 });
  }
  return finish('safetensors', headerEnd, tensors);
}

function finish(format: TensorLayout['format'], dataStart: number, spans: TensorSpan[]): LayoutProbe {
  const tensors = spans.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < tensors.length; i++) if (tensors[i]!.begin < tensors[i - 1]!.end) return { state: 'none' };
  return { state: 'found', layout: { format, dataStart, tensors } };
}

class Truncated extends Error {}

function probeGguf(head: Uint8Array, ended: boolean): LayoutProbe {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let pos = 4;
  const need = (n: number) => {
    if (pos + n > head.length) throw new Truncated();
  };
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  // Two u32 halves, not getBigUint64: BigInt arithmetic made a 10 MiB vocabulary cost ~100 ms.
  const u64 = () => {
    need(8);
    pos += 8;
    const high = view.getUint32(pos - 4, true);
    if (high > 0x1fffff) throw new Error('too large');
    return high * 0x1_0000_0000 + view.getUint32(pos - 8, true);
  };
  const skipStr = () => {
    const n = u64();
    need(n);
    pos += n;
  };
  const str = () => {
    const at = pos + 8;
    skipStr();
    return Buffer.from(head.buffer, head.byteOffset + at, pos - at).toString('utf8');
  };
  const FIXED: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skipValue = (type: number): number | undefined => {
    if (FIXED[type] !== undefined) {
      const size = FIXED[type]!;
      need(size);
      const v = type === 4 ? view.getUint32(pos, true) : type === 10 ? Number(view.getBigUint64(pos, true)) : undefined;
      pos += size;
      return v;
    }
    if (type === 8) {
      skipStr(); // no decoding: a vocabulary is hundreds of thousands of strings
      return undefined;
    }
    if (type === 9) {
      const inner = u32();
      const count = u64();
      if (FIXED[inner] !== undefined) {
        need(count * FIXED[inner]!);
        pos += count * FIXED[inner]!;
      } else for (let i = 0; i < count; i++) skipValue(inner);
      return undefined;
    }
    throw new Error(`bad value type ${type}`);
  };
  try {
    const version = u32();
    if (version !== 2 && version !== 3) return { state: 'none' };
    const nTensors = u64();
    const nKv = u64();
    if (nTensors > MAX_LAYOUT_TENSORS || nKv > 1_000_000) return { state: 'none' };
    let alignment = 32;
    for (let i = 0; i < nKv; i++) {
      const key = str();
      const v = skipValue(u32());
      if (key === 'general.alignment' && v !== undefined) alignment = v;
    }
    if (!(alignment > 0 && (alignment & (alignment - 1)) === 0)) return { state: 'none' };
    const infos: Array<{ offset: number; width: number }> = [];
    for (let t = 0; t < nTensors; t++) {
      skipStr();
      const nDims = u32();
      if (nDims > 8) return { state: 'none' };
      need(nDims * 8);
      pos += nDims * 8;
      const type = u32();
      infos.push({ offset: u64(), width: GGUF_WIDTH[type] ?? 1 });
    }
    const dataStart = Math.ceil(pos / alignment) * alignment;
    // Tensor sizes need the ggml type table; a tensor is taken to run to the
    // next one's start (alignment padding included), the last one to the end.
    infos.sort((a, b) => a.offset - b.offset);
    const spans = infos.map((t, i) => ({ begin: dataStart + t.offset, end: i + 1 < infos.length ? dataStart + infos[i + 1]!.offset : Number.MAX_SAFE_INTEGER, width: t.width }));
    return finish('gguf', dataStart, spans);
  } catch (err) {
    if (err instanceof Truncated) {
      if (ended || head.length >= MAX_LAYOUT_HEADER) return { state: 'none' };
      return { state: 'need', bytes: Math.min(MAX_LAYOUT_HEADER, Math.max(head.length * 2, 64 * 1024)) };
    }
    return { state: 'none' };
  }
}

/**
 * The forced cut points for a layout (absolute offsets): the end of the header,
 * and every tensor boundary — except that runs of tensors smaller than
 * `minSize` are grouped (cut once the group reaches `minSize`), so a model
 * with many tiny tensors (biases, norms) does not become thousands of tiny
 * objects. Grouping depends only on tensor sizes, so it is stable when values
 * change; the price is that a changed tiny tensor changes its whole group.
 * A tensor of at least `minSize` always starts and ends a chunk, so the
 * content-defined cuts inside it depend only on its own bytes.
 */
export function forcedCuts(layout: TensorLayout, minSize: number): number[] {
  const cuts: number[] = [];
  const { tensors } = layout;
  if (tensors.length === 0) return cuts;
  let last = tensors[0]!.begin;
  if (last > 0) cuts.push(last);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    const next = tensors[i + 1];
    if (!next) {
      if (t.end < Number.MAX_SAFE_INTEGER) cuts.push(t.end);
      break;
    }
    // gaps (padding) belong to the tensor before them: the boundary is the next start
    const at = next.begin;
    const big = (x: TensorSpan) => x.end - x.begin >= minSize;
    if (big(t) || big(next) || at - last >= minSize) {
      cuts.push(at);
      last = at;
    }
  }
  return cuts;
}

/**
 * The codec hint for the chunk [at, at + size): the element width when every
 * tensor it touches has the same width (and it has no header bytes), with the
 * number of leading bytes that belong to an element begun before the chunk;
 * `{ width: 1 }` for header-only chunks (JSON, metadata: plain zstd);
 * undefined (let the codec guess) when mixed.
 */
export class HintCursor {
  private i = 0;
  constructor(private readonly layout: TensorLayout) {}

  hint(at: number, size: number): { width: number; skip?: number } | undefined {
    const { tensors, dataStart } = this.layout;
    const end = at + size;
    if (end <= dataStart) return { width: 1 };
    if (at < dataStart) return undefined;
    while (this.i < tensors.length && tensors[this.i]!.end <= at) this.i++;
    let width: number | undefined;
    let first: TensorSpan | undefined;
    for (let j = this.i; j < tensors.length && tensors[j]!.begin < end; j++) {
      const t = tensors[j]!;
      if (width === undefined) {
        width = t.width;
        first = t;
      } else if (t.width !== width) return undefined;
    }
    if (width === undefined || !first) return undefined;
    if (width === 1) return { width: 1 };
    const into = at - first.begin;
    return { width, skip: into >= 0 ? (width - (into % width)) % width : -into % width };
  }
}
