// The layer of a version's OCI image form: an uncompressed tar of its files
// under models/, laid out from the file list alone (paths and sizes) and one
// fixed modification time. Nothing of it is stored: headers and padding are
// made here, file bytes come from the chunk store, so the layer costs no
// second copy and any byte range is found by offset arithmetic.
//
// The bytes must be the same every time they are made — the layer's digest is
// computed once (by a job) and then promised to every client — so the header
// encoding is written out here, pinned, rather than taken from a tar library
// whose output may change between its versions: USTAR headers, uid/gid 0,
// no user or group names, mode 0644 for files and 0755 for directories, each
// directory before its contents, files in byte order of their paths, a PAX
// record only for what USTAR cannot hold (a name over 100 bytes, a size of
// 8 GiB or more), two zero blocks at the end.

import { createHash } from 'node:crypto';

const BLOCK = 512;
const ROOT = 'models';
/** USTAR's size field: 11 octal digits. */
const MAX_USTAR_SIZE = 8 ** 11 - 1;

export interface LayerFile {
  path: string;
  size: number;
  digest: string;
}

/** A run of the layer: bytes made here, or (part of) a file's bytes. */
export type Segment = { offset: number; length: number; bytes: Buffer } | { offset: number; length: number; file: LayerFile };

export interface LayerLayout {
  size: number;
  segments: Segment[];
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, type: '0' | '5' | 'x', size: number, mode: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const nameBytes = Buffer.from(name, 'utf8');
  nameBytes.copy(h, 0, 0, Math.min(nameBytes.length, 100));
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size > MAX_USTAR_SIZE ? 0 : size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum counts as spaces
  h.write(type, 156, 'ascii');
  h.write('ustar\u000000', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** One PAX record: `<length> <key>=<value>\n`, the length counting its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let length = bodyBytes + 1;
  while (String(length).length + bodyBytes !== length) length = String(length).length + bodyBytes;
  return `${length}${body}`;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The headers of one entry: a PAX header first when USTAR cannot hold its name or size. */
function entryHeaders(name: string, type: '0' | '5', size: number, mode: number, mtime: number): Buffer[] {
  let records = '';
  if (Buffer.byteLength(name) > 100) records += paxRecord('path', name);
  if (size > MAX_USTAR_SIZE) records += paxRecord('size', String(size));
  const main = header(name, type, size, mode, mtime);
  if (!records) return [main];
  const pax = Buffer.from(records, 'utf8');
  return [header('PaxHeader', 'x', pax.length, 0o644, mtime), pax, Buffer.alloc(padding(pax.length)), main];
}

/** The layout of the tar of `files` (any order: sorted here) under models/, every entry with modification time `mtime` (seconds). */
export function layerLayout(files: readonly LayerFile[], mtime: number): LayerLayout {
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const segments: Segment[] = [];
  let offset = 0;
  let pending: Buffer[] = [];
  const flushBytes = () => {
    if (pending.length === 0) return;
    const bytes = Buffer.concat(pending);
    segments.push({ offset, length: bytes.length, bytes });
    offset += bytes.length;
    pending = [];
  };
  const dirs = new Set<string>();
  const directory = (dir: string) => {
    if (dirs.has(dir)) return;
    dirs.add(dir);
    pending.push(...entryHeaders(`${dir}/`, '5', 0, 0o755, mtime));
  };
  directory(ROOT);
  for (const file of sorted) {
    const parts = file.path.split('/');
    for (let i = 1; i < parts.length; i++) directory(`${ROOT}/${parts.slice(0, i).join('/')}`);
    pending.push(...entryHeaders(`${ROOT}/${file.path}`, '0', file.size, 0o644, mtime));
    if (file.size > 0) {
      flushBytes();
      segments.push({ offset, length: file.size, file });
      offset += file.size;
      pending.push(Buffer.alloc(padding(file.size)));
    }
  }
  pending.push(Buffer.alloc(2 * BLOCK));
  flushBytes();
  return { size: offset, segments };
}

/** The parts of the layout that overlap the inclusive byte range [start, end], each cut to it: `from` is the offset inside the segment. */
export function segmentsInRange(layout: LayerLayout, start: number, end: number): Array<{ segment: Segment; from: number; to: number }> {
  const out: Array<{ segment: Segment; from: number; to: number }> = [];
  // binary search for the first segment that ends after `start`
  let lo = 0;
  let hi = layout.segments.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const s = layout.segments[mid]!;
    if (s.offset + s.length <= start) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < layout.segments.length; i++) {
    const segment = layout.segments[i]!;
    if (segment.offset > end) break;
    const from = Math.max(start - segment.offset, 0);
    const to = Math.min(end - segment.offset + 1, segment.length);
    if (to > from) out.push({ segment, from, to });
  }
  return out;
}

/**
 * What the layer's bytes are made of, hashed: every header and padding byte,
 * and each file's digest and size in its place. Equal fingerprints mean
 * equal layers (file bytes are verified against their digests as they are
 * read), so a layer is served only while its layout is still the one its
 * digest was computed over.
 */
export function layoutFingerprint(layout: LayerLayout): string {
  const hash = createHash('sha256');
  for (const s of layout.segments) {
    if ('bytes' in s) hash.update(s.bytes);
    else hash.update(`\0${s.file.digest}:${s.file.size}\0`);
  }
  return `sha256:${hash.digest('hex')}`;
}
