// Worker thread body: holds ONNX Runtime sessions and runs them, so that
// loading a model and running it never block the event loop (the Node
// binding's loadModel and run are synchronous: they hold the calling thread
// for the whole call). Plain JavaScript, like the codec workers: no
// TypeScript loader in workers. Each request carries an `id` and gets one
// reply, { id, ok: true, ... } or { id, ok: false, message }:
//   load    { key, path, options }   → { inputs, outputs }  ([{ name, type, shape }])
//   run     { key, feeds, fetches? } → { outputs: { name: { type, dims, data } } }
//   release { key }
// Tensors cross as { type, dims, data } with their buffers transferred.
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';

// The runtime's own log goes to stderr in its own format; errors reach the
// server as exceptions and are logged there, as JSON.
ort.env.logLevel = 'fatal';

/** key → InferenceSession */
const sessions = new Map();

function describeValues(metadata) {
  return metadata.map((m) => {
    if (!m.isTensor) throw Object.assign(new Error(`'${m.name}' is not a tensor (sequence and map values are not supported)`), { unsupported: true });
    return { name: m.name, type: m.type, shape: m.shape };
  });
}

async function load({ key, path, options }) {
  if (sessions.has(key)) throw new Error(`session ${key} is already loaded`);
  const session = await ort.InferenceSession.create(path, { ...options, logSeverityLevel: 4 });
  try {
    const inputs = describeValues(session.inputMetadata);
    const outputs = describeValues(session.outputMetadata);
    sessions.set(key, session);
    return { inputs, outputs };
  } catch (err) {
    await session.release();
    throw err;
  }
}

/** A transferable copy unless the array owns its whole buffer already. */
function owned(data) {
  if (Array.isArray(data)) return data;
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) return data;
  return data.slice();
}

async function run({ key, feeds, fetches }) {
  const session = sessions.get(key);
  if (!session) throw new Error(`no session ${key}`);
  const input = {};
  for (const [name, t] of Object.entries(feeds)) input[name] = new ort.Tensor(t.type, t.data, t.dims);
  const result = fetches ? await session.run(input, fetches) : await session.run(input);
  const outputs = {};
  const transfer = [];
  for (const [name, t] of Object.entries(result)) {
    const data = owned(t.data);
    outputs[name] = { type: t.type, dims: [...t.dims], data };
    if (!Array.isArray(data)) transfer.push(data.buffer);
    if (typeof t.dispose === 'function') t.dispose();
  }
  return { reply: { outputs }, transfer };
}

async function release({ key }) {
  const session = sessions.get(key);
  sessions.delete(key);
  if (session) await session.release();
  return {};
}

parentPort.on('message', async (msg) => {
  try {
    let reply;
    let transfer = [];
    if (msg.op === 'load') reply = await load(msg);
    else if (msg.op === 'run') ({ reply, transfer } = await run(msg));
    else if (msg.op === 'release') reply = await release(msg);
    else throw new Error(`unknown op ${msg.op}`);
    parentPort.postMessage({ id: msg.id, ok: true, ...reply }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err), unsupported: err?.unsupported === true });
  }
});
