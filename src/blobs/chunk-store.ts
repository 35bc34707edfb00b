// Files as lists of content-addressed chunks. Writing: a byte stream is cut
// into content-defined chunks and hashed in a worker thread; new chunks are
// compressed in worker threads and written create-only, a few in flight at
// once (bounded memory). Reading:
// chunks are fetched ahead (as far as read-ahead.ts allows), decompressed and
// verified against their digest before a single byte is handed out.
import { Readable } from 'node:stream';
import { CairnError } from '../errors.ts';
import type { ChunkIndex, ChunkRecord, ChunkRef, StoredChunkRef } from './chunk-index.ts';
import { DEFAULT_CHUNKING, type ChunkerOptions } from '../codecs/chunker.ts';
import { ChunkCorruptError, codecOf, sha256, type ChunkHint } from '../codecs/codec.ts';
import type { ChunkStream, CodecPool, RawChunk, RunningHash, VerifiedObject } from '../codecs/codec-pool.ts';
import { isDriverError, type StorageDriver } from './driver.ts';
import { ChunkRecorder } from './chunk-recorder.ts';
import { chunkKey } from './layout.ts';
import { collectYoungGarbage } from '../codecs/young-gc.ts';
import { forcedCuts, HintCursor, type LayoutFinder, type TensorLayout } from '../codecs/tensor-layout.ts';
import { DEFAULT_READ_AHEAD_BYTES, DEFAULT_READ_AHEAD_TOTAL_BYTES, ReadAhead, ReadAheadBudget } from './read-ahead.ts';

export interface StoredContent {
  digest: string;
  size: number;
  chunks: ChunkRef[];
}

export interface BlobStream {
  stream: Readable;
  /** size of the whole blob */
  size: number;
}

/** Random access to a stored blob: bounded reads, each one verified. */
export interface BlobReader {
  readonly size: number;
  /** bytes [offset, offset + length) clipped to the blob */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A stored chunk of a blob and a URL that fetches its object straight from storage until it expires. */
export interface DirectChunk extends StoredChunkRef {
  url: string;
}

export interface ChunkStoreOptions {
  chunking?: ChunkerOptions;
  /**
   * chunks being encoded or written at once, per upload. 6: S3 takes tens of
   * ms per object beyond its transfer; through a 1 Gbit/s link a push kept it
   * 63% busy with 3 in flight, 73% with 6 (bench/push-pull.ts --link 1gbit).
   */
  writeConcurrency?: number;
  /**
   * Bytes of chunks a download may hold fetched (and verified) ahead of the
   * one it is sending; its next chunk is always fetched. Default
   * DEFAULT_READ_AHEAD_BYTES.
   */
  readAheadBytes?: number;
  /**
   * Bytes fetched ahead by all downloads of this store together (see
   * ReadAheadBudget). Default DEFAULT_READ_AHEAD_TOTAL_BYTES.
   */
  readAheadTotalBytes?: number;
  /** reads a tensor file's layout from the first bytes of a stream; without it, chunks are cut by content only */
  findLayout?: LayoutFinder;
  onCorrupt?: (info: { chunk: string; blob: string; message: string }) => void;
}

const noop = () => {};
/** Bytes per trip to the chunking worker, and trips in flight beyond the one being stored. */
const FEED_BYTES = 1024 * 1024;
const FEEDS_AHEAD = 2;
const EMPTY_DIGEST = sha256(new Uint8Array(0));

export class ChunkStore {
  private readonly chunking: ChunkerOptions;
  private readonly writeConcurrency: number;
  private readonly readAheadBytes: number;
  private readonly readAheadBudget: ReadAheadBudget;
  private readonly findLayout: LayoutFinder | undefined;
  private readonly onCorrupt: NonNullable<ChunkStoreOptions['onCorrupt']>;
  /** blob digest → reads in progress (open streams, archives) */
  private readonly reading = new Map<string, number>();

  constructor(
    /** storage, failing with domain errors (storage-errors.ts) */
    readonly driver: StorageDriver,
    private readonly index: ChunkIndex,
    private readonly pool: CodecPool,
    options: ChunkStoreOptions = {},
  ) {
    this.chunking = options.chunking ?? DEFAULT_CHUNKING;
    this.writeConcurrency = options.writeConcurrency ?? 6;
    this.readAheadBytes = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
    this.readAheadBudget = new ReadAheadBudget(options.readAheadTotalBytes ?? DEFAULT_READ_AHEAD_TOTAL_BYTES);
    this.findLayout = options.findLayout;
    this.onCorrupt = options.onCorrupt ?? noop;
  }

  /**
   * Chunks and stores a byte stream. `onChunks` sees every stored chunk, in
   * order and in batches, inside the transaction that records them, once they
   * and all before them are durable in storage. With `keepPartial`, a failing
   * source still has the bytes received so far stored (and reported) before
   * the error is rethrown — what resumable uploads need. With `hash` (see
   * runningHash), that running hash sees the bytes too, from `startOffset`
   * on, provided it has seen exactly the `startOffset` bytes before them;
   * otherwise it is lost.
   *
   * A stream continued by a later call (the next request of an upload
   * session) passes `resume`: `replay` is its last stored chunk, which ends
   * at `startOffset`; it is read back and cut again together with the new
   * bytes (chunking restarts at every cut), and `layout` is the tensor
   * layout found when the stream began (`onLayout` reports it then). The
   * chunks then come out exactly as if the stream had never been split, and
   * the returned chunks, size and digest cover it from the replayed chunk on.
   *
   * The event loop only batches the incoming bytes and moves buffers: a worker
   * cuts them into chunks and hashes them, chunks already stored are skipped
   * before any compression, and the rest are compressed in the codec workers
   * and written a few at a time.
   */
  async store(
    source: AsyncIterable<Uint8Array>,
    options: {
      onChunks?: (chunks: ChunkRef[]) => void;
      keepPartial?: boolean;
      startOffset?: number;
      hash?: RunningHash;
      resume?: { replay?: ChunkRef; layout?: TensorLayout };
      onLayout?: (layout: TensorLayout) => void;
    } = {},
  ): Promise<StoredContent> {
    const startOffset = options.startOffset ?? 0;
    const replay = options.resume?.replay;
    if (replay && replay.offset + replay.size !== startOffset) {
      throw new Error(`store: the replayed chunk ends at ${replay.offset + replay.size}, not at ${startOffset}`);
    }
    const streamStart = replay ? replay.offset : startOffset;
    // Read before anything is stored: a session whose last chunk is unreadable cannot go on.
    const replayed = replay ? await this.readChunk(replay.digest) : undefined;
    const inflight: Array<Promise<ChunkRef & { record?: ChunkRecord }>> = [];
    const feeds: Array<Promise<RawChunk[]>> = [];
    const chunks: ChunkRef[] = [];
    const recorder = new ChunkRecorder(this.index, options.onChunks);
    let offset = streamStart;
    let size = 0;

    // Tensor files (safetensors, GGUF): the header, read from a bounded prefix
    // of the stream (by findLayout), gives forced cuts at tensor boundaries
    // and codec hints. Looked for when the stream starts at offset 0; a
    // continued stream brings the layout found then.
    const known = options.resume?.layout;
    const findLayout = this.findLayout;
    let probing = streamStart === 0 && !known && findLayout !== undefined;
    let head: Uint8Array[] = [];
    let headBytes = 0;
    let want = 8;
    let hints = known ? new HintCursor(known) : undefined;
    let cuts = known ? forcedCuts(known, this.chunking) : undefined;
    const probe = async (ended: boolean): Promise<Uint8Array | undefined> => {
      const bytes = head.length === 1 ? head[0]! : Buffer.concat(head, headBytes);
      const found = await findLayout!(bytes, ended);
      if (found.state === 'need' && !ended) {
        head = [bytes];
        want = found.bytes;
        return undefined;
      }
      probing = false;
      head = [];
      headBytes = 0;
      if (found.state === 'found') {
        cuts = forcedCuts(found.layout, this.chunking);
        hints = new HintCursor(found.layout);
        options.onLayout?.(found.layout);
      }
      return bytes;
    };
    /** What to feed now, while probing: the buffered head once it is decided. */
    const take = async (piece: Uint8Array): Promise<Uint8Array | undefined> => {
      head.push(piece);
      headBytes += piece.length;
      return headBytes < want ? undefined : probe(false);
    };

    // Opened on the first byte fed, once the tensor layout (if any) is known:
    // an empty body never waits for a worker.
    let stream: ChunkStream | undefined;
    const openStream = () =>
      (stream ??= this.pool.openStream(this.chunking, {
        start: streamStart,
        cuts,
        hash: options.hash && { running: options.hash, at: startOffset, replay: replay?.size ?? 0 },
      }));

    // Incoming pieces (~64 KiB from the socket) are batched so that a worker
    // round trip carries a useful amount of bytes.
    let pieces: Uint8Array[] = [];
    let piecesBytes = 0;
    const feedPieces = () => {
      if (piecesBytes === 0) return;
      const data = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, piecesBytes);
      pieces = [];
      piecesBytes = 0;
      const p = openStream().feed(data);
      p.catch(noop); // awaited in order below; this only marks it handled
      feeds.push(p);
    };

    const submit = (raw: RawChunk) => {
      const at = offset;
      const length = raw.data.length; // read now: the buffer is detached once transferred
      offset += length;
      size += length;
      const p = this.storeChunk(raw, hints?.hint(at, length)).then((stored) => ({ digest: raw.digest, record: stored.record, offset: at, size: length }));
      p.catch(noop); // awaited in order below; this only marks it handled
      inflight.push(p);
    };
    const drain = async (keep: number) => {
      while (inflight.length > keep) {
        const { record, ...chunk } = await inflight.shift()!;
        collectYoungGarbage(); // the chunk's buffers, now written, are garbage
        chunks.push(chunk);
        recorder.add(chunk, record);
      }
    };
    /** Stores the chunks of every feed but the last `keep` (still being cut). */
    const consume = async (keep: number) => {
      while (feeds.length > keep) {
        for (const raw of await feeds.shift()!) {
          submit(raw);
          await drain(this.writeConcurrency - 1);
        }
      }
    };

    let sourceError: unknown;
    let ended: { digest: string; size: number } | undefined;
    try {
      try {
        for await (const piece of replayed ? prepend(replayed, source) : source) {
          const bytes = probing ? await take(piece) : piece;
          if (!bytes) continue;
          pieces.push(bytes);
          piecesBytes += bytes.length;
          if (piecesBytes >= FEED_BYTES) {
            feedPieces();
            await consume(FEEDS_AHEAD);
          }
        }
      } catch (err) {
        if (!options.keepPartial) throw err;
        sourceError = err;
      }
      if (probing && headBytes > 0) {
        const bytes = (await probe(true))!;
        pieces.push(bytes);
        piecesBytes += bytes.length;
      }
      feedPieces();
      if (stream) {
        const last = stream.end().then((end) => {
          ended = end;
          return end.chunks;
        });
        last.catch(noop);
        feeds.push(last);
      } else {
        ended = { digest: EMPTY_DIGEST, size: 0 };
      }
      await consume(0);
      await drain(0);
    } catch (err) {
      stream?.abort();
      await Promise.allSettled([...feeds, ...inflight]);
      throw err;
    } finally {
      recorder.flush(); // whatever is durable in storage gets recorded, even on failure
    }
    if (sourceError !== undefined) throw sourceError;
    if (!ended || ended.size !== size) throw new Error(`chunk stream: the worker saw ${ended?.size} bytes, the store ${size}`);
    return { digest: ended.digest, size, chunks };
  }

  /**
   * A sha256 kept running over a byte stream stored in several calls (an
   * upload session's requests: pass it to each `store`), computed in a codec
   * worker; ask it for the digest at the end, and drop it.
   */
  runningHash(): RunningHash {
    return this.pool.runningHash();
  }

  /**
   * Writes one chunk unless it is known (then it is not even compressed);
   * returns the record to commit when it was new.
   */
  private async storeChunk(raw: RawChunk, hint?: ChunkHint): Promise<{ record?: ChunkRecord }> {
    if (this.index.hasChunk(raw.digest)) return {};
    const encoded = await this.pool.encode(raw.data, hint, raw.digest);
    return { record: await this.putChunk(raw.digest, encoded.stored, encoded.rawSize, encoded.storedSha256) };
  }

  /** Writes a verified chunk object create-only; returns the record to commit. */
  async putChunk(digest: string, stored: Uint8Array, rawSize: number, storedSha256?: string): Promise<ChunkRecord> {
    const key = chunkKey(digest);
    const codec = codecOf(stored);
    let storedSize = stored.byteLength;
    try {
      await this.driver.put(key, stored, { sha256: storedSha256 });
    } catch (err) {
      // Content addressing: an existing object already holds these bytes
      // (a concurrent upload, or a crash between write and record).
      if (!isDriverError(err, 'exists')) throw err;
      storedSize = (await this.driver.stat(key))?.size ?? storedSize;
    }
    return { digest, rawSize, storedSize, codec };
  }

  /** Fetches, decodes and verifies one chunk. */
  async readChunk(digest: string, blob = ''): Promise<Uint8Array> {
    let stored: Buffer;
    try {
      stored = await this.driver.get(chunkKey(digest));
    } catch (err) {
      if (isDriverError(err, 'not_found')) {
        this.onCorrupt({ chunk: digest, blob, message: 'chunk missing from storage' });
        throw new CairnError('CONTENT_CORRUPT', `stored content is damaged: chunk ${digest} is missing`);
      }
      throw err;
    }
    try {
      return await this.pool.decode(stored, digest);
    } catch (err) {
      if (!(err instanceof ChunkCorruptError)) throw err;
      this.onCorrupt({ chunk: digest, blob, message: err.message });
      throw new CairnError('CONTENT_CORRUPT', `stored content is damaged: chunk ${digest} failed verification`);
    }
  }

  /**
   * Marks blobs as being read until the returned function is called: gc keeps
   * them and their chunks (see blobsBeingRead), so a download that started
   * before its version was deleted still completes.
   */
  hold(digests: Iterable<string>): () => void {
    const held = [...new Set(digests)];
    for (const d of held) this.reading.set(d, (this.reading.get(d) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const d of held) {
        const n = this.reading.get(d)! - 1;
        if (n > 0) this.reading.set(d, n);
        else this.reading.delete(d);
      }
    };
  }

  /** Bytes of chunks fetched ahead by downloads now (see ReadAheadBudget). */
  readAheadInUse(): number {
    return this.readAheadBudget.inUse;
  }

  /** Blobs with a read in progress (gc must not collect them). */
  blobsBeingRead(): string[] {
    return [...this.reading.keys()];
  }

  /**
   * Opens a blob, or an inclusive byte range of it, for reading. Resolves once
   * the first chunk is fetched and verified, so the caller can still answer
   * with an error status; later failures destroy the stream. The blob is held
   * (see hold) from here until the stream closes.
   */
  async open(digest: string, range?: { start: number; end: number }): Promise<BlobStream> {
    const blob = this.index.getBlob(digest);
    if (!blob) throw new CairnError('BLOB_NOT_FOUND', `no content ${digest}`);
    const start = range?.start ?? 0;
    const end = range?.end ?? blob.size - 1;
    const chunks = end >= start ? this.index.chunksInRange(digest, start, end) : [];
    // held before the first await: gc's sweep (synchronous) either sees it or ran before getBlob
    const release = this.hold([digest]);

    const ahead = new ReadAhead(chunks, (chunk) => this.readChunk(chunk.digest, digest), this.readAheadBytes, this.readAheadBudget);
    const finish = () => {
      ahead.close();
      release();
    };
    try {
      await ahead.ready();
    } catch (err) {
      finish();
      throw err;
    }

    async function* body(): AsyncGenerator<Buffer> {
      for (const chunk of chunks) {
        const raw = await ahead.take();
        if (!raw) return; // closed
        collectYoungGarbage(); // the chunks already sent are garbage
        const from = Math.max(start - chunk.offset, 0);
        const to = Math.min(end - chunk.offset + 1, chunk.size);
        yield Buffer.from(raw.buffer, raw.byteOffset + from, to - from);
      }
    }
    const stream = Readable.from(body(), { objectMode: false, highWaterMark: 1 });
    stream.once('close', finish);
    return { stream, size: blob.size };
  }

  /**
   * The chunks of a blob that overlap the inclusive byte range [start, end],
   * each with a URL that fetches its stored object (codec byte and payload)
   * straight from storage for `seconds`: clients decode and verify it
   * themselves, and no byte passes through this process. The blob is held
   * (see hold) as long as the URLs work. Storage that cannot
   * hand out such URLs (fs) answers DIRECT_UNAVAILABLE.
   */
  async directChunks(digest: string, range: { start: number; end: number }, seconds: number): Promise<DirectChunk[]> {
    const presign = this.driver.presignGet?.bind(this.driver);
    if (!presign) throw new CairnError('DIRECT_UNAVAILABLE', `${this.driver.name} storage hands out no direct URLs; download the file itself`);
    const chunks = range.end >= range.start ? this.index.storedChunksInRange(digest, range.start, range.end) : [];
    // held while the URLs work, like an open download: gc keeps the chunks even if the version is deleted meanwhile
    const release = this.hold([digest]);
    setTimeout(release, seconds * 1000).unref();
    try {
      return await Promise.all(chunks.map(async (chunk) => ({ ...chunk, url: await presign(chunkKey(chunk.digest), seconds) })));
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The largest chunk the chunker cuts: a client that cuts for a direct push cuts no larger. */
  get maxChunkSize(): number {
    return this.chunking.maxSize;
  }

  /**
   * Checks an object from an untrusted source (a direct push's staged
   * chunk) in the codec workers: see CodecPool.verify.
   */
  verifyObject(stored: Uint8Array, digest: string, size: number): Promise<VerifiedObject> {
    return this.pool.verify(stored, digest, size);
  }

  /**
   * Random access to a stored blob (format detection reads files this way):
   * bounded reads served from a few decoded and verified chunks kept at hand.
   */
  blobReader(digest: string): BlobReader {
    const blob = this.index.getBlob(digest);
    if (!blob) throw new CairnError('BLOB_NOT_FOUND', `no content ${digest}`);
    const cache = new Map<number, Promise<Uint8Array>>(); // chunk offset → raw bytes
    const chunkAt = (chunk: ChunkRef) => {
      let raw = cache.get(chunk.offset);
      if (!raw) {
        raw = this.readChunk(chunk.digest, digest);
        raw.catch(noop);
        cache.set(chunk.offset, raw);
        if (cache.size > 4) cache.delete(cache.keys().next().value!);
      }
      return raw;
    };
    const index = this.index;
    return {
      size: blob.size,
      async read(offset, length) {
        if (offset < 0 || length < 0) throw new RangeError('negative read');
        const end = Math.min(offset + length, blob.size);
        if (offset >= end) return new Uint8Array(0);
        const out = new Uint8Array(end - offset);
        for (const chunk of index.chunksInRange(digest, offset, end - 1)) {
          const raw = await chunkAt(chunk);
          const from = Math.max(offset - chunk.offset, 0);
          const to = Math.min(end - chunk.offset, chunk.size);
          out.set(raw.subarray(from, to), chunk.offset + from - offset);
        }
        return out;
      },
    };
  }
}

async function* prepend(first: Uint8Array, rest: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield first;
  yield* rest;
}
