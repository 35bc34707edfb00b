// Worker thread body: everything per byte that a transfer needs, so none of it
// runs on the event loop (codec-pool.ts starts and feeds these threads).
// Requests carry an `id`; every request gets one reply, in order:
// { id, ok: true, op, ... } or { id, ok: false, corrupt, message }.
//   encode        { data, hint?, digest? }  → { digest, codec, rawSize, stored, storedSha256 }
//   decode        { data, digest, size?, keep? } → { raw, stored?, storedSha256? }  (verified; `keep`: the object back too, and its sha256)
//   stream-open   { stream, chunking, start?, cuts?, hash?: { key, at, replay? } }
//   stream-feed   { stream, data }          → { chunks: [{ data, digest }] }
//   stream-end    { stream }                → { chunks, digest, size }
//   stream-abort  { stream }
//   hash-digest   { key }                   → { digest, size } | { missing: true }
//   hash-drop     { key }
//   hash-update   { key, at, data }         (bytes at offset `at` of the content: lost unless it has seen exactly `at`)
// A stream is one upload being cut into chunks: its bytes arrive in order,
// and the stream's whole-content sha256 and each chunk's sha256 are computed
// here. A running hash is the sha256 of a resumable upload, kept across its
// requests (always in this same worker: see RunningHash in codec-pool.ts). A
// stream that continues one may begin with `replay` bytes it has already
// hashed (the session's last chunk, cut again together with the new bytes).
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { Chunker, type ChunkerOptions } from './chunker.ts';
import { ChunkCorruptError, decodeChunk, encodeChunk, sha256, type ChunkHint } from './codec.ts';
import { collectYoungGarbage } from './young-gc.ts';

export type CodecRequest = { id: number } & (
  | { op: 'encode'; data: Uint8Array; hint?: ChunkHint; digest?: string }
  | { op: 'decode'; data: Uint8Array; digest: string; size?: number; keep?: boolean }
  | { op: 'stream-open'; stream: number; chunking: ChunkerOptions; start?: number; cuts?: number[]; hash?: { key: number; at: number; replay?: number } }
  | { op: 'stream-feed'; stream: number; data: Uint8Array }
  | { op: 'stream-end'; stream: number }
  | { op: 'stream-abort'; stream: number }
  | { op: 'hash-digest'; key: number }
  | { op: 'hash-drop'; key: number }
  | { op: 'hash-update'; key: number; at: number; data: Uint8Array }
);

export type CodecReply = { id: number; ok: true; op: string; [field: string]: unknown } | { id: number; ok: false; corrupt: boolean; message: string };

interface RunningHash {
  hash: Hash;
  size: number;
}

interface Stream extends RunningHash {
  chunker: Chunker;
  /** a running hash, fed too */
  running: RunningHash | undefined;
  /** bytes still to come that it has already hashed */
  replay: number;
}

const port = parentPort!;
const streams = new Map<number, Stream>();
const hashes = new Map<number, RunningHash>();

function openStream(req: Extract<CodecRequest, { op: 'stream-open' }>): void {
  let running: RunningHash | undefined;
  if (req.hash) {
    const { key, at } = req.hash;
    running = hashes.get(key);
    // A running hash is usable only when it has seen exactly the bytes stored so far.
    if (!running || running.size !== at) {
      hashes.delete(key);
      running = at === 0 ? { hash: createHash('sha256'), size: 0 } : undefined;
      if (running) hashes.set(key, running);
    }
  }
  const chunker = new Chunker(req.chunking, req.start ?? 0);
  if (req.cuts) chunker.setForcedCuts(req.cuts);
  streams.set(req.stream, { chunker, hash: createHash('sha256'), size: 0, running, replay: req.hash?.replay ?? 0 });
}

function streamOf(id: number): Stream {
  const stream = streams.get(id);
  if (!stream) throw new Error(`no open stream ${id}`);
  return stream;
}

/** Chunks with their digests. */
function hashed(chunks: Buffer[]): Array<{ data: Buffer; digest: string }> {
  return chunks.map((data) => ({ data, digest: sha256(data) }));
}

function feed(req: Extract<CodecRequest, { op: 'stream-feed' }>): Array<{ data: Buffer; digest: string }> {
  const stream = streamOf(req.stream);
  stream.hash.update(req.data);
  stream.size += req.data.length;
  if (stream.running) {
    const skip = Math.min(stream.replay, req.data.length);
    stream.replay -= skip;
    const fresh = skip === 0 ? req.data : req.data.subarray(skip);
    stream.running.hash.update(fresh);
    stream.running.size += fresh.length;
  }
  return hashed(stream.chunker.push(req.data));
}

function reply(id: number, op: string, body: Record<string, unknown>, transfer: ArrayBuffer[] = []): void {
  port.postMessage({ id, ok: true, op, ...body } satisfies CodecReply, transfer);
}

/** The buffer behind `bytes` when it holds little else (transfer it), else a copy. */
function transferable(bytes: Uint8Array): Uint8Array {
  return bytes.buffer.byteLength <= bytes.byteLength + 1 ? bytes : bytes.slice();
}

const buffers = (list: Array<{ data: Uint8Array }>) => list.map((c) => c.data.buffer as ArrayBuffer);

port.on('message', (req: CodecRequest | undefined) => {
  try {
    handle(req!);
  } finally {
    req = undefined;
    collectYoungGarbage(); // the request's buffers are garbage now
  }
});

function handle(req: CodecRequest): void {
  try {
    switch (req.op) {
      case 'encode': {
        const out = encodeChunk(req.data, req.hint, req.digest);
        return reply(req.id, req.op, { ...out }, [out.stored.buffer as ArrayBuffer]);
      }
      case 'decode': {
        // The raw codec decodes to a view of the request's own buffer: send it back.
        const raw = transferable(decodeChunk(req.data, req.digest, req.size));
        if (!req.keep) return reply(req.id, req.op, { raw }, [raw.buffer as ArrayBuffer]);
        // the object's own sha256 too: storing it then signs its payload with no hashing on the event loop
        const storedSha256 = createHash('sha256').update(req.data).digest('hex');
        const both = new Set([raw.buffer as ArrayBuffer, req.data.buffer as ArrayBuffer]);
        return reply(req.id, req.op, { raw, stored: req.data, storedSha256 }, [...both]);
      }
      case 'stream-open':
        openStream(req);
        return reply(req.id, req.op, {});
      case 'stream-feed': {
        const chunks = feed(req);
        return reply(req.id, req.op, { chunks }, buffers(chunks));
      }
      case 'stream-end': {
        const stream = streamOf(req.stream);
        streams.delete(req.stream);
        const chunks = hashed(stream.chunker.finish());
        return reply(req.id, req.op, { chunks, digest: `sha256:${stream.hash.digest('hex')}`, size: stream.size }, buffers(chunks));
      }
      case 'stream-abort':
        streams.delete(req.stream);
        return reply(req.id, req.op, {});
      case 'hash-digest': {
        const running = hashes.get(req.key);
        if (!running) return reply(req.id, req.op, { missing: true });
        // copy(): it may still grow (a later append) after this digest
        return reply(req.id, req.op, { digest: `sha256:${running.hash.copy().digest('hex')}`, size: running.size });
      }
      case 'hash-drop':
        hashes.delete(req.key);
        return reply(req.id, req.op, {});
      case 'hash-update': {
        let running = hashes.get(req.key);
        if (!running && req.at === 0) hashes.set(req.key, (running = { hash: createHash('sha256'), size: 0 }));
        if (running && running.size === req.at) {
          running.hash.update(req.data);
          running.size += req.data.byteLength;
        } else {
          hashes.delete(req.key); // it missed bytes: lost, and its digest says so
        }
        return reply(req.id, req.op, {});
      }
      default:
        throw new Error(`unknown op ${(req as { op: unknown }).op}`);
    }
  } catch (err) {
    port.postMessage({ id: req.id, ok: false, corrupt: err instanceof ChunkCorruptError, message: (err as Error)?.message ?? String(err) } satisfies CodecReply);
  }
}
