// `cairn pull` straight from the bucket: when storage is S3 the server hands
// out a file's chunk map (GET …/files/{path}/chunks: offset, size, codec,
// digest and a presigned GET per chunk) and the chunk bytes come from S3, not
// through the server. The server verifies nothing on this path, so the CLI
// does all of it: every chunk is decoded (the same codec code as the server,
// in worker threads) and checked against its sha256, the chunks must tile the
// file exactly, and the whole file must hash to the version's digest before it
// is renamed into place.
//
// Resumable: the partial file has a fixed name (from the file's digest) and is
// kept when a pull fails; the next run re-reads what it holds and keeps every
// chunk whose bytes still hash to their digest, fetching only the rest.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { ChunkMap, ChunkMapEntry, FileDoc } from '../api/index.ts';
import { ChunkCorruptError, sha256 } from '../codecs/codec.ts';
import type { CodecPool } from '../codecs/codec-pool.ts';
import { type CairnClient, ClientError } from '../client.ts';
import { CliError, sleep } from './common.ts';
import type { Progress } from './progress.ts';

/** File bytes per chunk-map request: its URLs are used long before they expire, and a map stays a small document (~256 chunks). */
const MAP_WINDOW = 512 * 1024 * 1024;
/**
 * Chunk objects fetched at once. Each is its own S3 GET (~2 MiB): several in
 * flight hide S3's per-request latency, and decoding runs in every worker.
 */
export const DIRECT_CONCURRENCY = 8;
const FETCH_RETRIES = 3;

export interface Source {
  client: CairnClient;
  name: string;
  /** the manifest digest: every file from the same version */
  pinned: string;
  progress: Progress;
}

export function mismatch(file: FileDoc, what: string, extra: Record<string, unknown> = {}): CliError {
  return new CliError('DIGEST_MISMATCH', `${file.path}: ${what}; the file was not written`, { path: file.path, expected: file.digest, ...extra });
}

/**
 * Whether this client cannot pull straight from storage, so it should
 * download through the server: the server hands out no chunk map for the
 * file — fs storage (409 DIRECT_UNAVAILABLE), or any 404 (a server that
 * predates chunk maps takes `…/{path}/chunks` for a file path that is not
 * there) — or the storage endpoint the URLs name does not answer from here
 * (an S3 endpoint on the server's private network).
 */
export function directUnavailable(err: unknown): boolean {
  if (err instanceof CliError) return err.code === 'STORAGE_UNREACHABLE';
  return err instanceof ClientError && (err.code === 'DIRECT_UNAVAILABLE' || err.status === 404);
}

export interface DirectResult {
  /** stored (compressed) bytes fetched from storage */
  received: number;
  /** file bytes kept from an earlier, interrupted pull */
  reused: number;
}

/** The partial file of a direct pull: one name per destination and content, so a re-run finds it. */
export function partialPath(dest: string, file: FileDoc): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${file.digest.slice(7, 23)}.cairn-partial`);
}

/**
 * GETs a presigned URL into one buffer of the size the map gives (node:http:
 * a fraction of fetch's CPU per byte, and no copy to join the pieces). A 200
 * with any other length has no body: the caller reports the mismatch.
 */
function getObject(url: string, size: number, agent: http.Agent): Promise<{ status: number; body?: Uint8Array }> {
  const target = new URL(url);
  const get = target.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(target, { agent: target.protocol === 'https:' ? undefined : agent }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200 || Number(res.headers['content-length']) !== size) {
        res.resume();
        res.once('end', () => resolve({ status }));
        res.once('error', reject);
        return;
      }
      const body = new Uint8Array(size);
      let at = 0;
      res.on('data', (piece: Buffer) => {
        if (at + piece.length > size) {
          req.destroy(new Error('storage sent more bytes than its Content-Length'));
          return;
        }
        body.set(piece, at);
        at += piece.length;
      });
      res.once('end', () => (at === size ? resolve({ status, body }) : reject(new Error(`storage sent ${at} of ${size} bytes`))));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
}

async function writeAll(handle: fs.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.length - at, position + at);
    at += bytesWritten;
  }
}

/**
 * Downloads one file straight from storage into `dest` (see the top). Throws
 * what directUnavailable recognizes, before touching the disk, when the
 * server hands out no chunk maps.
 */
export async function downloadDirect(source: Source, file: FileDoc, dest: string, pool: CodecPool): Promise<DirectResult> {
  const { client, name, pinned, progress } = source;
  const mapOf = (start: number, end: number): Promise<ChunkMap> => client.chunkMap(name, pinned, file.path, { start, end });
  const windowAt = (start: number) => mapOf(start, Math.min(start + MAP_WINDOW, file.size) - 1);
  // asked first: a server without chunk maps leaves nothing behind
  let nextMap = file.size > 0 ? windowAt(0) : undefined;
  await nextMap;

  const partial = partialPath(dest, file);
  let handle: fs.FileHandle;
  let created = false;
  let kept = 0; // bytes of an earlier attempt on disk
  try {
    handle = await fs.open(partial, 'r+');
    const st = await handle.stat();
    if (!st.isFile()) throw new CliError('UNSAFE_PATH', `${partial} is not a regular file`);
    if (st.size > file.size) await handle.truncate(file.size);
    kept = Math.min(st.size, file.size);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    handle = await fs.open(partial, 'wx', 0o644);
    created = true;
  }

  const result: DirectResult = { received: 0, reused: 0 };
  let verified = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: DIRECT_CONCURRENCY });
  try {
    /** The chunks of the file in order, one map window at a time, each checked to begin where the one before ended. */
    async function* chunks(): AsyncGenerator<ChunkMapEntry> {
      let offset = 0;
      while (nextMap) {
        const map = await nextMap;
        const windowEnd = map.end + 1;
        nextMap = windowEnd < file.size ? windowAt(windowEnd) : undefined;
        nextMap?.catch(() => undefined); // awaited on the next turn
        for (const chunk of map.chunks) {
          if (chunk.offset + chunk.size <= offset) continue; // the last chunk of the window before, again
          if (chunk.offset !== offset || chunk.size <= 0 || chunk.offset + chunk.size > file.size) {
            throw mismatch(file, `the chunk map is inconsistent: a chunk at ${chunk.offset} (+${chunk.size}) where ${offset} was expected`);
          }
          offset += chunk.size;
          yield chunk;
        }
        if (offset < Math.min(windowEnd, file.size)) throw mismatch(file, `the chunk map ends at ${offset}, before byte ${windowEnd}`);
      }
    }

    /** A chunk the partial file already holds, if its bytes still hash to its digest. */
    async function keptChunk(chunk: ChunkMapEntry): Promise<Uint8Array | undefined> {
      if (chunk.offset + chunk.size > kept) return undefined;
      const bytes = new Uint8Array(chunk.size);
      const { bytesRead } = await handle.read(bytes, 0, chunk.size, chunk.offset);
      return bytesRead === chunk.size && sha256(bytes) === chunk.digest ? bytes : undefined;
    }

    /** The stored object of a chunk from storage; a URL that has expired (403) is asked for again once. */
    async function fetchStored(chunk: ChunkMapEntry): Promise<Uint8Array> {
      let url = chunk.url;
      let renewed = false;
      for (let attempt = 0; ; attempt++) {
        try {
          const got = await getObject(url, chunk.stored_size, agent);
          if (got.status === 403 && !renewed) {
            renewed = true;
            const again = (await mapOf(chunk.offset, chunk.offset)).chunks.find((c) => c.offset === chunk.offset && c.digest === chunk.digest);
            if (!again) throw mismatch(file, `the chunk at ${chunk.offset} changed between two chunk maps`);
            url = again.url;
            continue;
          }
          if (got.status !== 200) {
            throw new CliError('STORAGE_REFUSED', `${file.path}: storage answered ${got.status} for chunk ${chunk.digest}; try again, or pull with --via-server`, { status: got.status });
          }
          if (!got.body) throw mismatch(file, `chunk ${chunk.digest} is not ${chunk.stored_size} bytes in storage, as the map says`);
          return got.body;
        } catch (err) {
          if (err instanceof CliError || err instanceof ClientError) throw err;
          if (attempt >= FETCH_RETRIES) {
            throw new CliError('STORAGE_UNREACHABLE', `${file.path}: cannot fetch from storage at ${new URL(url).origin} (${(err as Error).message})`);
          }
          progress.note(`cairn: fetching a chunk of ${file.path} failed (${(err as Error).message}); retrying`);
          await sleep(500 * 2 ** attempt);
        }
      }
    }

    /** A chunk's raw bytes, verified, and written at its place in the partial file. */
    async function chunkBytes(chunk: ChunkMapEntry): Promise<Uint8Array> {
      const old = await keptChunk(chunk);
      if (old) {
        result.reused += old.length;
        return old;
      }
      const stored = await fetchStored(chunk); // exactly stored_size bytes
      const storedSize = stored.length; // decode hands the buffer to a worker thread
      let raw: Uint8Array;
      try {
        raw = await pool.decode(stored, chunk.digest);
      } catch (err) {
        if (err instanceof ChunkCorruptError) throw mismatch(file, `chunk at ${chunk.offset} failed verification (${err.message})`, { chunk: chunk.digest });
        throw err;
      }
      if (raw.length !== chunk.size) throw mismatch(file, `chunk ${chunk.digest} has ${raw.length} bytes, the map says ${chunk.size}`);
      await writeAll(handle, raw, chunk.offset);
      result.received += storedSize;
      return raw;
    }

    // Fetched and decoded DIRECT_CONCURRENCY at a time, hashed in file order (bounded memory: that many chunks).
    const hash = createHash('sha256');
    const pending: Array<Promise<Uint8Array>> = [];
    const source = chunks();
    let exhausted = false;
    const fill = async () => {
      while (!exhausted && pending.length < DIRECT_CONCURRENCY) {
        const next = await source.next();
        if (next.done) exhausted = true;
        else {
          const bytes = chunkBytes(next.value);
          bytes.catch(() => undefined); // awaited in order below
          pending.push(bytes);
        }
      }
    };
    let written = 0;
    try {
      await fill();
      while (pending.length > 0) {
        const raw = await pending.shift()!;
        hash.update(raw);
        written += raw.length;
        progress.add(raw.length);
        await fill();
      }
    } finally {
      // what is still in flight must not write after we are gone
      await Promise.allSettled(pending);
    }
    if (written !== file.size) throw mismatch(file, `the chunks hold ${written} bytes, the version lists ${file.size}`, { size: written });
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== file.digest) {
      await fs.rm(partial, { force: true }); // every chunk checked out but not the whole: nothing in it is worth keeping
      throw mismatch(file, `content digest is ${actual}, the version lists ${file.digest}`, { actual });
    }
    await handle.truncate(file.size);
    await handle.sync();
    verified = true;
  } catch (err) {
    // storage out of reach before a byte came: leave nothing behind for the download through the server
    if (created && result.received === 0 && directUnavailable(err)) await fs.rm(partial, { force: true });
    throw err;
  } finally {
    agent.destroy();
    await handle.close().catch(() => undefined);
  }
  if (verified) await fs.rename(partial, dest);
  return result;
}
