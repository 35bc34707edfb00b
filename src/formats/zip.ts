// A bounded ZIP reader for format detection: the End Of Central Directory
// (and its ZIP64 variants), the central directory entries, and small members
// (stored or deflated, capped). Every offset and size read from the file is
// checked against the file's size before it is used; entry counts and the
// bytes read are capped, so no input makes it allocate unboundedly. Broken
// archives throw InvalidModelFileError(format) — the caller decides whether
// the file claimed to be its format.
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { InvalidModelFileError, type FileSource } from './types.ts';

/** Largest member read whole into memory (compressed and uncompressed). */
export const ZIP_MEMBER_CAP = 16 * 1024 * 1024;
/** Central directory entries read at most; the rest are counted, not listed. */
export const MAX_ZIP_ENTRIES = 100_000;

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;
const EOCD_SIZE = 22;
const CDH_SIZE = 46;
const LFH_SIZE = 30;
const WINDOW = 1 << 20;

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate, others unsupported here */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  isDirectory: boolean;
  encrypted: boolean;
}

export interface ZipDirectory {
  entries: ZipEntry[];
  /** entries in the directory: what the end record announces, or (a lower bound of) more when it understates them */
  totalEntries: number;
  /** true when the directory holds more than MAX_ZIP_ENTRIES entries (only the first ones are listed) */
  truncated: boolean;
  zip64: boolean;
  cdOffset: number;
  cdSize: number;
}

const u16 = (b: Uint8Array, o: number): number => (b[o] ?? 0) | ((b[o + 1] ?? 0) << 8);
const u32 = (b: Uint8Array, o: number): number => (u16(b, o) + u16(b, o + 2) * 0x10000);
/** A little-endian u64 as a number, or -1 when above 2^53. */
function u64(b: Uint8Array, o: number): number {
  const lo = u32(b, o);
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return -1;
  return hi * 0x100000000 + lo;
}

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

function bad(format: string, message: string): InvalidModelFileError {
  return new InvalidModelFileError(format, message);
}

/** True when the file starts like a zip archive (local header, or the EOCD of an empty archive). */
export async function hasZipMagic(file: FileSource): Promise<boolean> {
  const b = await file.read(0, 4);
  if (b.length < 4) return false;
  const sig = u32(b, 0);
  return sig === LFH_SIG || (sig === EOCD_SIG && file.size >= EOCD_SIZE);
}

/** The name in the first local file header, if the file starts with one (works on truncated archives). */
export async function firstLocalName(file: FileSource): Promise<string | undefined> {
  const h = await file.read(0, LFH_SIZE);
  if (h.length < LFH_SIZE || u32(h, 0) !== LFH_SIG) return undefined;
  const n = u16(h, 26);
  const nb = await file.read(LFH_SIZE, n);
  if (nb.length < n) return undefined;
  return decodeName(nb, u16(h, 6));
}

function decodeName(bytes: Uint8Array, flags: number): string {
  return (flags & 0x800) !== 0 ? utf8.decode(bytes) : isAscii(bytes) ? latin1.decode(bytes) : utf8.decode(bytes);
}

function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if ((b[i] ?? 0) > 0x7f) return false;
  return true;
}

/** Reads and validates the whole central directory (up to MAX_ZIP_ENTRIES entries). */
export async function readZipDirectory(file: FileSource, format = 'zip'): Promise<ZipDirectory> {
  const size = file.size;
  if (size < EOCD_SIZE) throw bad(format, `not a valid zip archive: ${size} bytes is too short for an end of central directory`);
  const tailLen = Math.min(size, 0xffff + EOCD_SIZE);
  const tailStart = size - tailLen;
  const tail = await file.read(tailStart, tailLen);
  let at = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 0x05 && tail[i + 3] === 0x06) {
      if (i + EOCD_SIZE + u16(tail, i + 20) <= tail.length) { at = i; break; }
    }
  }
  if (at < 0) throw bad(format, 'truncated or broken zip archive: no end of central directory record (is the upload complete?)');
  const eocdOffset = tailStart + at;
  const disk = u16(tail, at + 4);
  const cdDisk = u16(tail, at + 6);
  let totalEntries = u16(tail, at + 10);
  let cdSize = u32(tail, at + 12);
  let cdOffset = u32(tail, at + 16);
  let zip64 = false;

  // ZIP64: a locator sits just before the EOCD.
  if (eocdOffset >= 20) {
    const loc = await file.read(eocdOffset - 20, 20);
    if (loc.length === 20 && u32(loc, 0) === ZIP64_LOCATOR_SIG) {
      const recOffset = u64(loc, 8);
      if (recOffset < 0 || recOffset + 56 > eocdOffset - 20) throw bad(format, 'broken zip archive: ZIP64 locator points outside the file');
      const rec = await file.read(recOffset, 56);
      if (rec.length < 56 || u32(rec, 0) !== ZIP64_EOCD_SIG) throw bad(format, 'broken zip archive: no ZIP64 end of central directory record where the locator points');
      if (u32(rec, 16) !== 0 || u32(rec, 20) !== 0) throw bad(format, 'split (multi-disk) zip archives are not supported');
      const n = u64(rec, 32);
      const s = u64(rec, 40);
      const o = u64(rec, 48);
      if (n < 0 || s < 0 || o < 0) throw bad(format, 'broken zip archive: ZIP64 sizes out of range');
      totalEntries = n;
      cdSize = s;
      cdOffset = o;
      zip64 = true;
    }
  }
  if (!zip64 && (disk !== 0 || cdDisk !== 0)) throw bad(format, 'split (multi-disk) zip archives are not supported');
  const cdLimit = zip64 ? size : eocdOffset;
  if (cdOffset > cdLimit || cdSize > cdLimit - cdOffset) {
    throw bad(format, `truncated or broken zip archive: central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the file`);
  }
  if (totalEntries * CDH_SIZE > cdSize) throw bad(format, `broken zip archive: ${totalEntries} entries cannot fit in a ${cdSize}-byte central directory`);

  const entries: ZipEntry[] = [];
  const cdEnd = cdOffset + cdSize;
  let pos = cdOffset;
  let win: Uint8Array = new Uint8Array(0);
  let winStart = cdOffset;
  // Python's zipfile (numpy, Keras, TorchServe) reads entries until the directory's SIZE is used up,
  // whatever the count says: an understated count must not hide the entries after it
  while (entries.length < MAX_ZIP_ENTRIES && (entries.length < totalEntries || pos < cdEnd)) {
    // make sure the fixed header is in the window, then the variable part
    for (let need = CDH_SIZE, pass = 0; pass < 2; pass++) {
      if (pos + need > cdEnd) throw bad(format, `broken zip archive: central directory entry ${entries.length} runs past the directory`);
      if (pos < winStart || pos + need > winStart + win.length) {
        win = await file.read(pos, Math.min(Math.max(WINDOW, need), cdEnd - pos));
        winStart = pos;
        if (win.length < need) throw bad(format, 'truncated zip archive: central directory cut short');
      }
      const o = pos - winStart;
      if (pass === 0) {
        if (u32(win, o) !== CDH_SIG) throw bad(format, `broken zip archive: bad central directory entry signature at offset ${pos}`);
        need = CDH_SIZE + u16(win, o + 28) + u16(win, o + 30) + u16(win, o + 32);
      }
    }
    const o = pos - winStart;
    const flags = u16(win, o + 8);
    const method = u16(win, o + 10);
    const crc = u32(win, o + 16);
    let csize = u32(win, o + 20);
    let usize = u32(win, o + 24);
    const nameLen = u16(win, o + 28);
    const extraLen = u16(win, o + 30);
    const commentLen = u16(win, o + 32);
    const diskStart = u16(win, o + 34);
    let lho = u32(win, o + 42);
    const name = decodeName(win.subarray(o + CDH_SIZE, o + CDH_SIZE + nameLen), flags);
    if (usize === 0xffffffff || csize === 0xffffffff || lho === 0xffffffff || diskStart === 0xffff) {
      // ZIP64 extended information extra field (id 0x0001): only the fields that overflowed, in order
      let e = o + CDH_SIZE + nameLen;
      const eEnd = e + extraLen;
      let found = false;
      while (e + 4 <= eEnd) {
        const id = u16(win, e);
        const len = u16(win, e + 2);
        if (e + 4 + len > eEnd) break;
        if (id === 0x0001) {
          let f = e + 4;
          const take = (): number => {
            if (f + 8 > e + 4 + len) throw bad(format, `broken zip archive: short ZIP64 extra field for ${JSON.stringify(name)}`);
            const v = u64(win, f);
            f += 8;
            if (v < 0) throw bad(format, `broken zip archive: ZIP64 size out of range for ${JSON.stringify(name)}`);
            return v;
          };
          if (usize === 0xffffffff) usize = take();
          if (csize === 0xffffffff) csize = take();
          if (lho === 0xffffffff) lho = take();
          found = true;
          break;
        }
        e += 4 + len;
      }
      if (!found && (usize === 0xffffffff || csize === 0xffffffff || lho === 0xffffffff)) {
        throw bad(format, `broken zip archive: entry ${JSON.stringify(name)} needs a ZIP64 extra field and has none`);
      }
    }
    // every member's local header and data lie before the central directory
    if (lho + LFH_SIZE > cdOffset || csize > cdOffset - lho - LFH_SIZE) {
      throw bad(format, `truncated or broken zip archive: member ${JSON.stringify(name)} (offset ${lho}, ${csize} bytes) lies outside the archive data`);
    }
    if (method === 0 && csize !== usize && (flags & 1) === 0) {
      throw bad(format, `broken zip archive: stored member ${JSON.stringify(name)} has different compressed and uncompressed sizes`);
    }
    entries.push({
      name,
      method,
      flags,
      crc32: crc,
      compressedSize: csize,
      uncompressedSize: usize,
      localHeaderOffset: lho,
      isDirectory: name.endsWith('/'),
      encrypted: (flags & 1) !== 0,
    });
    pos += CDH_SIZE + nameLen + extraLen + commentLen;
  }
  const unread = pos < cdEnd; // stopped at MAX_ZIP_ENTRIES
  totalEntries = Math.max(totalEntries, entries.length + (unread ? 1 : 0));
  return { entries, totalEntries, truncated: entries.length < totalEntries, zip64, cdOffset, cdSize };
}

/** What a detector did not check because the directory was cut at MAX_ZIP_ENTRIES (none when it was not). */
export function unreadEntries(dir: ZipDirectory): string[] {
  return dir.truncated ? [`only the first ${dir.entries.length} of ${dir.totalEntries} zip entries were checked`] : [];
}

/** Offset of a member's data, from its local header (validated against the directory). */
export async function zipMemberDataOffset(file: FileSource, dir: ZipDirectory, entry: ZipEntry, format = 'zip'): Promise<number> {
  const h = await file.read(entry.localHeaderOffset, LFH_SIZE);
  if (h.length < LFH_SIZE || u32(h, 0) !== LFH_SIG) {
    throw bad(format, `broken zip archive: no local header for ${JSON.stringify(entry.name)} at offset ${entry.localHeaderOffset}`);
  }
  const dataOffset = entry.localHeaderOffset + LFH_SIZE + u16(h, 26) + u16(h, 28);
  if (dataOffset > dir.cdOffset || entry.compressedSize > dir.cdOffset - dataOffset) {
    throw bad(format, `truncated or broken zip archive: data of ${JSON.stringify(entry.name)} runs past the archive data`);
  }
  return dataOffset;
}

/** A view of part of a file as its own FileSource. */
export function subSource(file: FileSource, offset: number, length: number, path: string): FileSource {
  const size = Math.max(0, Math.min(length, file.size - offset));
  return {
    path,
    size,
    async read(o, n) {
      if (o < 0 || n < 0) throw new RangeError('negative read');
      const start = Math.min(o, size);
      const end = Math.min(o + n, size);
      if (end <= start) return new Uint8Array(0);
      return file.read(offset + start, end - start);
    },
  };
}

/** True when the member can be read here (not encrypted, stored or deflated). */
export function zipMemberReadable(entry: ZipEntry): boolean {
  return !entry.encrypted && (entry.method === 0 || entry.method === 8);
}

/**
 * A member's whole content, checked (sizes and CRC-32), or undefined when it
 * cannot be read here: encrypted, another compression method, or larger than
 * `cap`. Broken data (bad deflate stream, wrong size or CRC) throws.
 */
export async function readZipMember(file: FileSource, dir: ZipDirectory, entry: ZipEntry, format = 'zip', cap = ZIP_MEMBER_CAP): Promise<Uint8Array | undefined> {
  if (!zipMemberReadable(entry)) return undefined;
  cap = Math.min(cap, ZIP_MEMBER_CAP);
  if (entry.uncompressedSize > cap || entry.compressedSize > cap) return undefined;
  const dataOffset = await zipMemberDataOffset(file, dir, entry, format);
  const raw = await file.read(dataOffset, entry.compressedSize);
  if (raw.length < entry.compressedSize) throw bad(format, `truncated zip archive: member ${JSON.stringify(entry.name)} cut short`);
  let out: Uint8Array;
  if (entry.method === 0) {
    out = raw;
  } else {
    try {
      const b = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      out = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (err) {
      const tooLarge = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      throw bad(format, tooLarge
        ? `broken zip archive: member ${JSON.stringify(entry.name)} inflates past its declared ${entry.uncompressedSize} bytes`
        : `broken zip archive: member ${JSON.stringify(entry.name)} has a corrupt deflate stream`);
    }
  }
  if (out.length !== entry.uncompressedSize) {
    throw bad(format, `broken zip archive: member ${JSON.stringify(entry.name)} is ${out.length} bytes, the directory says ${entry.uncompressedSize}`);
  }
  if (crc32(out) !== entry.crc32) throw bad(format, `broken zip archive: CRC-32 mismatch in member ${JSON.stringify(entry.name)}`);
  return out;
}

/**
 * Up to the first `want` bytes of a member (want ≤ 1 MiB), without reading the
 * whole member: stored members are read directly; deflated ones are inflated
 * from a bounded prefix of their compressed data. Undefined when unreadable.
 */
export async function readZipMemberPrefix(file: FileSource, dir: ZipDirectory, entry: ZipEntry, want: number, format = 'zip'): Promise<Uint8Array | undefined> {
  if (!zipMemberReadable(entry)) return undefined;
  want = Math.min(want, 1 << 20, entry.uncompressedSize);
  const dataOffset = await zipMemberDataOffset(file, dir, entry, format);
  if (entry.method === 0) return file.read(dataOffset, want);
  let best: Uint8Array = new Uint8Array(0);
  for (const inLen of [4096, 65536, 1 << 20]) {
    const n = Math.min(inLen, entry.compressedSize);
    const raw = await file.read(dataOffset, n);
    try {
      // deflate expands at most ~1032:1, so the output of n input bytes stays below 1100 n
      const b = inflateRawSync(raw, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: Math.max(64, Math.min(n * 1100, ZIP_MEMBER_CAP)) });
      best = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') break;
      throw bad(format, `broken zip archive: member ${JSON.stringify(entry.name)} has a corrupt deflate stream`);
    }
    if (best.length >= want || n >= entry.compressedSize) break;
  }
  return best.subarray(0, want);
}

/**
 * A FileSource over a member's uncompressed content: a view of the archive for
 * stored members (any size, read lazily), or the inflated bytes of deflated
 * members up to `cap`. Undefined when the member cannot be read here.
 */
export async function zipMemberSource(file: FileSource, dir: ZipDirectory, entry: ZipEntry, format = 'zip', cap = ZIP_MEMBER_CAP): Promise<FileSource | undefined> {
  if (!zipMemberReadable(entry)) return undefined;
  if (entry.method === 0) {
    const dataOffset = await zipMemberDataOffset(file, dir, entry, format);
    return subSource(file, dataOffset, entry.compressedSize, entry.name);
  }
  const bytes = await readZipMember(file, dir, entry, format, cap);
  if (!bytes) return undefined;
  return {
    path: entry.name,
    size: bytes.length,
    async read(o, n) {
      if (o < 0 || n < 0) throw new RangeError('negative read');
      return bytes.subarray(Math.min(o, bytes.length), Math.min(o + n, bytes.length));
    },
  };
}

let CRC_TABLE: Uint32Array | undefined;
export function crc32(data: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Opens a zip for a detector: undefined when it is not a zip (or broken and not claimed); throws when claimed and broken. */
export async function openZipFor(file: FileSource, format: string, claimed: boolean): Promise<ZipDirectory | undefined> {
  if (!(await hasZipMagic(file))) {
    if (claimed) throw bad(format, `not a valid ${format} file: it is not a zip archive`);
    return undefined;
  }
  try {
    return await readZipDirectory(file, format);
  } catch (err) {
    if (claimed && err instanceof InvalidModelFileError) throw err;
    if (err instanceof InvalidModelFileError) return undefined;
    throw err;
  }
}

/** The file's extension, lower-case, with the dot ('' when none). */
export function extOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot).toLowerCase() : '';
}
