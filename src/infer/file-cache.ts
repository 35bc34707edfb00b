// The local cache of model files, kept across restarts: one file per content
// digest under <dir>/blobs/sha256/<hex>, written to a temporary name while it
// streams in, hashed on the way, and renamed into place only when its sha256
// is the one the registry's version document names. A cached file is hashed
// again the first time this process uses it, so a file changed on disk is
// fetched again rather than loaded. A version's files appear by their paths
// (hard links) under <dir>/versions/<manifest hex>/, where ONNX Runtime finds
// a model's external data next to it.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** The bytes fetched are not the bytes the version names: never used. */
export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
}

function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new DigestMismatchError(`not a sha256 digest: ${digest}`);
  return m[1]!;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return `sha256:${hash.digest('hex')}`;
}

export class FileCache {
  /** digests hashed and found right by this process */
  private readonly verified = new Set<string>();
  /** one fetch per digest at a time */
  private readonly inFlight = new Map<string, Promise<string>>();
  private bytes = 0;

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<FileCache> {
    const cache = new FileCache(dir);
    await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    await fs.rm(path.join(dir, 'tmp'), { recursive: true, force: true }); // partial downloads of an earlier run
    await fs.mkdir(path.join(dir, 'tmp'), { recursive: true });
    for (const name of await fs.readdir(path.join(dir, 'blobs', 'sha256'))) {
      const st = await fs.stat(path.join(dir, 'blobs', 'sha256', name)).catch(() => undefined);
      if (st?.isFile()) cache.bytes += st.size;
    }
    return cache;
  }

  /** Bytes of model files in the cache. */
  get size(): number {
    return this.bytes;
  }

  private blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  /**
   * The path of a file with this digest: from the cache when it holds it
   * (hashed once per process), else streamed from `fetch` and verified.
   */
  ensure(digest: string, fetch: () => Promise<Readable>): Promise<string> {
    const running = this.inFlight.get(digest);
    if (running) return running;
    const job = this.ensureOnce(digest, fetch).finally(() => this.inFlight.delete(digest));
    this.inFlight.set(digest, job);
    return job;
  }

  private async ensureOnce(digest: string, fetch: () => Promise<Readable>): Promise<string> {
    const target = this.blobPath(digest);
    const st = await fs.stat(target).catch(() => undefined);
    if (st) {
      if (this.verified.has(digest)) return target;
      if ((await sha256File(target)) === digest) {
        this.verified.add(digest);
        return target;
      }
      await fs.rm(target, { force: true }); // changed on disk: fetch it again
      this.bytes -= st.size;
    }
    const tmp = path.join(this.dir, 'tmp', `${hexOf(digest)}.${randomBytes(6).toString('hex')}`);
    try {
      const source = await fetch();
      const hash = createHash('sha256');
      let size = 0;
      await pipeline(
        source,
        async function* hashed(chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.byteLength;
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: 'wx' }),
      );
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new DigestMismatchError(`the registry sent bytes with digest ${got} for ${digest}`);
      const fd = await fs.open(tmp, 'r');
      await fd.sync().finally(() => fd.close());
      await fs.rename(tmp, target);
      this.bytes += size;
      this.verified.add(digest);
      return target;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /**
   * A directory holding `files` at their paths (hard links to cached blobs),
   * for the version with manifest digest `versionDigest`.
   */
  async versionDir(versionDigest: string, files: Array<{ path: string; blob: string }>): Promise<string> {
    const dir = path.join(this.dir, 'versions', hexOf(versionDigest));
    for (const f of files) {
      const to = path.join(dir, ...f.path.split('/'));
      if (!to.startsWith(dir + path.sep)) throw new Error(`file path ${f.path} leaves the version directory`);
      await fs.mkdir(path.dirname(to), { recursive: true });
      await fs.rm(to, { force: true });
      try {
        await fs.link(f.blob, to);
      } catch {
        await fs.copyFile(f.blob, to); // a filesystem without hard links
      }
    }
    return dir;
  }
}
