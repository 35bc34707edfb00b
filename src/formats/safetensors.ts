// safetensors: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON,
// then the data buffer. Validation follows the reference implementation
// (huggingface/safetensors, `SafeTensors::read_metadata` + `Metadata::validate`)
// and reports its error names:
//
//   HeaderTooSmall               file shorter than 8 bytes
//   HeaderTooLarge               N > 100,000,000
//   InvalidHeaderLength          8 + N > file size
//   InvalidHeader                header is not valid UTF-8
//   InvalidHeaderDeserialization header is not a JSON object of the expected shape
//                                (unknown dtype, missing field, wrong types, trailing
//                                characters, duplicate `__metadata__`, non-string metadata)
//   InvalidOffset(name)          offsets (sorted by [begin, end]) not contiguous from 0
//   ValidationOverflow           shape product (× bits) overflows u64
//   MisalignedSlice              sub-byte dtype whose element bits are not a whole byte count
//   TensorInvalidInfo            end − begin ≠ elements × dtype size
//   MetadataIncompleteBuffer     last end ≠ file size − 8 − N
//
// Like the reference, leading JSON whitespace is accepted (its `{` check is
// commented out upstream) and `"__metadata__": null` means no metadata. Stricter
// than the reference: a duplicate tensor name is rejected (serde keeps the last
// one silently, which makes the header mean different things to different
// parsers).
//
// The header is read in bounded pieces (≤ 16 MiB each) and is at most 100 MB by
// the rule above; the data buffer is never read.
import { isUtf8 } from 'node:buffer';
import { InvalidModelFileError, SAFE, type FileFormat, type FileSource } from './types.ts';

const FORMAT = 'safetensors';
const MAX_HEADER_SIZE = 100_000_000;
const READ_PIECE = 16 * 1024 * 1024;
const U64_MAX = (1n << 64n) - 1n;
const MAX_DEPTH = 128; // serde_json's recursion limit
const META_MAX_KEYS = 64;
const META_MAX_KEY_CHARS = 256;
const META_MAX_VALUE_CHARS = 1024;
const LARGEST = 5;

/** reference dtype → [bits per element, Cairn lower-case name] */
const DTYPES: Record<string, readonly [number, string]> = {
  BOOL: [8, 'bool'],
  F4: [4, 'float4_e2m1'],
  F6_E2M3: [6, 'float6_e2m3'],
  F6_E3M2: [6, 'float6_e3m2'],
  U8: [8, 'uint8'],
  I8: [8, 'int8'],
  F8_E5M2: [8, 'float8_e5m2'],
  F8_E4M3: [8, 'float8_e4m3'],
  F8_E8M0: [8, 'float8_e8m0'],
  I16: [16, 'int16'],
  U16: [16, 'uint16'],
  F16: [16, 'float16'],
  BF16: [16, 'bfloat16'],
  I32: [32, 'int32'],
  U32: [32, 'uint32'],
  F32: [32, 'float32'],
  C64: [64, 'complex64'],
  F64: [64, 'float64'],
  I64: [64, 'int64'],
  U64: [64, 'uint64'],
};

/** One tensor's absolute byte range in the file. */
export interface SafetensorsTensorRange {
  name: string;
  /** Cairn lower-case dtype (float32, bfloat16, int8, …) */
  dtype: string;
  /** bits per element (4, 6, 8, 16, 32, 64): for byte-plane splitting */
  bits: number;
  /** absolute offsets in the file, [begin, end) */
  begin: number;
  end: number;
}

interface RawTensor {
  name: string;
  dtype: string; // reference name, e.g. BF16
  shape: bigint[];
  begin: bigint;
  end: bigint;
}

interface Parsed {
  headerSize: number;
  metadata: Map<string, string> | undefined;
  /** sorted by (begin, end), validated */
  tensors: RawTensor[];
  elements: bigint[];
}

/** A reason from the reference (or Cairn's own, for duplicate names). */
class Violation extends Error {
  constructor(readonly reason: string, detail?: string) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

function invalid(v: Violation): InvalidModelFileError {
  return new InvalidModelFileError(FORMAT, `invalid safetensors file: ${v.message}`);
}

// ---------------------------------------------------------------------------
// JSON header parser: byte-level, strict (serde_json's grammar), tracks
// duplicate keys, builds only what it needs, depth-limited.

const WS = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

class HeaderParser {
  private i = 0;
  constructor(private readonly b: Uint8Array) {}

  private fail(detail: string): never {
    throw new Violation('InvalidHeaderDeserialization', `${detail} at header byte ${this.i}`);
  }

  private ws(): void {
    while (WS(this.b[this.i])) this.i++;
  }

  private expect(c: number): void {
    this.ws();
    if (this.b[this.i] !== c) this.fail(`expected '${String.fromCharCode(c)}'`);
    this.i++;
  }

  parse(): { metadata: Map<string, string> | undefined; tensors: RawTensor[] } {
    const tensors: RawTensor[] = [];
    const names = new Set<string>();
    let metadata: Map<string, string> | undefined;
    let sawMetadata = false;
    this.expect(0x7b); // {
    this.ws();
    if (this.b[this.i] === 0x7d) this.i++;
    else {
      for (;;) {
        this.ws();
        const key = this.string();
        this.expect(0x3a); // :
        this.ws();
        if (key === '__metadata__') {
          if (sawMetadata) this.fail('duplicate field `__metadata__`');
          sawMetadata = true;
          metadata = this.metadataValue();
        } else {
          if (names.has(key)) throw new Violation('DuplicateTensorName', `tensor ${JSON.stringify(key.slice(0, 200))} appears twice in the header`);
          names.add(key);
          tensors.push(this.tensorInfo(key));
        }
        this.ws();
        const c = this.b[this.i++];
        if (c === 0x2c) continue;
        if (c === 0x7d) break;
        this.i--;
        this.fail("expected ',' or '}'");
      }
    }
    this.ws();
    if (this.i !== this.b.length) this.fail('trailing characters');
    return { metadata, tensors };
  }

  private metadataValue(): Map<string, string> | undefined {
    if (this.literal('null')) return undefined;
    if (this.b[this.i] !== 0x7b) this.fail('`__metadata__` must be a map of strings');
    this.i++;
    const map = new Map<string, string>();
    this.ws();
    if (this.b[this.i] === 0x7d) {
      this.i++;
      return map;
    }
    for (;;) {
      this.ws();
      const k = this.string();
      this.expect(0x3a);
      this.ws();
      if (this.b[this.i] !== 0x22) this.fail(`\`__metadata__\` value for ${JSON.stringify(k.slice(0, 100))} is not a string`);
      map.set(k, this.string()); // serde's HashMap keeps the last of duplicate keys
      this.ws();
      const c = this.b[this.i++];
      if (c === 0x2c) continue;
      if (c === 0x7d) return map;
      this.i--;
      this.fail("expected ',' or '}'");
    }
  }

  private tensorInfo(name: string): RawTensor {
    let dtype: string | undefined;
    let shape: bigint[] | undefined;
    let offsets: bigint[] | undefined;
    const c0 = this.b[this.i];
    if (c0 === 0x5b) {
      // serde also accepts a struct as a sequence: [dtype, shape, data_offsets]
      this.i++;
      dtype = this.dtype();
      this.expect(0x2c);
      this.ws();
      shape = this.u64Array();
      this.expect(0x2c);
      this.ws();
      offsets = this.u64Array();
      this.expect(0x5d);
    } else if (c0 === 0x7b) {
      this.i++;
      this.ws();
      if (this.b[this.i] === 0x7d) this.i++;
      else {
        for (;;) {
          this.ws();
          const k = this.string();
          this.expect(0x3a);
          this.ws();
          if (k === 'dtype') {
            if (dtype !== undefined) this.fail('duplicate field `dtype`');
            dtype = this.dtype();
          } else if (k === 'shape') {
            if (shape !== undefined) this.fail('duplicate field `shape`');
            shape = this.u64Array();
          } else if (k === 'data_offsets') {
            if (offsets !== undefined) this.fail('duplicate field `data_offsets`');
            offsets = this.u64Array();
          } else this.skipValue(2); // unknown fields are ignored, like serde's default
          this.ws();
          const c = this.b[this.i++];
          if (c === 0x2c) continue;
          if (c === 0x7d) break;
          this.i--;
          this.fail("expected ',' or '}'");
        }
      }
    } else this.fail(`tensor ${JSON.stringify(name.slice(0, 100))} is not an object`);
    if (dtype === undefined) this.fail('missing field `dtype`');
    if (shape === undefined) this.fail('missing field `shape`');
    if (offsets === undefined) this.fail('missing field `data_offsets`');
    if (offsets.length !== 2) this.fail(`\`data_offsets\` of ${JSON.stringify(name.slice(0, 100))} must have 2 elements`);
    return { name, dtype, shape, begin: offsets[0]!, end: offsets[1]! };
  }

  private dtype(): string {
    this.ws();
    if (this.b[this.i] !== 0x22) this.fail('`dtype` must be a string');
    const d = this.string();
    if (!Object.hasOwn(DTYPES, d)) this.fail(`unknown variant ${JSON.stringify(d.slice(0, 40))} for \`dtype\``);
    return d;
  }

  private u64Array(): bigint[] {
    if (this.b[this.i] !== 0x5b) this.fail('expected an array of unsigned integers');
    this.i++;
    const out: bigint[] = [];
    this.ws();
    if (this.b[this.i] === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.u64());
      this.ws();
      const c = this.b[this.i++];
      if (c === 0x2c) continue;
      if (c === 0x5d) return out;
      this.i--;
      this.fail("expected ',' or ']'");
    }
  }

  /** an unsigned integer that fits u64 (serde's usize on 64-bit); floats, negatives, overflow are type errors */
  private u64(): bigint {
    const b = this.b;
    const start = this.i;
    const c = b[this.i];
    if (c === undefined || c < 0x30 || c > 0x39) {
      this.number(); // reports a syntax error or a negative number
      this.i = start;
      this.fail('expected an unsigned integer');
    }
    if (c === 0x30 && b[this.i + 1] !== undefined && b[this.i + 1]! >= 0x30 && b[this.i + 1]! <= 0x39) this.fail('invalid number (leading zero)');
    let j = this.i;
    while (j < b.length && b[j]! >= 0x30 && b[j]! <= 0x39) j++;
    const nc = b[j];
    if (nc === 0x2e || nc === 0x65 || nc === 0x45) {
      this.number();
      this.i = start;
      this.fail('expected an unsigned integer, found a float');
    }
    if (j - this.i > 20) this.fail('integer does not fit u64');
    const v = BigInt(decoder.decode(b.subarray(this.i, j)));
    if (v > U64_MAX) this.fail('integer does not fit u64');
    this.i = j;
    return v;
  }

  private literal(word: string): boolean {
    for (let k = 0; k < word.length; k++) if (this.b[this.i + k] !== word.charCodeAt(k)) return false;
    this.i += word.length;
    return true;
  }

  /** a JSON number (syntax only) */
  private number(): void {
    const b = this.b;
    if (b[this.i] === 0x2d) this.i++;
    const d = (x: number | undefined): boolean => x !== undefined && x >= 0x30 && x <= 0x39;
    if (b[this.i] === 0x30) this.i++;
    else if (d(b[this.i])) while (d(b[this.i])) this.i++;
    else this.fail('invalid number');
    if (b[this.i] === 0x2e) {
      this.i++;
      if (!d(b[this.i])) this.fail('invalid number');
      while (d(b[this.i])) this.i++;
    }
    if (b[this.i] === 0x65 || b[this.i] === 0x45) {
      this.i++;
      if (b[this.i] === 0x2b || b[this.i] === 0x2d) this.i++;
      if (!d(b[this.i])) this.fail('invalid number');
      while (d(b[this.i])) this.i++;
    }
  }

  /** skips any JSON value; iterative depth counting keeps the stack flat */
  private skipValue(depth: number): void {
    const stack: number[] = []; // closing bytes
    for (;;) {
      this.ws();
      const c = this.b[this.i];
      if (c === 0x7b || c === 0x5b) {
        if (depth + stack.length + 1 > MAX_DEPTH) this.fail('recursion limit exceeded');
        this.i++;
        const close = c === 0x7b ? 0x7d : 0x5d;
        this.ws();
        if (this.b[this.i] === close) {
          this.i++;
        } else {
          stack.push(close);
          if (close === 0x7d) {
            this.ws();
            this.string();
            this.expect(0x3a);
          }
          continue;
        }
      } else if (c === 0x22) this.string();
      else if (c === 0x74) { if (!this.literal('true')) this.fail('invalid literal'); }
      else if (c === 0x66) { if (!this.literal('false')) this.fail('invalid literal'); }
      else if (c === 0x6e) { if (!this.literal('null')) this.fail('invalid literal'); }
      else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) this.number();
      else this.fail('expected a value');
      // after a complete value: close containers or continue with the next element
      for (;;) {
        const close = stack[stack.length - 1];
        if (close === undefined) return;
        this.ws();
        const n = this.b[this.i++];
        if (n === close) {
          stack.pop();
          continue;
        }
        if (n === 0x2c) {
          if (close === 0x7d) {
            this.ws();
            this.string();
            this.expect(0x3a);
          }
          break;
        }
        this.i--;
        this.fail(close === 0x7d ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
  }

  /** a JSON string (the header is already known to be valid UTF-8) */
  private string(): string {
    const b = this.b;
    if (b[this.i] !== 0x22) this.fail('expected a string');
    this.i++;
    const start = this.i;
    let j = start;
    while (j < b.length) {
      const c = b[j]!;
      if (c === 0x22) {
        this.i = j + 1;
        return decoder.decode(b.subarray(start, j));
      }
      if (c === 0x5c) break;
      if (c < 0x20) {
        this.i = j;
        this.fail('control character in string');
      }
      j++;
    }
    // slow path: escapes
    let out = decoder.decode(b.subarray(start, j));
    this.i = j;
    let runStart = j;
    while (this.i < b.length) {
      const c = b[this.i]!;
      if (c === 0x22) {
        out += decoder.decode(b.subarray(runStart, this.i));
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += decoder.decode(b.subarray(runStart, this.i));
      const e = b[this.i + 1];
      this.i += 2;
      switch (e) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const u = this.hex4();
          if (u >= 0xdc00 && u <= 0xdfff) this.fail('lone trailing surrogate in hex escape');
          if (u >= 0xd800 && u <= 0xdbff) {
            if (b[this.i] !== 0x5c || b[this.i + 1] !== 0x75) this.fail('lone leading surrogate in hex escape');
            this.i += 2;
            const lo = this.hex4();
            if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone leading surrogate in hex escape');
            out += String.fromCharCode(u, lo);
          } else out += String.fromCharCode(u);
          break;
        }
        default:
          this.i -= 1;
          this.fail('invalid escape');
      }
      runStart = this.i;
    }
    this.fail('EOF while parsing a string');
  }

  private hex4(): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.b[this.i++];
      let h: number;
      if (c !== undefined && c >= 0x30 && c <= 0x39) h = c - 0x30;
      else if (c !== undefined && c >= 0x61 && c <= 0x66) h = c - 0x57;
      else if (c !== undefined && c >= 0x41 && c <= 0x46) h = c - 0x37;
      else {
        this.i--;
        this.fail('invalid \\u escape');
      }
      v = v * 16 + h;
    }
    return v;
  }
}

// ---------------------------------------------------------------------------

/**
 * `Metadata::validate`: contiguous offsets from 0, sizes matching shape ×
 * dtype, and (when known) covering the whole data buffer.
 */
function validate(tensors: RawTensor[], bufferLength: bigint | undefined): bigint[] {
  tensors.sort((a, b) => (a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0));
  const elements: bigint[] = [];
  let start = 0n;
  for (const t of tensors) {
    if (t.begin !== start || t.end < t.begin) {
      throw new Violation('InvalidOffset', `tensor ${JSON.stringify(t.name.slice(0, 200))} has data_offsets [${t.begin}, ${t.end}], expected to begin at ${start}`);
    }
    start = t.end;
    let n = 1n;
    for (const d of t.shape) {
      n *= d;
      if (n > U64_MAX) throw new Violation('ValidationOverflow', `shape of ${JSON.stringify(t.name.slice(0, 200))} overflows`);
    }
    const bits = BigInt(DTYPES[t.dtype]![0]);
    const nbits = n * bits;
    if (nbits > U64_MAX) throw new Violation('ValidationOverflow', `size of ${JSON.stringify(t.name.slice(0, 200))} overflows`);
    if (nbits % 8n !== 0n) throw new Violation('MisalignedSlice', `tensor ${JSON.stringify(t.name.slice(0, 200))} (${t.dtype}, ${n} elements) does not end on a byte boundary`);
    if (t.end - t.begin !== nbits / 8n) {
      throw new Violation('TensorInvalidInfo', `tensor ${JSON.stringify(t.name.slice(0, 200))} (${t.dtype}, shape [${t.shape.join(', ')}]) needs ${nbits / 8n} bytes, data_offsets give ${t.end - t.begin}`);
    }
    elements.push(n);
  }
  if (bufferLength !== undefined && start !== bufferLength) {
    throw new Violation('MetadataIncompleteBuffer', `tensors cover ${start} bytes of a ${bufferLength}-byte data buffer`);
  }
  return elements;
}

const hasExtension = (path: string): boolean => /\.safetensors$/i.test(path);

async function readRange(file: FileSource, offset: number, length: number): Promise<Uint8Array> {
  if (length <= READ_PIECE) return file.read(offset, length);
  const out = new Uint8Array(length);
  for (let at = 0; at < length; ) {
    const piece = await file.read(offset + at, Math.min(READ_PIECE, length - at));
    if (piece.byteLength === 0) break;
    out.set(piece, at);
    at += piece.byteLength;
  }
  return out;
}

/** `{` then (after whitespace) `"` or `}`, skipping leading whitespace */
function jsonObjectStart(b: Uint8Array): boolean {
  let i = 0;
  while (WS(b[i])) i++;
  if (b[i] !== 0x7b) return false;
  i++;
  while (WS(b[i])) i++;
  return b[i] === 0x22 || b[i] === 0x7d;
}

/** strong evidence without the extension: a JSON object mentioning safetensors' own keys early */
function looksLikeHeader(prefix: Uint8Array): boolean {
  if (!jsonObjectStart(prefix)) return false;
  const s = Buffer.from(prefix.buffer, prefix.byteOffset, prefix.byteLength).toString('latin1');
  return s.includes('"data_offsets"') || s.includes('"__metadata__"') || s.includes('"dtype"');
}

/**
 * Reads and validates the header. Returns undefined when the file is not
 * recognisably safetensors and `force` is false; throws Violation otherwise.
 */
async function parseFile(file: FileSource, force: boolean): Promise<Parsed | undefined> {
  const claimedByName = force || hasExtension(file.path);
  const size = file.size;
  if (size < 8) {
    if (claimedByName) throw new Violation('HeaderTooSmall', `file is ${size} bytes`);
    return undefined;
  }
  const head = await file.read(0, Math.min(size, 8 + 4096));
  if (head.byteLength < 8) throw new Violation('HeaderTooSmall', `could read only ${head.byteLength} bytes`);
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  const prefix = head.subarray(8);
  let claimed = claimedByName || looksLikeHeader(prefix);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    if (claimed) throw new Violation('HeaderTooLarge', `header length ${n} > ${MAX_HEADER_SIZE}`);
    return undefined;
  }
  const headerSize = Number(n);
  if (8 + headerSize > size) {
    if (claimed) throw new Violation('InvalidHeaderLength', `header length ${headerSize} but the file has only ${size - 8} bytes after the length field`);
    return undefined;
  }
  // Without the extension, demand at least a JSON object start before reading further.
  if (!claimed && !jsonObjectStart(prefix.subarray(0, headerSize))) return undefined;
  const header = headerSize <= prefix.byteLength ? prefix.subarray(0, headerSize) : await readRange(file, 8, headerSize);
  if (header.byteLength !== headerSize) throw new Violation('InvalidHeaderLength', `could read only ${header.byteLength} of ${headerSize} header bytes`);
  if (!isUtf8(header)) {
    if (claimed) throw new Violation('InvalidHeader', 'header is not valid UTF-8');
    return undefined;
  }
  let parsed: { metadata: Map<string, string> | undefined; tensors: RawTensor[] };
  try {
    parsed = new HeaderParser(header).parse();
  } catch (e) {
    if (!claimed && e instanceof Violation) return undefined;
    throw e;
  }
  // A well-formed header with tensor entries (or metadata) is safetensors even without the extension.
  if (!claimed && parsed.tensors.length === 0 && parsed.metadata === undefined) return undefined;
  claimed = true;
  const elements = validate(parsed.tensors, BigInt(size - 8 - headerSize));
  return { headerSize, metadata: parsed.metadata, tensors: parsed.tensors, elements };
}

const dimOut = (d: bigint): number | string => (d <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(d) : d.toString());
const cut = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max)}…` : s);

function describe(p: Parsed): FileFormat {
  const dtypes: Record<string, number> = {};
  let total = 0n;
  p.tensors.forEach((t, i) => {
    const e = p.elements[i]!;
    total += e;
    const name = DTYPES[t.dtype]![1];
    dtypes[name] = (dtypes[name] ?? 0) + Number(e);
  });
  const order = p.tensors.map((_, i) => i).sort((a, b) => {
    const ea = p.elements[a]!;
    const eb = p.elements[b]!;
    return ea > eb ? -1 : ea < eb ? 1 : a - b;
  });
  const largest = order.slice(0, LARGEST).map((i) => {
    const t = p.tensors[i]!;
    return { name: cut(t.name, 256), dtype: DTYPES[t.dtype]![1], shape: t.shape.map(dimOut), elements: Number(p.elements[i]!) };
  });
  const details: Record<string, unknown> = {
    tensors: p.tensors.length,
    header_size: p.headerSize,
    data_size: p.tensors.length ? Number(p.tensors[p.tensors.length - 1]!.end) : 0,
    largest_tensors: largest,
  };
  if (p.metadata) {
    const meta: Record<string, string> = {};
    let k = 0;
    let truncated = false;
    for (const [key, value] of p.metadata) {
      if (k++ >= META_MAX_KEYS) {
        truncated = true;
        break;
      }
      if (key.length > META_MAX_KEY_CHARS || value.length > META_MAX_VALUE_CHARS) truncated = true;
      meta[cut(key, META_MAX_KEY_CHARS)] = cut(value, META_MAX_VALUE_CHARS);
    }
    details.metadata = meta;
    if (truncated) {
      details.metadata_truncated = true;
      details.metadata_keys = p.metadata.size;
    }
  }
  return {
    format: FORMAT,
    framework: 'safetensors',
    parameters: Number(total),
    dtypes,
    safety: { ...SAFE, findings: [] },
    details,
  };
}

/**
 * Detects safetensors by content: the `.safetensors` extension claims the
 * format; without it, a header that starts as a JSON object and parses into
 * tensor entries (or `__metadata__`) does.
 */
export async function detectSafetensors(file: FileSource): Promise<FileFormat | undefined> {
  let parsed: Parsed | undefined;
  try {
    parsed = await parseFile(file, false);
  } catch (e) {
    if (e instanceof Violation) throw invalid(e);
    throw e;
  }
  return parsed && describe(parsed);
}

/**
 * Every tensor's absolute byte range [begin, end), in file order (for cutting
 * storage chunks at tensor boundaries). Throws InvalidModelFileError when the
 * file is not valid safetensors, whatever its name.
 */
export async function safetensorsTensorRanges(file: FileSource): Promise<SafetensorsTensorRange[]> {
  let parsed: Parsed | undefined;
  try {
    parsed = await parseFile(file, true);
  } catch (e) {
    if (e instanceof Violation) throw invalid(e);
    throw e;
  }
  if (!parsed) throw new InvalidModelFileError(FORMAT, 'invalid safetensors file'); // unreachable with force
  return tensorRanges(parsed.tensors, 8 + parsed.headerSize);
}

/**
 * The tensors a header declares (`header`: the JSON after the 8-byte
 * length), validated as the reference does except against the file's size,
 * which a file still streaming in does not have yet: byte ranges from the
 * start of the file (`dataStart`: where the data buffer begins, 8 + the
 * header's length), in file order. Throws InvalidModelFileError.
 */
export function safetensorsHeaderTensors(header: Uint8Array, dataStart: number): SafetensorsTensorRange[] {
  try {
    if (!isUtf8(header)) throw new Violation('InvalidHeader', 'header is not valid UTF-8');
    const { tensors } = new HeaderParser(header).parse();
    validate(tensors, undefined);
    return tensorRanges(tensors, dataStart);
  } catch (e) {
    if (e instanceof Violation) throw invalid(e);
    throw e;
  }
}

function tensorRanges(tensors: RawTensor[], base: number): SafetensorsTensorRange[] {
  return tensors.map((t) => {
    const [bits, dtype] = DTYPES[t.dtype]!;
    return { name: t.name, dtype, bits, begin: base + Number(t.begin), end: base + Number(t.end) };
  });
}
