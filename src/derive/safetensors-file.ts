// Reading a safetensors file's layout (validated by the format detector's
// parser, then the header's JSON for shapes and metadata) and writing one
// tensor by tensor: header first, then each tensor's bytes in order, with
// offsets assigned contiguously. The header is padded with spaces to a
// multiple of 8 bytes, as the reference writer does.
import { safetensorsTensorRanges } from '../formats/safetensors.ts';
import type { FileSource } from '../formats/types.ts';
import type { ByteStream } from './stream.ts';

const PIECE = 16 << 20;

export interface SafetensorsEntry {
  name: string;
  /** the reference dtype name: F32, BF16, I64, … */
  dtype: string;
  shape: number[];
  /** absolute offsets in the file */
  begin: number;
  end: number;
}

export interface SafetensorsLayout {
  /** `__metadata__`, key order kept */
  metadata: Array<[string, string]> | undefined;
  /** in data order */
  tensors: SafetensorsEntry[];
}

export async function readSafetensorsLayout(file: FileSource): Promise<SafetensorsLayout> {
  const ranges = await safetensorsTensorRanges(file); // validates, or throws InvalidModelFileError
  const head = await file.read(0, 8);
  const headerSize = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  const header = new Uint8Array(headerSize);
  for (let at = 0; at < headerSize; at += PIECE) header.set(await file.read(8 + at, Math.min(PIECE, headerSize - at)), at);
  const json = JSON.parse(new TextDecoder().decode(header)) as Record<string, unknown>;
  const entries = new Map(Object.entries(json));
  const meta = entries.get('__metadata__') as Record<string, string> | null | undefined;
  const tensors = ranges.map((r): SafetensorsEntry => {
    const info = entries.get(r.name) as { dtype: string; shape: number[] };
    return { name: r.name, dtype: info.dtype, shape: info.shape.map(Number), begin: r.begin, end: r.end };
  });
  return { metadata: meta ? Object.entries(meta) : undefined, tensors };
}

export interface OutputTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: ByteStream;
}

/** The header bytes (length prefix included) for `tensors` laid out in order. */
export function safetensorsHeader(metadata: Array<[string, string]> | undefined, tensors: OutputTensor[]): Uint8Array {
  // written by hand, not JSON.stringify(object): keys keep their order even when they look like integers
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":{${metadata.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  let at = 0;
  for (const t of tensors) {
    const end = at + t.data.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${at},${end}]}`);
    at = end;
  }
  let text = Buffer.from(`{${parts.join(',')}}`);
  const pad = (8 - (text.byteLength % 8)) % 8;
  if (pad) text = Buffer.concat([text, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + text.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  out.set(text, 8);
  return out;
}

export function safetensorsSize(header: Uint8Array, tensors: OutputTensor[]): number {
  return tensors.reduce((n, t) => n + t.data.byteLength, header.byteLength);
}

export async function* safetensorsBytes(header: Uint8Array, tensors: OutputTensor[]): AsyncGenerator<Uint8Array> {
  yield header;
  for (const t of tensors) yield* t.data.chunks();
}
