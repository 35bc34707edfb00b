// Tensor layout of a file being stored: where each tensor starts and ends
// and how wide its elements are. The chunk store cuts chunks at tensor
// boundaries (an unchanged tensor stays an unchanged chunk even when the
// header before it changes size) and hints the codec at float element widths
// (byte-grouped zstd). What a file's bytes mean is not the chunk store's to
// know: a LayoutFinder, given the first bytes of the stream, reads the layout
// from them (src/formats/tensor-layout.ts, with the format parsers) and
// hands it over as plain data. An upload session keeps the layout it was
// given (uploads.layout) and resumes with it.
import type { ChunkerOptions } from '../codecs/chunker.ts';

/** A tensor's byte range in the file, [begin, end), and its element width in bytes (1 = not a float type we group). */
export interface TensorSpan {
  begin: number;
  end: number;
  width: number;
}

export interface TensorLayout {
  /** the file format it was read from (a label: safetensors, gguf) */
  format: string;
  /** where the tensor data starts (everything before it is header) */
  dataStart: number;
  /** in file order, non-overlapping */
  tensors: TensorSpan[];
}

export type LayoutProbe =
  | { state: 'need'; bytes: number } // give me at least this many bytes of the stream
  | { state: 'none' } // not a known tensor format, or its header is too large / malformed
  | { state: 'found'; layout: TensorLayout };

/**
 * Looks at the first bytes of a stream (`head`; `ended` when that is all of
 * it) and says what it found, or how many bytes it needs to decide. Its cost
 * must be bounded: it runs on the event loop while a file is uploaded.
 */
export type LayoutFinder = (head: Uint8Array, ended: boolean) => LayoutProbe | Promise<LayoutProbe>;

/**
 * The forced cut points for a layout (absolute offsets): the end of the
 * header, and every tensor boundary — except that runs of tensors smaller than
 * the chunking's tensorGroupSize are grouped (cut once the group reaches it),
 * so a model with many tiny tensors (biases, norms) does not become thousands
 * of tiny objects. A tensor of at least tensorGroupSize always starts and ends
 * a chunk, so the content-defined cuts inside it depend only on its own bytes,
 * and a changed small tensor re-stores at most its group (< 2 × tensorGroupSize).
 * Grouping depends only on tensor sizes and the distances between them: values
 * changing or a header changing length shifts no group. Part of the storage
 * format (the cut points), like the chunking options.
 */
export function forcedCuts(layout: TensorLayout, chunking: ChunkerOptions): number[] {
  const groupSize = chunking.tensorGroupSize ?? chunking.minSize;
  const cuts: number[] = [];
  const { tensors } = layout;
  if (tensors.length === 0) return cuts;
  let last = tensors[0]!.begin;
  if (last > 0) cuts.push(last);
  // a tensor's extent runs to the next one's start: padding belongs to the tensor before it
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    const next = tensors[i + 1];
    if (!next) {
      if (t.end < Number.MAX_SAFE_INTEGER) cuts.push(t.end);
      break;
    }
    const extent = next.begin - t.begin;
    const nextExtent = (tensors[i + 2]?.begin ?? next.end) - next.begin;
    if (extent >= groupSize || nextExtent >= groupSize || next.begin - last >= groupSize) {
      cuts.push(next.begin);
      last = next.begin;
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
