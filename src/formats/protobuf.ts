// A small streaming protobuf wire-format reader over a FileSource. It never
// reads a whole large message into memory: a reader covers a byte range of the
// file, fetches bounded windows as it goes, and hands length-delimited fields
// back as (offset, length) so the caller decides to descend (small messages
// are loaded in one read, large ones are iterated in place) or skip them.
// Every length is checked against the enclosing range before anything is
// read or allocated; any structural problem is a ProtobufError.
import type { FileSource } from './types.ts';

/** The bytes are not valid protobuf wire format (truncated, bad varint, length out of bounds, …). */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufError';
  }
}

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;
export type WireType = typeof WIRE_VARINT | typeof WIRE_I64 | typeof WIRE_LEN | typeof WIRE_I32;

export interface PbField {
  /** field number (≥ 1) */
  num: number;
  wire: WireType;
  /** absolute file offset of the payload (the value, or the first byte of a LEN field's bytes) */
  offset: number;
  /** LEN: payload length; I64: 8; I32: 4; VARINT: the encoded length */
  length: number;
  /** VARINT/I32/I64: the value as unsigned (exact up to 2^53); LEN: the length */
  value: number;
  /** VARINT/I64: the value read as a signed int64 (exact within ±2^53); I32: as int32 */
  signed: number;
}

/** Messages up to this size are loaded with one read when descended into. */
export const IN_MEMORY_LIMIT = 1 << 20;
const WINDOW = 64 * 1024;
const decoder = new TextDecoder('utf-8', { fatal: false });

export class PbReader {
  readonly file: FileSource;
  readonly start: number;
  readonly end: number;
  /** absolute offset of the next tag */
  pos: number;
  private buf: Uint8Array = new Uint8Array(0);
  private bufAt = 0;

  /** A reader over [start, end) of `file`; `preloaded` holds bytes starting at `start` (no reads then). */
  constructor(file: FileSource, start: number, end: number, preloaded?: Uint8Array) {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end)) || start < 0 || end < start || end > file.size) {
      throw new ProtobufError(`range [${start}, ${end}) outside the file (${file.size} bytes)`);
    }
    this.file = file;
    this.start = start;
    this.end = end;
    this.pos = start;
    if (preloaded) {
      this.buf = preloaded;
      this.bufAt = start;
    }
  }

  /** A reader over the whole file. */
  static of(file: FileSource): PbReader {
    return new PbReader(file, 0, file.size);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private has(pos: number, n: number): boolean {
    return pos >= this.bufAt && pos + n <= this.bufAt + this.buf.byteLength;
  }

  /** Loads a window holding [pos, pos + n) (n ≤ remaining bytes of the range). */
  private async fill(pos: number, n: number): Promise<void> {
    const len = Math.min(Math.max(n, WINDOW), this.end - pos);
    const bytes = await this.file.read(pos, len);
    if (bytes.byteLength < n) throw new ProtobufError(`truncated: wanted ${n} bytes at ${pos}, got ${bytes.byteLength}`);
    this.buf = bytes;
    this.bufAt = pos;
  }

  /** Loads the next varint's bytes (up to 10) unless they are buffered. */
  private async ensureVarint(): Promise<void> {
    const avail = Math.min(10, this.end - this.pos);
    if (avail <= 0) throw new ProtobufError(`truncated varint at ${this.pos}`);
    await this.fill(this.pos, avail);
  }

  /** Decodes the (buffered) varint at this.pos; returns [unsigned value, signed int64 value]. */
  private varint(): [number, number] {
    const avail = Math.min(10, this.end - this.pos);
    const base = this.pos - this.bufAt;
    let value = 0;
    let mul = 1;
    for (let i = 0; i < avail; i++) {
      const b = this.buf[base + i]!;
      if (i === 9 && b > 1) throw new ProtobufError(`varint longer than 64 bits at ${this.pos}`);
      value += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) {
        this.pos += i + 1;
        if (i < 7) return [value, value]; // < 2^49: exact and non-negative
        let big = 0n;
        for (let k = i; k >= 0; k--) big = (big << 7n) | BigInt(this.buf[base + k]! & 0x7f);
        return [Number(BigInt.asUintN(64, big)), Number(BigInt.asIntN(64, big))];
      }
    }
    throw new ProtobufError(avail < 10 ? `truncated varint at ${this.pos}` : `varint longer than 10 bytes at ${this.pos}`);
  }

  /** The next field, or undefined at the end of the range. LEN payloads are skipped over (see message/bytes). */
  async next(): Promise<PbField | undefined> {
    if (this.pos >= this.end) return undefined;
    const tagAt = this.pos;
    if (!this.has(this.pos, Math.min(20, this.end - this.pos))) await this.ensureVarint();
    const [tag] = this.varint();
    if (tag > 0xffffffff) throw new ProtobufError(`tag out of range at ${tagAt}`);
    const num = Math.floor(tag / 8);
    const wire = tag % 8;
    if (num < 1) throw new ProtobufError(`field number 0 at ${tagAt}`);
    switch (wire) {
      case WIRE_VARINT: {
        const at = this.pos;
        if (!this.has(at, Math.min(10, this.end - at))) await this.ensureVarint();
        const [value, signed] = this.varint();
        return { num, wire, offset: at, length: this.pos - at, value, signed };
      }
      case WIRE_LEN: {
        if (!this.has(this.pos, Math.min(10, this.end - this.pos))) await this.ensureVarint();
        const [len] = this.varint();
        const at = this.pos;
        if (len > this.end - at) throw new ProtobufError(`field ${num} at ${tagAt}: length ${len} beyond the end of its message (${this.end - at} bytes left)`);
        this.pos = at + len;
        return { num, wire, offset: at, length: len, value: len, signed: len };
      }
      case WIRE_I64: {
        const at = this.pos;
        if (this.end - at < 8) throw new ProtobufError(`truncated fixed64 at ${at}`);
        if (!this.has(at, 8)) await this.fill(at, 8);
        const dv = new DataView(this.buf.buffer, this.buf.byteOffset + (at - this.bufAt), 8);
        this.pos = at + 8;
        return { num, wire, offset: at, length: 8, value: Number(dv.getBigUint64(0, true)), signed: Number(dv.getBigInt64(0, true)) };
      }
      case WIRE_I32: {
        const at = this.pos;
        if (this.end - at < 4) throw new ProtobufError(`truncated fixed32 at ${at}`);
        if (!this.has(at, 4)) await this.fill(at, 4);
        const dv = new DataView(this.buf.buffer, this.buf.byteOffset + (at - this.bufAt), 4);
        this.pos = at + 4;
        return { num, wire, offset: at, length: 4, value: dv.getUint32(0, true), signed: dv.getInt32(0, true) };
      }
      default:
        throw new ProtobufError(`unsupported wire type ${wire} (field ${num}) at ${tagAt}`);
    }
  }

  /** The payload of a LEN field (at most `max` bytes of it; the field must lie in this reader's range). */
  async bytes(f: PbField, max = 16 << 20): Promise<Uint8Array> {
    if (f.wire !== WIRE_LEN) throw new ProtobufError(`field ${f.num}: expected a length-delimited field`);
    const n = Math.min(f.length, max);
    if (n === 0) return new Uint8Array(0);
    if (f.offset >= this.bufAt && f.offset + n <= this.bufAt + this.buf.byteLength) {
      return this.buf.subarray(f.offset - this.bufAt, f.offset - this.bufAt + n);
    }
    const b = await this.file.read(f.offset, n);
    if (b.byteLength < n) throw new ProtobufError(`truncated: field ${f.num} wants ${n} bytes at ${f.offset}`);
    return b;
  }

  /** A LEN field as a string (UTF-8, invalid sequences replaced), cut at `max` bytes. */
  async string(f: PbField, max = 4096): Promise<string> {
    return decoder.decode(await this.bytes(f, max));
  }

  /** A reader over a LEN field's payload: loaded in one read when ≤ `inMemoryLimit`, else iterated in place. */
  async message(f: PbField, inMemoryLimit = IN_MEMORY_LIMIT): Promise<PbReader> {
    if (f.wire !== WIRE_LEN) throw new ProtobufError(`field ${f.num}: expected a sub-message`);
    if (f.length <= inMemoryLimit) return new PbReader(this.file, f.offset, f.offset + f.length, await this.bytes(f));
    return new PbReader(this.file, f.offset, f.offset + f.length);
  }

  /**
   * The values of a repeated varint field occurrence: a packed LEN field gives
   * all of its values, an unpacked VARINT field its one value. At most
   * `maxCount` values (more is an error: the caller's sanity bound).
   */
  async varints(f: PbField, maxCount = 1 << 16, signed = true): Promise<number[]> {
    if (f.wire === WIRE_VARINT) return [signed ? f.signed : f.value];
    if (f.wire !== WIRE_LEN) throw new ProtobufError(`field ${f.num}: expected varints`);
    const out: number[] = [];
    const r = await this.message(f);
    while (r.pos < r.end) {
      if (out.length >= maxCount) throw new ProtobufError(`field ${f.num}: more than ${maxCount} packed values`);
      if (!r.has(r.pos, Math.min(10, r.end - r.pos))) await r.ensureVarint();
      const [u, s] = r.varint();
      out.push(signed ? s : u);
    }
    return out;
  }
}

/** Throws unless `f` has wire type `wire` (a known field with the wrong type means the bytes are not this message). */
export function expectWire(f: PbField, wire: WireType, what: string): void {
  if (f.wire !== wire) throw new ProtobufError(`${what} (field ${f.num}) has wire type ${f.wire}, expected ${wire}`);
}
