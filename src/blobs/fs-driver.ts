// Local-disk driver. Writes go to a temp file, are fsynced, then hard-linked
// into place: link(2) fails with EEXIST when the key exists, which gives an
// atomic create-only put; readers never see a partial object.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { assertSafeKey, DriverError, type ByteRange, type StorageDriver } from './driver.ts';

const TMP_DIR = '.tmp';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class FsDriver implements StorageDriver {
  readonly name = 'fs';
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private file(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  private fail(err: unknown, key: string): never {
    const code = errno(err);
    // a directory (or a path through a file) is not an object
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') throw new DriverError('not_found', key, `no object ${key}`, { cause: err });
    if (code === 'EEXIST') throw new DriverError('exists', key, `object ${key} exists`, { cause: err });
    // Disk full, permissions, I/O errors: the backend cannot serve us right now.
    throw new DriverError('unavailable', key, `fs ${code ?? 'error'} on ${key}: ${(err as Error).message}`, { cause: err });
  }

  async get(key: string): Promise<Buffer> {
    const file = this.file(key);
    try {
      return await fs.readFile(file);
    } catch (err) {
      return this.fail(err, key);
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const target = this.file(key);
    const tmpDir = path.join(this.root, TMP_DIR);
    const tmp = path.join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`);
    try {
      await fs.mkdir(tmpDir, { recursive: true });
      await fs.mkdir(path.dirname(target), { recursive: true });
      const handle = await fs.open(tmp, 'wx');
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.link(tmp, target);
      await syncDir(path.dirname(target));
    } catch (err) {
      this.fail(err, key);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async reader(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.file(key);
    try {
      // Open first so a missing key fails here, not later inside the stream.
      const handle = await fs.open(file, 'r');
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        throw Object.assign(new Error(`${key} is a directory`), { code: 'EISDIR' });
      }
      return handle.createReadStream({ start: range?.start, end: range?.end });
    } catch (err) {
      return this.fail(err, key);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const file = this.file(key);
    try {
      const s = await fs.stat(file);
      return s.isFile() ? { size: s.size } : undefined;
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      return this.fail(err, key);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    // Walk only the directories the prefix can reach, never outside the root.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    if (prefix.startsWith('/') || (dirKey !== '' && dirKey.split('/').some((s) => s === '' || s === '.' || s === '..'))) {
      throw new Error(`unsafe storage prefix ${JSON.stringify(prefix)}`);
    }
    const start = dirKey ? path.join(this.root, ...dirKey.split('/')) : this.root;
    const stack: Array<{ dir: string; key: string }> = [{ dir: start, key: dirKey }];
    while (stack.length > 0) {
      const { dir, key } = stack.pop()!;
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errno(err) === 'ENOENT') continue;
        this.fail(err, key);
      }
      for (const entry of entries) {
        if (key === '' && entry.name === TMP_DIR) continue;
        const childKey = key ? `${key}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (childKey.startsWith(prefix) || prefix.startsWith(`${childKey}/`)) stack.push({ dir: path.join(dir, entry.name), key: childKey });
        } else if (childKey.startsWith(prefix)) {
          yield childKey;
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.file(key);
    try {
      await fs.unlink(file);
    } catch (err) {
      // nothing to delete: missing, or not an object (a directory)
      if (!['ENOENT', 'EISDIR', 'EPERM', 'ENOTDIR'].includes(errno(err) ?? '')) this.fail(err, key);
    }
  }

  async ping(): Promise<void> {
    try {
      await fs.mkdir(this.root, { recursive: true });
      await fs.access(this.root, fs.constants.W_OK);
    } catch (err) {
      this.fail(err, '');
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
