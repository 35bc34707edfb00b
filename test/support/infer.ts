// Harness for the inference server's tests: the real `cairn infer` as a
// child process (bin/cairn.js, as a user runs it), publishing model files to
// a registry, the small ONNX models of infer_models.py, and Python
// onnxruntime as the reference for outputs.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pythonEnv, runPython, type PythonEnv } from './python.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'cairn.js');
const MODELS_SCRIPT = path.join(ROOT, 'test', 'support', 'infer_models.py');

export const PYTHON_PACKAGES = ['onnx', 'onnxruntime', 'numpy'];

export interface InferProcess {
  url: string;
  proc: ChildProcess;
  /** every JSON log line so far */
  lines(): Array<Record<string, unknown>>;
  logText(): string;
  /** SIGTERM, then SIGKILL after 10 s */
  stop(): Promise<void>;
}

/** Starts `cairn infer <args…> --port 0`; resolves once it listens. */
export async function startInfer(args: string[], env: Record<string, string | undefined> = {}): Promise<InferProcess> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const proc = spawn(process.execPath, [BIN, 'infer', '--port', '0', ...args], { cwd: ROOT, env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const parsed: Array<Record<string, unknown>> = [];
  let pending = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      const s = d.toString('utf8');
      text = (text + s).slice(-200_000);
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        try {
          const doc = JSON.parse(line) as Record<string, unknown>;
          parsed.push(doc);
          if (doc.msg === 'inference server listening') resolve(doc.url as string);
        } catch {
          // not a log line
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`cairn infer exited (${code}) before listening:\n${text.slice(-4000)}`)));
    setTimeout(() => reject(new Error(`cairn infer did not listen within 60 s:\n${text.slice(-4000)}`)), 60_000).unref();
  });
  return {
    url,
    proc,
    lines: () => parsed,
    logText: () => text,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export { waitFor } from './wait-for.ts';

/** Publishes files (path in the version → bytes) as `name@version`, with aliases. */
export async function publish(registry: string, name: string, version: string, files: Record<string, Uint8Array | string>, aliases: string[] = []): Promise<{ number: number; digest: string }> {
  const form = new FormData();
  form.set('version', version);
  for (const a of aliases) form.append('alias', a);
  for (const [p, bytes] of Object.entries(files)) form.append('file', new Blob([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)]), p);
  const res = await fetch(`${registry}/v1/models/${encodeURIComponent(name)}/versions`, { method: 'POST', body: form });
  const doc = (await res.json()) as { number: number; digest: string };
  if (res.status !== 201) throw new Error(`publish ${name}@${version}: ${res.status} ${JSON.stringify(doc)}`);
  return doc;
}

export async function setAlias(registry: string, name: string, alias: string, version: string): Promise<void> {
  const res = await fetch(`${registry}/v1/models/${encodeURIComponent(name)}/aliases/${alias}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
  if (!res.ok) throw new Error(`alias ${name}@${alias} -> ${version}: ${res.status} ${await res.text()}`);
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

// ---- the fixture models and the Python reference ------------------------------------

export interface Fixtures {
  dir: string;
  env: PythonEnv;
  file(name: string): Promise<Uint8Array>;
}

/** Builds the models of infer_models.py, or says why it cannot (to skip). */
export async function buildFixtures(): Promise<Fixtures | { skip: string }> {
  const env = await pythonEnv(PYTHON_PACKAGES);
  if ('skip' in env) return env;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-infer-models-'));
  await runPython(env, MODELS_SCRIPT, ['build', dir]);
  return { dir, env, file: async (name) => new Uint8Array(await fs.readFile(path.join(dir, name))) };
}

export type RefTensor = { dtype: string; shape: number[]; data: ArrayLike<number | bigint | boolean> | string[] };

const ARRAYS: Record<string, (b: ArrayBuffer) => ArrayLike<number | bigint>> = {
  float32: (b) => new Float32Array(b),
  float64: (b) => new Float64Array(b),
  float16: (b) => new Uint16Array(b),
  int8: (b) => new Int8Array(b),
  uint8: (b) => new Uint8Array(b),
  int16: (b) => new Int16Array(b),
  uint16: (b) => new Uint16Array(b),
  int32: (b) => new Int32Array(b),
  uint32: (b) => new Uint32Array(b),
  int64: (b) => new BigInt64Array(b),
  uint64: (b) => new BigUint64Array(b),
  bool: (b) => Array.from(new Uint8Array(b), (x) => x !== 0) as unknown as ArrayLike<number>,
};

/** Numbers as Python takes them in: the raw bytes of a typed array. */
export function refInput(dtype: string, shape: number[], data: ArrayLike<number> | ArrayLike<bigint> | string[]): unknown {
  if (dtype === 'str') return { dtype, shape, data };
  const typed = data as unknown as ArrayBufferView;
  return { dtype, shape, b64: Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString('base64') };
}

/** Runs each case through Python onnxruntime (in another process): every output. */
export async function reference(env: PythonEnv, cases: Array<{ model: string; feeds: Record<string, unknown> }>): Promise<Array<Record<string, RefTensor>>> {
  const out = JSON.parse(await runPython(env, MODELS_SCRIPT, ['run'], JSON.stringify(cases))) as Array<Record<string, { dtype: string; shape: number[]; b64?: string; data?: string[] }>>;
  return out.map((outputs) =>
    Object.fromEntries(
      Object.entries(outputs).map(([name, t]) => {
        if (t.dtype === 'str') return [name, { dtype: t.dtype, shape: t.shape, data: t.data! }];
        const bytes = Buffer.from(t.b64!, 'base64');
        const copy = new Uint8Array(bytes.byteLength);
        copy.set(bytes);
        return [name, { dtype: t.dtype, shape: t.shape, data: ARRAYS[t.dtype]!(copy.buffer) }];
      }),
    ),
  );
}

/** Flattens a nested JSON list (TF Serving's outputs). */
export function flatten(value: unknown): unknown[] {
  return Array.isArray(value) ? value.flatMap(flatten) : [value];
}

/** Largest |a - b| over elements; numbers as JSON gives them ("NaN" strings allowed), NaN = NaN. */
export function maxAbsDiff(got: unknown[], want: ArrayLike<number | bigint | boolean> | string[]): number {
  if (got.length !== want.length) throw new Error(`${got.length} elements, expected ${want.length}`);
  let max = 0;
  for (let i = 0; i < got.length; i++) {
    const g = typeof got[i] === 'string' ? Number(got[i]) : Number(got[i]);
    const w = Number(want[i]);
    if (Number.isNaN(g) && Number.isNaN(w)) continue;
    if (g === w) continue;
    const d = Math.abs(g - w);
    max = Math.max(max, Number.isNaN(d) ? Infinity : d);
  }
  return max;
}

export function shapeOf(value: unknown): number[] {
  const dims: number[] = [];
  let v = value;
  while (Array.isArray(v)) {
    dims.push(v.length);
    v = v[0];
  }
  return dims;
}
