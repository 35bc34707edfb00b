// Git LFS uploads as Hugging Face clients make them: the batch API says which
// objects to send (none that the caller may already use: that is the dedup a
// re-upload sees) and where; the bytes then go, without a token, to links
// signed here — one PUT (`basic`), or numbered parts and a completion
// (`multipart`, for large files). Each object has an upload session
// (./uploads.ts), so its bytes stream into the chunk store like any upload,
// are hashed on the way, and become content only if their sha256 is the
// object's. Parts go into the session in order: a part that arrives early
// waits for the one before it (the JavaScript client sends five at once), so
// the file is chunked exactly as one stream — the same chunks, the same
// tensor-aware compression, the same dedup as a single PUT. A request cut
// mid-way keeps what it stored; sent again, the bytes the session holds are
// skipped.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Caller } from '../access.ts';
import { CairnError, isCairnError } from '../errors.ts';
import type { Catalog } from './catalog.ts';
import type { Uploads } from './uploads.ts';

/** Objects larger than this go in parts (when the client takes `multipart`). */
export const MULTIPART_FROM_BYTES = 64 * 1024 * 1024;
export const PART_BYTES = 64 * 1024 * 1024;
/** How long an upload link is valid. */
const LINK_SECONDS = 24 * 60 * 60;
/** How long a part waits for the one before it when no request is storing into its session. */
const ORDER_WAIT_MS = 60_000;
const MAX_OBJECTS = 1000;

/** What an upload link carries, signed: the session, the object, the part size (0: one PUT), who it is for, until when. */
export interface LfsTicket {
  session: string;
  oid: string;
  size: number;
  partSize: number;
  /** the principal whose session it is (absent with auth off) */
  by?: string;
  /** unix seconds */
  expires: number;
}

export type LfsObjectPlan =
  | { oid: string; size: number; stored: true }
  | { oid: string; size: number; error: { code: number; message: string } }
  | { oid: string; size: number; ticket: LfsTicket; parts: number };

export interface LfsBatchPlan {
  transfer: 'basic' | 'multipart';
  objects: LfsObjectPlan[];
}

export class HubLfs {
  /** sessions with a request storing into them, and what waits for them to move on */
  private readonly storing = new Map<string, number>();
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(
    private readonly catalog: Catalog,
    private readonly uploads: Uploads,
    /** signs upload links (a server key: links outlive a restart) */
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  /** The answer to a batch request: for each object, stored already, refused, or where to send it. */
  batch(request: unknown, caller: Caller, options: { maxUploadBytes?: number } = {}): LfsBatchPlan {
    const { operation, transfers, objects, hash_algo } = (request ?? {}) as { operation?: unknown; transfers?: unknown; objects?: unknown; hash_algo?: unknown };
    if (operation !== 'upload') throw new CairnError('INVALID_ARGUMENT', `operation must be "upload" (downloads go through /resolve), got ${JSON.stringify(operation)}`);
    if (hash_algo !== undefined && hash_algo !== 'sha256' && hash_algo !== 'sha_256') throw new CairnError('INVALID_ARGUMENT', 'hash_algo must be sha256');
    if (!Array.isArray(objects) || objects.length > MAX_OBJECTS) throw new CairnError('INVALID_ARGUMENT', `objects must be a list of at most ${MAX_OBJECTS} {oid, size}`);
    const multipart = Array.isArray(transfers) && transfers.includes('multipart');
    const plans = objects.map((o: { oid?: unknown; size?: unknown }): LfsObjectPlan => {
      const oid = o?.oid;
      const size = o?.size;
      if (typeof oid !== 'string' || !/^[0-9a-f]{64}$/.test(oid)) throw new CairnError('INVALID_DIGEST', `oid must be a sha256, 64 lowercase hex digits, got ${JSON.stringify(oid)?.slice(0, 80)}`);
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new CairnError('INVALID_ARGUMENT', `size of ${oid} must be a whole number of bytes`);
      const usable = this.catalog.usableBlob(`sha256:${oid}`, caller);
      if (usable && usable.size === size) return { oid, size, stored: true };
      if (usable) return { oid, size, error: { code: 422, message: `the content with sha256 ${oid} is ${usable.size} bytes, not ${size}` } };
      if (options.maxUploadBytes !== undefined && size > options.maxUploadBytes) {
        return { oid, size, error: { code: 413, message: `a file may hold at most ${options.maxUploadBytes} bytes (CAIRN_MAX_UPLOAD_BYTES)` } };
      }
      const partSize = multipart && size > MULTIPART_FROM_BYTES ? PART_BYTES : 0;
      const { id } = this.uploads.create(caller);
      const ticket: LfsTicket = { session: id, oid, size, partSize, ...(caller.principal !== undefined ? { by: caller.principal } : {}), expires: Math.floor(this.now() / 1000) + LINK_SECONDS };
      return { oid, size, ticket, parts: partSize === 0 ? 0 : Math.ceil(size / partSize) };
    });
    return { transfer: plans.some((p) => 'ticket' in p && p.parts > 0) ? 'multipart' : 'basic', objects: plans };
  }

  /** A ticket as the query of an upload link. */
  ticketQuery(t: LfsTicket): Record<string, string> {
    return { oid: t.oid, size: String(t.size), part_size: String(t.partSize), ...(t.by !== undefined ? { by: t.by } : {}), expires: String(t.expires), sig: this.sign(t) };
  }

  /** The ticket of an upload link, if its signature holds and it has not expired (FORBIDDEN otherwise). */
  ticket(session: string, query: Record<string, unknown>): LfsTicket {
    const text = (k: string) => (typeof query[k] === 'string' ? (query[k] as string) : '');
    const t: LfsTicket = { session, oid: text('oid'), size: Number(text('size')), partSize: Number(text('part_size')), ...(query.by !== undefined ? { by: text('by') } : {}), expires: Number(text('expires')) };
    const given = Buffer.from(text('sig'), 'base64url');
    const expected = Buffer.from(this.sign(t), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new CairnError('FORBIDDEN', 'this upload link is not one the server made (ask the LFS batch API for a new one)');
    if (!(t.expires * 1000 > this.now())) throw new CairnError('FORBIDDEN', 'this upload link has expired (ask the LFS batch API for a new one)');
    return t;
  }

  /**
   * Stores the body of a PUT: the whole object (`part` undefined, then the
   * object is finished) or part `part` (1-based). Bytes the session already
   * holds (a request sent again) are skipped; a part that arrives before
   * the one it follows waits for it. Answers the part's ETag.
   */
  async receive(t: LfsTicket, part: number | undefined, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<{ etag: string }> {
    const parts = t.partSize === 0 ? 1 : Math.ceil(t.size / t.partSize);
    if ((part === undefined) !== (t.partSize === 0) || (part !== undefined && !(Number.isSafeInteger(part) && part >= 1 && part <= parts))) {
      throw new CairnError('INVALID_ARGUMENT', t.partSize === 0 ? 'this object goes in one PUT to its upload link' : `part must be 1 to ${parts}`);
    }
    const start = part === undefined ? 0 : (part - 1) * t.partSize;
    const end = part === undefined ? t.size : Math.min(t.size, part * t.partSize);
    const etag = `"${t.oid.slice(0, 16)}-${part ?? 0}-${end - start}"`;
    const caller = callerOf(t);
    for (;;) {
      const offset = this.offsetOf(t, caller);
      if (offset === undefined || offset >= end) {
        // already stored (a request sent again after its answer was lost)
        for await (const _ of body);
        if (part === undefined && offset !== undefined) await this.finish(t, caller);
        return { etag };
      }
      if (offset < start) {
        await this.waitForTurn(t.session, signal);
        continue;
      }
      const stored = await this.store(t.session, offset, window(body, offset - start, end - start, part), caller);
      if (!stored) {
        // another request is storing into the session (the one this retries, not yet ended): wait for it to end
        await this.waitForTurn(t.session, signal);
        continue;
      }
      const held = this.uploads.get(t.session, caller).offset;
      if (held < end) throw new CairnError('UPLOAD_INCOMPLETE', `${part === undefined ? 'the object' : `part ${part}`} ended after ${held - start} of its ${end - start} bytes; send it again to go on`, { offset: held });
      if (part === undefined) await this.finish(t, caller);
      return { etag };
    }
  }

  /** The completion of a multipart upload: every part stored, the object's sha256 checked. */
  async complete(t: LfsTicket, body: unknown): Promise<void> {
    const oid = (body as { oid?: unknown } | undefined)?.oid;
    if (oid !== undefined && oid !== t.oid) throw new CairnError('INVALID_ARGUMENT', `this upload is for ${t.oid}, not ${String(oid)}`);
    const caller = callerOf(t);
    const offset = this.offsetOf(t, caller);
    if (offset === undefined) return; // finished before
    if (offset < t.size) throw new CairnError('UPLOAD_INCOMPLETE', `the parts hold ${offset} of the object's ${t.size} bytes`, { offset });
    await this.finish(t, caller);
  }

  /** The LFS verify action: the object is stored and the caller may use it. */
  verify(body: unknown, caller: Caller): void {
    const { oid, size } = (body ?? {}) as { oid?: unknown; size?: unknown };
    if (typeof oid !== 'string' || !/^[0-9a-f]{64}$/.test(oid)) throw new CairnError('INVALID_DIGEST', 'oid must be a sha256, 64 lowercase hex digits');
    const blob = this.catalog.usableBlob(`sha256:${oid}`, caller);
    if (!blob || (size !== undefined && blob.size !== size)) throw new CairnError('BLOB_NOT_FOUND', `no uploaded content with sha256 ${oid}${size !== undefined ? ` and ${String(size)} bytes` : ''}`);
  }

  private sign(t: LfsTicket): string {
    return createHmac('sha256', this.key)
      .update(JSON.stringify([t.session, t.oid, t.size, t.partSize, t.by ?? null, t.expires]))
      .digest('base64url');
  }

  /** Bytes the session holds; undefined when it is finished (the object is stored). */
  private offsetOf(t: LfsTicket, caller: Caller): number | undefined {
    try {
      return this.uploads.get(t.session, caller).offset;
    } catch (err) {
      if (!isCairnError(err, 'UPLOAD_NOT_FOUND') || !this.catalog.blobs.getBlob(`sha256:${t.oid}`)) throw err;
      return undefined;
    }
  }

  /** Appends to the session; false when another request is storing into it (nothing was read). */
  private async store(session: string, offset: number, body: AsyncIterable<Uint8Array>, caller: Caller): Promise<boolean> {
    this.storing.set(session, (this.storing.get(session) ?? 0) + 1);
    try {
      await this.uploads.append(session, offset, body, caller);
      return true;
    } catch (err) {
      if (isCairnError(err, 'UPLOAD_BUSY') || isCairnError(err, 'UPLOAD_OFFSET_MISMATCH')) return false;
      throw err;
    } finally {
      const n = this.storing.get(session)! - 1;
      if (n > 0) this.storing.set(session, n);
      else this.storing.delete(session);
      for (const wake of this.waiting.get(session) ?? []) wake();
    }
  }

  /**
   * Until the session moves on: while a request is storing into it, as long
   * as that takes; otherwise ORDER_WAIT_MS at most, for the part before to
   * arrive (UPLOAD_OFFSET_MISMATCH then).
   */
  private waitForTurn(session: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const wakers = this.waiting.get(session) ?? new Set<() => void>();
      this.waiting.set(session, wakers);
      const done = (err?: Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', aborted);
        wakers.delete(wake);
        if (wakers.size === 0 && this.waiting.get(session) === wakers) this.waiting.delete(session);
        if (err) reject(err);
        else resolve();
      };
      const wake = () => done();
      const aborted = () => done(new CairnError('INVALID_ARGUMENT', 'the client went away'));
      const timer = this.storing.has(session)
        ? undefined
        : setTimeout(() => done(new CairnError('UPLOAD_OFFSET_MISMATCH', `a part arrived before the part it follows, which did not come within ${ORDER_WAIT_MS / 1000} s: send the parts in order`)), ORDER_WAIT_MS);
      wakers.add(wake);
      if (signal.aborted) aborted();
      else signal.addEventListener('abort', aborted);
    });
  }

  /** The session becomes the object's content, if its sha256 is the object's; otherwise the bytes are dropped. */
  private async finish(t: LfsTicket, caller: Caller): Promise<void> {
    try {
      await this.uploads.finish(t.session, `sha256:${t.oid}`, undefined, caller);
    } catch (err) {
      if (isCairnError(err, 'DIGEST_MISMATCH')) await this.uploads.cancel(t.session, caller);
      throw err;
    }
  }
}

function callerOf(t: LfsTicket): Caller {
  return { principal: t.by, models: [] };
}

/**
 * A PUT body from the first byte the session lacks: the first `skip` bytes
 * (held already) are dropped, and a body longer than the `length` it is
 * meant to have is refused at the first byte past it.
 */
async function* window(body: AsyncIterable<Uint8Array>, skip: number, length: number, part: number | undefined): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const piece of body) {
    const at = seen;
    seen += piece.length;
    if (seen <= skip) continue;
    const from = Math.max(skip - at, 0);
    if (seen > length) {
      if (length - at > from) yield piece.subarray(from, length - at);
      throw new CairnError('UPLOAD_RANGE_EXCEEDED', `${part === undefined ? 'the object' : `part ${part}`} is ${length} bytes; the body is longer`, { offset: length });
    }
    yield from === 0 ? piece : piece.subarray(from);
  }
}
