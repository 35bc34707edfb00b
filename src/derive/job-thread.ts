// The body of a derive worker thread (started by job-host.ts): transforms
// each file, streaming its output to the main thread, then measures it
// against its parent once the main thread has stored it — ONNX with ONNX
// Runtime on both models (written to the scratch directory, since the
// runtime loads a model from a file), safetensors by
// reading both files side by side. Every byte read comes from the main
// thread, out of the chunk store: what is measured is what was stored.
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { FileSource } from '../formats/types.ts';
import { deriveFile } from './index.ts';
import { errorInfo, fromErrorInfo, OUTPUT_WINDOW, type DeriveSpec, type FromThread, type SourceRef, type ToThread } from './job-host.ts';
import { loadSamples, measureOnnx, type Feed } from './onnx-measure.ts';
import { compareSafetensors } from './safetensors-measure.ts';
import { WINDOW } from './stream.ts';

const port = parentPort!;
const spec = workerData as DeriveSpec;

/** Output is sent in batches of about this many bytes (transforms yield many small pieces: protobuf tags, headers). */
const BATCH = 1 << 20;

const post = (m: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let nextRead = 1;
const reads = new Map<number, { resolve: (data: Uint8Array) => void; reject: (err: Error) => void }>();
/** per file: batches sent and not yet taken, and who waits for room */
const inflight = new Map<number, { count: number; wake?: () => void }>();
const stored = new Map<number, () => void>();

port.on('message', (m: ToThread) => {
  if (m.op === 'read') {
    const r = reads.get(m.req);
    reads.delete(m.req);
    if (m.error) r?.reject(fromErrorInfo(m.error));
    else r?.resolve(m.data ?? new Uint8Array(0));
  } else if (m.op === 'ack') {
    const f = inflight.get(m.file);
    if (f) {
      f.count--;
      const w = f.wake;
      f.wake = undefined;
      w?.();
    }
  } else if (m.op === 'stored') {
    stored.get(m.file)?.();
  }
});

/** Transforms read sequentially, window after window: while one is worked on, the next few are fetched. */
const READ_AHEAD = 2;

function remote(source: SourceRef, filePath: string, size: number): FileSource {
  const fetch = (offset: number, length: number): Promise<Uint8Array> => {
    const req = nextRead++;
    return new Promise<Uint8Array>((resolve, reject) => {
      reads.set(req, { resolve, reject });
      post({ op: 'read', req, source, offset, length });
    });
  };
  /** reads fetched ahead: `offset/length` → bytes */
  let ahead = new Map<string, Promise<Uint8Array>>();
  return {
    path: filePath,
    size,
    read(offset, length) {
      const wanted = ahead.get(`${offset}/${length}`) ?? fetch(offset, length);
      const next = new Map<string, Promise<Uint8Array>>();
      // small reads (headers, protobuf fields) are not sequential windows: nothing is fetched ahead for them
      for (let i = 1; i <= READ_AHEAD && length >= 64 * 1024; i++) {
        const at = offset + i * length;
        if (at >= size) break;
        const key = `${at}/${length}`;
        const p = ahead.get(key) ?? fetch(at, length);
        p.catch(() => {}); // an error is reported by the read that wants it
        next.set(key, p);
      }
      ahead = next;
      return wanted;
    },
  };
}

/** Sends `stream` as output of `file`, never more than OUTPUT_WINDOW batches ahead of the store. */
async function send(file: number, stream: AsyncIterable<Uint8Array>): Promise<void> {
  const state = { count: 0 } as { count: number; wake?: () => void };
  inflight.set(file, state);
  let parts: Uint8Array[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (bytes === 0) return;
    const data = new Uint8Array(bytes);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    parts = [];
    bytes = 0;
    while (state.count >= OUTPUT_WINDOW) await new Promise<void>((resolve) => (state.wake = resolve));
    state.count++;
    post({ op: 'bytes', file, data }, [data.buffer]);
  };
  for await (const piece of stream) {
    // copied now: a transform may reuse the buffer of a piece it has handed out
    parts.push(piece.slice());
    bytes += piece.byteLength;
    if (bytes >= BATCH) await flush();
  }
  await flush();
}

/** Writes a file read through `source` to disk, window by window (ONNX Runtime loads models from files). */
async function writeOut(source: FileSource, file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'wx', 0o600);
  try {
    for (let at = 0; at < source.size; ) {
      const n = Math.min(WINDOW, source.size - at);
      const bytes = await source.read(at, n);
      if (bytes.byteLength !== n) throw new Error(`${source.path}: short read at ${at}`);
      await handle.write(bytes);
      at += n;
    }
  } finally {
    await handle.close();
  }
}

async function run(): Promise<void> {
  let feeds: Feed[] | undefined;
  for (const [i, file] of spec.files.entries()) {
    post({ op: 'phase', phase: 'transform', file: i });
    const parent = remote({ kind: 'parent', file: i }, file.path, file.size);
    const d = await deriveFile(parent, file.format, spec.params);
    const isStored = new Promise<void>((resolve) => stored.set(i, resolve));
    post({ op: 'begin', file: i, size: d.size });
    await send(i, d.stream());
    post({ op: 'end', file: i, report: d.report() });
    await isStored;

    post({ op: 'phase', phase: 'measure', file: i });
    const derived = remote({ kind: 'derived', file: i }, file.path, d.size);
    if (file.format === 'safetensors') {
      post({ op: 'measured', file: i, measured: await compareSafetensors(parent, derived) });
      continue;
    }
    const samples = 'file' in spec.samples ? (feeds ??= await loadSamples(remote({ kind: 'samples' }, spec.samples.file.path, spec.samples.file.size))) : spec.samples.generate;
    const parentFile = path.join(spec.scratchDir, `${i}-parent.onnx`);
    const derivedFile = path.join(spec.scratchDir, `${i}-derived.onnx`);
    try {
      await writeOut(parent, parentFile);
      await writeOut(derived, derivedFile);
      post({ op: 'measured', file: i, measured: await measureOnnx({ parent: parentFile, derived: derivedFile, samples, repeat: spec.repeat }) });
    } finally {
      fs.rmSync(parentFile, { force: true });
      fs.rmSync(derivedFile, { force: true });
    }
  }
}

run().then(
  () => post({ op: 'done' }),
  (err: unknown) => post({ op: 'failed', error: errorInfo(err) }),
);
