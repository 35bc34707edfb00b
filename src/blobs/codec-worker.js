// Worker thread body: encodes (hash + compress) and decodes (decompress +
// verify) chunks so that neither blocks the event loop. Plain JavaScript: no
// TypeScript loader in the workers (see codec-core.js). Messages:
//   { id, op: 'encode', data, hint? }        → { id, ok, op, digest, codec, rawSize, stored }
//   { id, op: 'decode', data, digest }  → { id, ok, op, raw }
//   failure                             → { id, ok: false, corrupt, message }
import { parentPort } from 'node:worker_threads';
import { ChunkCorruptError, decodeChunk, encodeChunk } from './codec-core.js';

parentPort.on('message', (req) => {
  try {
    if (req.op === 'encode') {
      const out = encodeChunk(req.data, req.hint);
      parentPort.postMessage({ id: req.id, ok: true, op: 'encode', ...out }, [out.stored.buffer]);
    } else {
      const raw = decodeChunk(req.data, req.digest);
      // Copy out when the result is a view into the input (raw codec) so the
      // transfer moves exactly the chunk's bytes.
      const owned = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : raw.slice();
      parentPort.postMessage({ id: req.id, ok: true, op: 'decode', raw: owned }, [owned.buffer]);
    }
  } catch (err) {
    parentPort.postMessage({ id: req.id, ok: false, corrupt: err instanceof ChunkCorruptError, message: err?.message ?? String(err) });
  }
});
