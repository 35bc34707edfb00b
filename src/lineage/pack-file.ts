// A git pack (version 2) and its index, built in memory from a batch of
// objects and written into objects/pack/ in one go: one file pair per batch
// of events instead of one file per object. Objects are deflated with
// node:zlib (level 1: the periodic `git repack` compresses them properly);
// a directory's next version is stored as a delta against its previous one
// in the pack, so a big directory is not deflated whole for every event.
// Git reads a pack once its .idx exists, so the .pack is renamed into place
// first and the .idx last; both are synced before they are renamed.
import { createHash, randomBytes } from 'node:crypto';
import type nodeFs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { GitObject, ObjectType } from './git-objects.ts';

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };
/** an entry stored as a delta against an earlier entry of the same pack, named by its distance back */
const OFS_DELTA = 6;
/** deltas on deltas at most this deep; then a whole object again (git's own default) */
const MAX_DELTA_DEPTH = 50;
/** runs compared natively at a time when looking for what two versions share */
const COMPARE_RUN = 4096;
/** a copy instruction's size field has 3 bytes */
const MAX_COPY = 0xffffff;

/** The type code and `size` as a pack entry's header: 3 type bits, then the size 4 + 7·n bits at a time. */
function entryHeader(typeCode: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (typeCode << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

/** OFS_DELTA's distance to the base: 7 bits a byte, most significant first, each continuation adding one (git's encoding). */
function baseDistance(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let rest = Math.floor(distance / 128);
  while (rest > 0) {
    rest -= 1;
    bytes.unshift(0x80 | (rest & 0x7f));
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
}

/** A delta's size fields: 7 bits a byte, least significant first. */
function varint(n: number, out: number[]): void {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

/** How many bytes `a` and `b` share from the start (from the end, with `fromEnd`), up to `limit`. */
function shared(a: Buffer, b: Buffer, limit: number, fromEnd: boolean): number {
  const at = (buf: Buffer, i: number, n: number) => (fromEnd ? buf.subarray(buf.length - i - n, buf.length - i) : buf.subarray(i, i + n));
  let i = 0;
  while (i + COMPARE_RUN <= limit && at(a, i, COMPARE_RUN).equals(at(b, i, COMPARE_RUN))) i += COMPARE_RUN;
  while (i < limit && (fromEnd ? a[a.length - 1 - i] === b[b.length - 1 - i] : a[i] === b[i])) i += 1;
  return i;
}

/**
 * A git delta turning `base` into `target`: copy what they share at the
 * start, insert what differs, copy what they share at the end. That is
 * exactly a tree's change (entries added, replaced or removed in one place).
 */
export function prefixSuffixDelta(base: Buffer, target: Buffer): Buffer {
  const head = shared(base, target, Math.min(base.length, target.length), false);
  const tail = shared(base, target, Math.min(base.length, target.length) - head, true);
  const out: number[] = [];
  varint(base.length, out);
  varint(target.length, out);
  const copy = (offset: number, size: number) => {
    for (let done = 0; done < size; done += MAX_COPY) {
      const o = offset + done;
      const n = Math.min(MAX_COPY, size - done);
      const args: number[] = [];
      let op = 0x80;
      for (let k = 0; k < 4; k++) {
        const byte = Math.floor(o / 2 ** (8 * k)) & 0xff;
        if (byte) {
          op |= 1 << k;
          args.push(byte);
        }
      }
      for (let k = 0; k < 3; k++) {
        const byte = (n >> (8 * k)) & 0xff;
        if (byte) {
          op |= 0x10 << k;
          args.push(byte);
        }
      }
      out.push(op, ...args);
    }
  };
  if (head > 0) copy(0, head);
  const middle = target.subarray(head, target.length - tail);
  const parts: Buffer[] = [];
  for (let i = 0; i < middle.length; i += 127) {
    const piece = middle.subarray(i, i + 127);
    out.push(piece.length);
    parts.push(Buffer.from(out.splice(0)), piece);
  }
  if (tail > 0) copy(base.length - tail, tail);
  parts.push(Buffer.from(out));
  return Buffer.concat(parts);
}

export class PackBuilder {
  private readonly entries: Array<{ oid: string; offset: number; crc: number }> = [];
  private readonly parts: Buffer[] = [];
  private readonly oids = new Set<string>();
  /** the last version of each directory (GitObject.deltaKey) in this pack: a delta's base */
  private readonly lastOf = new WeakMap<object, { offset: number; content: Buffer; depth: number }>();
  /** bytes so far, the 12-byte pack header included */
  bytes = 12;

  get count(): number {
    return this.entries.length;
  }

  /** Adds an object (once: a repeated id is skipped). */
  readonly add = (object: GitObject): void => {
    if (this.oids.has(object.oid)) return;
    this.oids.add(object.oid);
    const offset = this.bytes;
    const base = object.deltaKey ? this.lastOf.get(object.deltaKey) : undefined;
    const delta = base && base.depth < MAX_DELTA_DEPTH ? prefixSuffixDelta(base.content, object.content) : undefined;
    let header: Buffer;
    let data: Buffer;
    let depth = 0;
    if (base && delta && delta.length < object.content.length / 2) {
      // a directory's new version: its few changed bytes, not the whole tree deflated again
      header = Buffer.concat([entryHeader(OFS_DELTA, delta.length), baseDistance(offset - base.offset)]);
      data = zlib.deflateSync(delta, { level: 1 });
      depth = base.depth + 1;
    } else {
      header = entryHeader(TYPE_CODE[object.type], object.content.length);
      data = zlib.deflateSync(object.content, { level: 1 });
    }
    if (object.deltaKey) this.lastOf.set(object.deltaKey, { offset, content: object.content, depth });
    this.entries.push({ oid: object.oid, offset, crc: zlib.crc32(data, zlib.crc32(header)) });
    this.parts.push(header, data);
    this.bytes += header.length + data.length;
  };

  /** The pack and its index, `pack-<checksum>.{pack,idx}` under `<gitdir>/objects/pack`; returns the pack's checksum. */
  async write(fs: typeof nodeFs, gitdir: string): Promise<string> {
    if (this.entries.length === 0) throw new Error('an empty pack is never written');
    const head = Buffer.alloc(12);
    head.write('PACK', 0, 'latin1');
    head.writeUInt32BE(2, 4);
    head.writeUInt32BE(this.entries.length, 8);
    const hash = createHash('sha1').update(head);
    for (const part of this.parts) hash.update(part);
    const checksum = hash.digest();
    const name = checksum.toString('hex');
    const dir = path.join(gitdir, 'objects', 'pack');
    await fs.promises.mkdir(dir, { recursive: true });
    await writeSynced(fs, dir, `pack-${name}.pack`, [head, ...this.parts, checksum]);
    await writeSynced(fs, dir, `pack-${name}.idx`, [this.index(checksum)]);
    return name;
  }

  /** Index version 2: fan-out, sorted ids, CRC-32s, offsets, the pack's checksum, its own checksum. */
  private index(packChecksum: Buffer): Buffer {
    const sorted = [...this.entries].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
    const n = sorted.length;
    if (this.bytes >= 2 ** 31) throw new Error('a lineage pack batch over 2 GiB'); // the 4-byte offsets' limit; batches are far smaller
    const idx = Buffer.alloc(8 + 256 * 4 + n * (20 + 4 + 4) + 20 + 20);
    idx.writeUInt32BE(0xff744f63, 0);
    idx.writeUInt32BE(2, 4);
    const fanout = new Uint32Array(256);
    for (const e of sorted) fanout[Number.parseInt(e.oid.slice(0, 2), 16)]! += 1;
    let total = 0;
    for (let i = 0; i < 256; i++) {
      total += fanout[i]!;
      idx.writeUInt32BE(total, 8 + i * 4);
    }
    const ids = 8 + 256 * 4;
    const crcs = ids + n * 20;
    const offsets = crcs + n * 4;
    sorted.forEach((e, i) => {
      idx.write(e.oid, ids + i * 20, 'hex');
      idx.writeUInt32BE(e.crc, crcs + i * 4);
      idx.writeUInt32BE(e.offset, offsets + i * 4);
    });
    packChecksum.copy(idx, offsets + n * 4);
    const body = idx.subarray(0, idx.length - 20);
    createHash('sha1').update(body).digest().copy(idx, idx.length - 20);
    return idx;
  }
}

async function writeSynced(fs: typeof nodeFs, dir: string, name: string, parts: Buffer[]): Promise<void> {
  const temp = path.join(dir, `tmp_${randomBytes(6).toString('hex')}_${name}`);
  const file = await fs.promises.open(temp, 'w', 0o444);
  try {
    await file.writeFile(Buffer.concat(parts));
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.promises.rename(temp, path.join(dir, name));
}
