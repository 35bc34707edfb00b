// Worker thread body: encodes (hash + compress) and decodes (decompress +
// verify) chunks so that neither blocks the event loop.
import { parentPort } from 'node:worker_threads';
import { ChunkCorruptError, decodeChunk, encodeChunk } from './codec.ts';

export type CodecRequest =
  | { id: number; op: 'encode'; data: Uint8Array }
  | { id: number; op: 'decode'; data: Uint8Array; digest: string };

export type CodecReply =
  | { id: number; ok: true; op: 'encode'; digest: string; codec: string; rawSize: number; stored: Uint8Array }
  | { id: number; ok: true; op: 'decode'; raw: Uint8Array }
  | { id: number; ok: false; corrupt: boolean; message: string };

parentPort!.on('message', (req: CodecRequest) => {
  try {
    if (req.op === 'encode') {
      const out = encodeChunk(req.data);
      const reply: CodecReply = { id: req.id, ok: true, op: 'encode', ...out };
      parentPort!.postMessage(reply, [out.stored.buffer as ArrayBuffer]);
    } else {
      const raw = decodeChunk(req.data, req.digest);
      // Copy out when the result is a view into the input (raw codec) so the
      // transfer moves exactly the chunk's bytes.
      const owned = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : raw.slice();
      const reply: CodecReply = { id: req.id, ok: true, op: 'decode', raw: owned };
      parentPort!.postMessage(reply, [owned.buffer as ArrayBuffer]);
    }
  } catch (err) {
    const reply: CodecReply = { id: req.id, ok: false, corrupt: err instanceof ChunkCorruptError, message: (err as Error).message };
    parentPort!.postMessage(reply);
  }
});
