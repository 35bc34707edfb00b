// The tensor layout of a file being uploaded, read from the first bytes of its
// stream with the format parsers (formats/safetensors.ts, formats/gguf.ts) and
// handed to the chunk store as plain data (codecs/tensor-layout.ts): where each
// tensor starts and ends, and the element width of the float tensors whose
// bytes the codec groups (F32: 4; F16, BF16: 2; anything else 1, not grouped).
//
// Detection is by content (the first bytes), not by name. This runs on the
// event loop while a file is uploaded, so its cost is bounded: the header is
// read from a bounded prefix of the stream (MAX_LAYOUT_HEADER; a safetensors
// header, parsed in one go, MAX_SAFETENSORS_LAYOUT_HEADER), and files of more
// than MAX_LAYOUT_TENSORS tensors are not laid out. A header that is larger,
// malformed, or not little-endian (the codec's byte planes assume it) simply
// disables the optimisation: the file is then chunked by content only.
import type { LayoutProbe, TensorLayout, TensorSpan } from '../codecs/tensor-layout.ts';
import { GgufTruncatedError, ggufTensorLayout } from '../formats/gguf.ts';
import { safetensorsHeaderTensors } from '../formats/safetensors.ts';
import type { FileSource } from '../formats/types.ts';

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

const NONE: LayoutProbe = { state: 'none' };
const SAFETENSORS_WIDTH: Record<string, number> = { bfloat16: 2, float16: 2, float32: 4 };
const GGUF_WIDTH: Record<number, number> = { 0: 4, 1: 2, 30: 2 }; // F32, F16, BF16
const GGUF_MAGIC = [0x47, 0x47, 0x55, 0x46];

/**
 * Looks at the first bytes of a stream (`head`; `ended` when that is all of
 * it). Asks for more while the header is not complete (never more than
 * MAX_LAYOUT_HEADER). Never throws.
 */
export async function findTensorLayout(head: Uint8Array, ended: boolean): Promise<LayoutProbe> {
  if (head.length < 8) return ended ? NONE : { state: 'need', bytes: 8 };
  try {
    return GGUF_MAGIC.every((b, i) => head[i] === b) ? await ggufLayout(head, ended) : safetensorsLayout(head, ended);
  } catch {
    return NONE; // a malformed header (InvalidModelFileError), or one the parsers cannot take
  }
}

const DATA_OFFSETS = Buffer.from('"data_offsets"');

function safetensorsLayout(head: Uint8Array, ended: boolean): LayoutProbe {
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_SAFETENSORS_LAYOUT_HEADER - 8)) return NONE;
  const dataStart = 8 + Number(n);
  if (head.length > 8 && head[8] !== 0x7b /* { */) return NONE;
  if (head.length < dataStart) return ended ? NONE : { state: 'need', bytes: dataStart };
  // Count the tensors before the parser builds anything for them.
  const header = Buffer.from(head.buffer, head.byteOffset + 8, dataStart - 8);
  let entries = 0;
  for (let at = header.indexOf(DATA_OFFSETS); at >= 0; at = header.indexOf(DATA_OFFSETS, at + DATA_OFFSETS.length)) {
    if (++entries > MAX_LAYOUT_TENSORS) return NONE;
  }
  const tensors = safetensorsHeaderTensors(header, dataStart);
  return found('safetensors', dataStart, tensors.map((t) => ({ begin: t.begin, end: t.end, width: SAFETENSORS_WIDTH[t.dtype] ?? 1 })));
}

async function ggufLayout(head: Uint8Array, ended: boolean): Promise<LayoutProbe> {
  const complete = ended || head.length >= MAX_LAYOUT_HEADER;
  let layout;
  try {
    layout = await ggufTensorLayout(headSource(head, ended), MAX_LAYOUT_TENSORS);
  } catch (err) {
    // The header goes on past what has arrived: ask for more (doubling, so that it is parsed a few times only).
    if (err instanceof GgufTruncatedError && !complete) return { state: 'need', bytes: Math.min(MAX_LAYOUT_HEADER, Math.max(head.length * 2, 64 * 1024)) };
    throw err;
  }
  if (!layout || !layout.littleEndian) return NONE;
  // Tensor sizes need the ggml type table; a tensor is taken to run to the
  // next one's start (alignment padding included), the last one to the end.
  const infos = [...layout.tensors].sort((a, b) => a.offset - b.offset);
  const { dataStart } = layout;
  const spans = infos.map((t, i) => ({
    begin: dataStart + t.offset,
    end: i + 1 < infos.length ? dataStart + infos[i + 1]!.offset : Number.MAX_SAFE_INTEGER,
    width: GGUF_WIDTH[t.type] ?? 1,
  }));
  return found('gguf', dataStart, spans);
}

/**
 * The bytes of a stream that have arrived, as a file: of their size once the
 * stream has ended, else of a size not known yet (the parser's checks against
 * the size pass). Reads return what is there; one that comes back short is
 * the parser's GgufTruncatedError.
 */
function headSource(head: Uint8Array, ended: boolean): FileSource {
  return {
    path: '',
    size: ended ? head.length : Number.MAX_SAFE_INTEGER,
    async read(offset, length) {
      return head.subarray(Math.min(offset, head.length), Math.min(offset + length, head.length));
    },
  };
}

function found(format: TensorLayout['format'], dataStart: number, spans: TensorSpan[]): LayoutProbe {
  const tensors = spans.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < tensors.length; i++) if (tensors[i]!.begin < tensors[i - 1]!.end) return NONE;
  return { state: 'found', layout: { format, dataStart, tensors } };
}
