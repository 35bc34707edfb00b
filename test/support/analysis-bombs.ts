// Files that are small to upload (or cheap to store) and expensive to
// analyse: the attacks of issue 11 item 3, built in memory by the tests.
import { crc32, deflateRawSync } from 'node:zlib';

/** A protocol-2 pickle of `N0` (None, pop) repeated up to `size` bytes: harmless, and every opcode must be walked. */
export function nonePopPickle(size: number): Buffer {
  const out = Buffer.alloc(size);
  out[0] = 0x80;
  out[1] = 2;
  out.fill('N0', 2, size - 1);
  out[size - 1] = 0x2e; // STOP
  return out;
}

/**
 * A PyTorch zip of `members` deflated pickles of `memberSize` bytes each
 * (`archive/data.pkl` and `archive/m<i>.pkl`): 63 × 16 MiB is ~1 MiB stored.
 * The members are identical, so the pickle is deflated once.
 */
export function pickleZipBomb(members = 63, memberSize = 16 * 1024 * 1024): Buffer {
  const pickle = nonePopPickle(memberSize);
  const body = deflateRawSync(pickle, { level: 9 });
  const crc = crc32(pickle);
  const names = ['archive/data.pkl', ...Array.from({ length: members - 1 }, (_, i) => `archive/m${i}.pkl`)];
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const name of names) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(pickle.length, 22);
    local.writeUInt16LE(n.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(body.length, 20);
    entry.writeUInt32LE(pickle.length, 24);
    entry.writeUInt16LE(n.length, 28);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, n, body);
    central.push(entry, n);
    offset += 30 + n.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(names.length, 8);
  end.writeUInt16LE(names.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

/**
 * A valid safetensors file whose header holds `tensors` one-byte U8 tensors:
 * 1.3M tensors make a ~92 MB header (the format allows 100 MB).
 */
export function hugeHeaderSafetensors(tensors = 1_300_000): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < tensors; i++) parts.push(`"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
  const json = Buffer.from(`{${parts.join(',')}}`);
  const file = Buffer.alloc(8 + json.length + tensors);
  file.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(file, 8);
  return file;
}

/** A valid GGUF v3 with `tensors` F32 tensors of 8 elements each (the detector's limit is 2^20). */
export function manyTensorGguf(tensors = 1 << 20): Buffer {
  const names = Array.from({ length: tensors }, (_, i) => `blk.${i}.w`);
  const infoBytes = names.reduce((n, s) => n + 8 + s.length + 4 + 8 + 4 + 8, 0);
  const headerEnd = 4 + 4 + 8 + 8 + infoBytes;
  const dataStart = Math.ceil(headerEnd / 32) * 32;
  const file = Buffer.alloc(dataStart + tensors * 32);
  let at = file.write('GGUF', 0, 'latin1');
  at = file.writeUInt32LE(3, at);
  at = file.writeBigUInt64LE(BigInt(tensors), at);
  at = file.writeBigUInt64LE(0n, at);
  names.forEach((name, i) => {
    at = file.writeBigUInt64LE(BigInt(name.length), at);
    at += file.write(name, at, 'latin1');
    at = file.writeUInt32LE(1, at); // n_dims
    at = file.writeBigUInt64LE(8n, at);
    at = file.writeUInt32LE(0, at); // F32
    at = file.writeBigUInt64LE(BigInt(i * 32), at);
  });
  return file;
}
