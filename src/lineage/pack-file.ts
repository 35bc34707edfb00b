// A git pack (version 2) and its index, built in memory from a batch of
// objects and written into objects/pack/ in one go: one file pair per batch
// of events instead of one file per object. Objects are deflated with
// node:zlib (level 1: the periodic `git repack` compresses them properly).
// Git reads a pack once its .idx exists, so the .pack is renamed into place
// first and the .idx last; both are synced before they are renamed.
import { createHash, randomBytes } from 'node:crypto';
import type nodeFs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { GitObject, ObjectType } from './git-objects.ts';

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };

/** `type` and `size` as a pack entry's header: 3 type bits, then the size 4 + 7·n bits at a time. */
function entryHeader(type: ObjectType, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (TYPE_CODE[type] << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

export class PackBuilder {
  private readonly entries: Array<{ oid: string; offset: number; crc: number }> = [];
  private readonly parts: Buffer[] = [];
  private readonly oids = new Set<string>();
  /** bytes so far, the 12-byte pack header included */
  bytes = 12;

  get count(): number {
    return this.entries.length;
  }

  /** Adds an object (once: a repeated id is skipped). */
  readonly add = (object: GitObject): void => {
    if (this.oids.has(object.oid)) return;
    this.oids.add(object.oid);
    const header = entryHeader(object.type, object.content.length);
    const data = zlib.deflateSync(object.content, { level: 1 });
    this.entries.push({ oid: object.oid, offset: this.bytes, crc: zlib.crc32(data, zlib.crc32(header)) });
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
