// `cairn push` straight into the bucket: when storage is S3 the CLI cuts and
// encodes the chunks itself (the same chunker, tensor layout and codecs as
// the server, in worker threads, so chunk ids and dedup are the same
// whichever side cut them), asks the server which chunks it lacks
// (POST /v1/chunks/missing), puts only those into the upload session's
// staging area through presigned PUTs, and appends the file as a chunk list
// (POST /v1/uploads/{id}/chunks), a segment at a time. The server trusts
// none of it: it reads every chunk back and checks it before recording it,
// while the next segment is being uploaded. Finishing the session checks
// the whole file's digest, as for any upload.
import { open, type FileHandle } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { UploadDoc } from '../api/index.ts';
import { MAX_DIRECT_CHUNKS } from '../api/index.ts';
import { ClientError, type CairnClient } from '../client.ts';
import { DEFAULT_CHUNKING } from '../codecs/chunker.ts';
import type { CodecPool } from '../codecs/codec-pool.ts';
import { forcedCuts, HintCursor, type TensorLayout } from '../codecs/tensor-layout.ts';
import { findTensorLayout } from '../formats/tensor-layout.ts';
import { eachLimited } from '../each-limited.ts';
import { CliError, sleep } from './common.ts';
import type { Progress } from './progress.ts';

/** Bytes read from the file per trip to the chunking worker. */
const FEED_BYTES = 1024 * 1024;
/** Chunks being encoded and PUT at once: each is its own S3 request (~2 MiB). */
export const PUT_CONCURRENCY = 8;
/** File bytes per appended segment: the server checks one while the next is uploaded. */
const SEGMENT_BYTES = 128 * 1024 * 1024;
const PUT_RETRIES = 3;

/** A chunk of the local file. */
interface CutChunk {
  digest: string;
  offset: number;
  size: number;
}

export interface CutFile {
  digest: string;
  size: number;
  chunks: CutChunk[];
  layout?: TensorLayout;
}

export interface DirectPushResult {
  /** encoded bytes put into storage */
  bytes_sent: number;
}

/**
 * Whether this server takes no direct pushes, so the file goes through it:
 * its storage is not S3 (409 DIRECT_UNAVAILABLE), it predates direct pushes
 * (404), or the storage its URLs name does not answer from here.
 */
export function directPushUnavailable(err: unknown): boolean {
  if (err instanceof CliError) return err.code === 'STORAGE_UNREACHABLE';
  return err instanceof ClientError && (err.code === 'DIRECT_UNAVAILABLE' || err.status === 404 || err.status === 405);
}

/** The tensor layout of a file, read from its head as the server reads a stream's (formats/tensor-layout.ts). */
async function layoutOf(handle: FileHandle, size: number): Promise<TensorLayout | undefined> {
  let want = 8;
  for (;;) {
    const length = Math.min(want, size);
    const head = new Uint8Array(length);
    const { bytesRead } = await handle.read(head, 0, length, 0);
    const found = await findTensorLayout(head.subarray(0, bytesRead), bytesRead >= size);
    if (found.state === 'found') return found.layout;
    if (found.state === 'none' || bytesRead >= size || found.bytes <= want) return undefined;
    want = found.bytes;
  }
}

/**
 * Cuts a local file into chunks in the codec workers (sha256 of each and of
 * the whole file), holding only their digests: the bytes are read again
 * when a chunk has to be sent.
 */
export async function cutFile(local: string, pool: CodecPool, progress: Progress): Promise<CutFile> {
  const handle = await open(local, 'r');
  try {
    const { size } = await handle.stat();
    const layout = await layoutOf(handle, size);
    if (size === 0) {
      const empty = pool.openStream(DEFAULT_CHUNKING, {});
      const end = await empty.end();
      return { digest: end.digest, size: 0, chunks: [], layout };
    }
    const stream = pool.openStream(DEFAULT_CHUNKING, { start: 0, cuts: layout ? forcedCuts(layout, DEFAULT_CHUNKING) : undefined });
    const chunks: CutChunk[] = [];
    let offset = 0;
    const take = (cut: Array<{ data: Uint8Array; digest: string }>) => {
      for (const c of cut) {
        chunks.push({ digest: c.digest, offset, size: c.data.byteLength });
        offset += c.data.byteLength;
      }
    };
    // two feeds in flight: the worker cuts one while the next is read
    const feeds: Array<Promise<Array<{ data: Uint8Array; digest: string }>>> = [];
    try {
      for (let at = 0; at < size; at += FEED_BYTES) {
        const piece = new Uint8Array(Math.min(FEED_BYTES, size - at));
        const { bytesRead } = await handle.read(piece, 0, piece.length, at);
        if (bytesRead !== piece.length) throw new CliError('FILE_CHANGED', `${local} got shorter while it was read`);
        const fed = stream.feed(piece);
        fed.catch(() => undefined); // awaited in order below
        feeds.push(fed);
        progress.add(piece.length);
        if (feeds.length > 2) take(await feeds.shift()!);
      }
      while (feeds.length > 0) take(await feeds.shift()!);
    } catch (err) {
      stream.abort();
      throw err;
    }
    const end = await stream.end();
    take(end.chunks);
    if (end.size !== size || offset !== size) throw new CliError('FILE_CHANGED', `${local} changed while it was read`);
    return { digest: end.digest, size, chunks, layout };
  } finally {
    await handle.close();
  }
}

/** PUTs bytes to a presigned URL (node:http: no copy, a fraction of fetch's CPU); resolves with the status. */
function putObject(url: string, body: Uint8Array, agent: http.Agent): Promise<number> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      { method: 'PUT', agent: target.protocol === 'https:' ? undefined : agent, headers: { 'Content-Length': String(body.byteLength) } },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * Pushes a cut file through upload session `session` (see the top): only
 * the chunks the server lacks cross, encoded, straight to storage. Resolves
 * once the session holds the whole file; the caller finishes it.
 */
export async function pushDirect(
  client: CairnClient,
  session: UploadDoc,
  local: string,
  cut: CutFile,
  pool: CodecPool,
  progress: Progress,
  limiter?: { take(n: number): Promise<void> },
): Promise<DirectPushResult> {
  // Which chunks the server lacks, asked once per file (a chunk that comes twice is sent once).
  const unique = [...new Set(cut.chunks.map((c) => c.digest))];
  const missing = new Set<string>();
  for (let i = 0; i < unique.length; i += MAX_DIRECT_CHUNKS) {
    for (const d of (await client.missingChunks(unique.slice(i, i + MAX_DIRECT_CHUNKS))).missing) missing.add(d);
  }
  const hints = cut.layout ? new HintCursor(cut.layout) : undefined;
  const result: DirectPushResult = { bytes_sent: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: PUT_CONCURRENCY });
  const handle = await open(local, 'r');
  let offset = session.offset;
  try {
    /** Encodes one chunk read from the file and PUTs it to its staging URL (a URL that expired is asked for again). */
    const send = async (chunk: CutChunk, hint: ReturnType<HintCursor['hint']>) => {
      const raw = new Uint8Array(chunk.size);
      const { bytesRead } = await handle.read(raw, 0, chunk.size, chunk.offset);
      if (bytesRead !== chunk.size) throw new CliError('FILE_CHANGED', `${local} got shorter while it was pushed`);
      await limiter?.take(chunk.size);
      const encoded = await pool.encode(raw, hint); // hashed again: the file may have changed since it was cut
      if (encoded.digest !== chunk.digest) throw new CliError('FILE_CHANGED', `${local} changed while it was pushed (a chunk at ${chunk.offset} no longer hashes as it did)`);
      const storedSize = encoded.stored.byteLength;
      for (let attempt = 0; ; attempt++) {
        const url = (await client.stageChunks(session.id, [{ digest: chunk.digest, stored_size: storedSize }])).urls[0]?.url;
        if (!url) throw new CliError('BAD_RESPONSE', 'the server handed out no staging URL');
        let status: number;
        try {
          status = await putObject(url, encoded.stored, agent);
        } catch (err) {
          if (attempt >= PUT_RETRIES) {
            throw new CliError('STORAGE_UNREACHABLE', `${local}: cannot put into storage at ${new URL(url).origin} (${(err as Error).message})`);
          }
          progress.note(`cairn: sending a chunk of ${local} failed (${(err as Error).message}); retrying`);
          await sleep(500 * 2 ** attempt);
          continue;
        }
        if (status === 200) break;
        if ((status === 403 || status >= 500) && attempt < PUT_RETRIES) continue; // an expired URL, or storage busy: a fresh URL
        throw new CliError('STORAGE_REFUSED', `${local}: storage answered ${status} to a chunk upload; try again, or push with --via-server`, { status });
      }
      result.bytes_sent += storedSize;
    };

    // Segments: their chunks are sent, then appended; the server checks one while the next is sent.
    let appending: Promise<UploadDoc> | undefined;
    let appendFailed = false; // then the rest is not sent: awaiting `appending` below throws why
    let appendedUpTo = session.offset;
    const sent = new Set<string>();
    const chunks = cut.chunks.filter((c) => c.offset >= session.offset);
    if (chunks.length > 0 && chunks[0]!.offset !== session.offset) {
      throw new CliError('UPLOAD_MISMATCH', `the session holds ${session.offset} bytes, which is not a chunk boundary of ${local}`);
    }
    for (let i = 0; i < chunks.length && !appendFailed; ) {
      const segment: CutChunk[] = [];
      let bytes = 0;
      while (i < chunks.length && segment.length < MAX_DIRECT_CHUNKS && (segment.length === 0 || bytes + chunks[i]!.size <= SEGMENT_BYTES)) {
        bytes += chunks[i]!.size;
        segment.push(chunks[i++]!);
      }
      // hints come from one cursor, in file order
      const toSend = segment
        .filter((c) => missing.has(c.digest) && !sent.has(c.digest) && (sent.add(c.digest), true))
        .map((c) => ({ chunk: c, hint: hints?.hint(c.offset, c.size) }));
      await eachLimited(toSend, PUT_CONCURRENCY, ({ chunk, hint }) => send(chunk, hint));
      const before = appending;
      const from = appendedUpTo;
      appendedUpTo += bytes;
      appending = (async () => {
        if (before) await before;
        const doc = await client.appendChunks(
          session.id,
          from,
          segment.map((c) => ({ digest: c.digest, size: c.size })),
        );
        progress.add(bytes);
        return doc;
      })();
      appending.catch(() => (appendFailed = true)); // awaited before the next append or at the end
    }
    if (appending) offset = (await appending).offset;
  } finally {
    agent.destroy();
    await handle.close();
  }
  if (offset !== cut.size) throw new CliError('UPLOAD_MISMATCH', `the session holds ${offset} bytes of a ${cut.size}-byte file`);
  return result;
}
