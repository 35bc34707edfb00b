// The staging area of direct pushes: with S3 storage, Cairn's own clients cut
// and encode chunks themselves and put the ones the server lacks straight
// into the bucket, under staging/<session>/<digest> (layout.ts), through
// presigned PUTs of a signed length. Nothing there is trusted: `adopt` reads
// each staged object back, checks it and only then writes it to chunks/ as
// the chunk store writes any chunk. What stays behind is deleted when the
// session ends, or by gc once the session is gone.
import { CairnError } from '../errors.ts';
import { ChunkCorruptError } from '../codecs/codec.ts';
import type { VerifiedObject } from '../codecs/codec-pool.ts';
import { collectYoungGarbage } from '../codecs/young-gc.ts';
import type { ChunkIndex, ChunkRecord, ChunkRef } from './chunk-index.ts';
import type { ChunkStore } from './chunk-store.ts';
import { isDriverError, type StorageDriver } from './driver.ts';
import { ChunkRecorder } from './chunk-recorder.ts';
import { stagingKey } from './layout.ts';

/** A chunk of a file a client cut and encoded itself (a direct push): what it claims, in file order. */
export interface PushedChunk {
  digest: string;
  /** raw bytes */
  size: number;
}

const noop = () => {};

export class Staging {
  constructor(
    private readonly store: ChunkStore,
    private readonly index: ChunkIndex,
    private readonly options: { concurrency: number } = { concurrency: 6 },
  ) {}

  /** storage, failing with domain errors: the chunk store's */
  private get driver(): StorageDriver {
    return this.store.driver;
  }

  /** Whether storage hands out presigned URLs (S3): clients may move chunk bytes themselves. */
  get direct(): boolean {
    return this.driver.presignGet !== undefined && this.driver.presignPut !== undefined;
  }

  /**
   * A URL through which a client may PUT exactly `storedSize` bytes, for
   * `seconds`, as the staged object of `digest` in upload session `session`.
   * Nothing it puts there is trusted: see adopt.
   */
  async url(session: string, digest: string, storedSize: number, seconds: number): Promise<string> {
    const presign = this.driver.presignPut?.bind(this.driver);
    if (!presign) throw new CairnError('DIRECT_UNAVAILABLE', `${this.driver.name} storage takes no direct uploads; upload the bytes through the server`);
    return presign(stagingKey(session, digest), storedSize, seconds);
  }

  /** Deletes a session's staged objects (best effort: gc deletes what is left once the session is gone). */
  async drop(session: string, digests: Iterable<string>): Promise<void> {
    await Promise.allSettled([...digests].map((d) => this.driver.delete(stagingKey(session, d))));
  }

  /**
   * Takes chunks a client claims make up the next bytes of a file (a direct
   * push), trusting none of it. In order, a few in flight at once:
   *  - a chunk staged for `session` (`staged` holds the stored size its URL
   *    was signed for) is read back from staging; its headers must declare
   *    the claimed size (checked before decoding) and it must decode to bytes
   *    with the claimed digest (in the codec workers). The verified bytes, as
   *    read, are then written to chunks/ create-only — not copied inside the
   *    bucket: the client still holds the URL and could change the staged
   *    object after it was checked — and recorded.
   *  - any other chunk (or a staged one whose object is gone: adopted
   *    earlier in the file) must be recorded and allowed by `usable`
   *    (tenancy: a chunk of content the caller may not read counts as
   *    absent); it is read back, decoded and verified like any read.
   * Any other chunk is CHUNK_MISSING; a staged object that fails is
   * CHUNK_MISMATCH, and is deleted. The raw bytes of every chunk are handed
   * to `onBytes` in file order (the session's running hash), and `onChunks`
   * sees the chunks as they are recorded, like store's: so on failure the
   * chunks before the bad one are kept and reported, and the error says
   * where the file stands.
   */
  async adopt(
    session: string,
    pushed: PushedChunk[],
    options: {
      startOffset: number;
      staged: ReadonlyMap<string, number>;
      usable: (digest: string) => boolean;
      onBytes: (raw: Uint8Array, at: number) => void;
      onChunks: (chunks: ChunkRef[]) => void;
    },
  ): Promise<void> {
    const { staged, usable } = options;
    /** staged objects now stored as chunks: deleted once all are recorded (a chunk may come twice) */
    const adopted = new Set<string>();
    const recorded = async (chunk: PushedChunk, why: string): Promise<{ raw: Uint8Array }> => {
      if (!usable(chunk.digest)) throw new CairnError('CHUNK_MISSING', `chunk ${chunk.digest} ${why}; upload it first`, { digest: chunk.digest });
      const raw = await this.store.readChunk(chunk.digest);
      if (raw.byteLength !== chunk.size) throw new CairnError('CHUNK_MISMATCH', `chunk ${chunk.digest} holds ${raw.byteLength} bytes, not ${chunk.size}`, { digest: chunk.digest });
      return { raw };
    };
    const take = async (chunk: PushedChunk): Promise<{ raw: Uint8Array; record?: ChunkRecord }> => {
      const signed = staged.get(chunk.digest);
      if (signed === undefined) return recorded(chunk, 'is neither stored nor staged for this upload');
      const key = stagingKey(session, chunk.digest);
      let object: Buffer;
      try {
        object = await this.driver.get(key);
      } catch (err) {
        // adopted already (it came earlier in the file), or stored by someone else meanwhile
        if (isDriverError(err, 'not_found')) return recorded(chunk, 'was not uploaded to its staging URL');
        throw err;
      }
      const refuse = async (what: string): Promise<never> => {
        await this.driver.delete(key);
        throw new CairnError('CHUNK_MISMATCH', `the staged object of chunk ${chunk.digest} ${what}; it was deleted`, { digest: chunk.digest });
      };
      if (object.byteLength !== signed) return refuse(`is not the ${signed} bytes its URL was for`);
      let verified: VerifiedObject;
      try {
        verified = await this.store.verifyObject(object, chunk.digest, chunk.size);
      } catch (err) {
        if (!(err instanceof ChunkCorruptError)) throw err;
        return refuse(`does not hold it (${err.message})`);
      }
      const record = await this.store.putChunk(chunk.digest, verified.stored, chunk.size, verified.storedSha256);
      adopted.add(chunk.digest);
      return { raw: verified.raw, record };
    };

    const pending: Array<Promise<{ raw: Uint8Array; record?: ChunkRecord }>> = [];
    let next = 0;
    const fill = () => {
      while (pending.length < this.options.concurrency && next < pushed.length) {
        const p = take(pushed[next++]!);
        p.catch(noop); // awaited in order below; this only marks it handled
        pending.push(p);
      }
    };
    const recorder = new ChunkRecorder(this.index, options.onChunks);
    let offset = options.startOffset;
    try {
      for (const chunk of pushed) {
        fill();
        const { raw, record } = await pending.shift()!;
        options.onBytes(raw, offset);
        const ref = { digest: chunk.digest, offset, size: chunk.size };
        offset += chunk.size;
        recorder.add(ref, record);
        collectYoungGarbage();
      }
    } finally {
      await Promise.allSettled(pending);
      recorder.flush(); // the verified chunks before a failure count: the session stands after them
    }
    await this.drop(session, adopted);
  }
}
