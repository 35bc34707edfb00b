// ONNX Runtime sessions by key, and the three things done with them: load,
// run, release. Used in a worker thread (session-worker.js) and, with
// `--workers 0`, on the event loop itself. Plain JavaScript, like the codec
// workers: no TypeScript loader in workers.
import ort from 'onnxruntime-node';

// The runtime's own log goes to stderr in its own format; errors reach the
// server as exceptions and are logged there, as JSON.
ort.env.logLevel = 'fatal';

function describeValues(metadata) {
  return metadata.map((m) => {
    if (!m.isTensor) throw Object.assign(new Error(`'${m.name}' is not a tensor (sequence and map values are not supported)`), { unsupported: true });
    return { name: m.name, type: m.type, shape: m.shape };
  });
}

/** A typed array that owns its whole buffer (so it can be transferred); strings as they are. */
function owned(data) {
  if (Array.isArray(data)) return data;
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) return data;
  return data.slice();
}

export function createSessionHost() {
  /** key → InferenceSession */
  const sessions = new Map();
  return {
    /** { key, path, options } → { inputs, outputs } */
    async load({ key, path, options }) {
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
    },
    /** { key, feeds, fetches? } → { outputs: { name: { type, dims, data } } } and the buffers to transfer */
    async run({ key, feeds, fetches }) {
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
      }
      return { reply: { outputs }, transfer };
    },
    async release({ key }) {
      const session = sessions.get(key);
      sessions.delete(key);
      if (session) await session.release();
      return {};
    },
  };
}
