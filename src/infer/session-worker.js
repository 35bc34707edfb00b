// Worker thread body: a session host (session-host.js) answering the main
// thread's messages, so that loading a model and running it never block the
// event loop (the Node binding's loadModel and run are synchronous: they hold
// the calling thread for the whole call). Each request carries an `id` and
// gets one reply, { id, ok: true, ... } or { id, ok: false, message, unsupported }:
//   load    { key, path, options }   → { inputs, outputs }  ([{ name, type, shape }])
//   run     { key, feeds, fetches? } → { outputs: { name: { type, dims, data } } }
//   release { key }
// Tensors cross as { type, dims, data } with their buffers transferred.
import { parentPort } from 'node:worker_threads';
import { createSessionHost } from './session-host.js';

const host = createSessionHost();

parentPort.on('message', async (msg) => {
  try {
    let reply;
    let transfer = [];
    if (msg.op === 'load') reply = await host.load(msg);
    else if (msg.op === 'run') ({ reply, transfer } = await host.run(msg));
    else if (msg.op === 'release') reply = await host.release(msg);
    else throw new Error(`unknown op ${msg.op}`);
    parentPort.postMessage({ id: msg.id, ok: true, ...reply }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err), unsupported: err?.unsupported === true });
  }
});
