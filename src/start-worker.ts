// Starts a worker thread on one of this package's own modules, the one named
// `name` next to the module `from` (its import.meta.url). Compiled (dist/),
// that is the .js there. Run from src/ through tsx (the tests), it is the
// .ts: Node 20's workers do not inherit tsx's hooks (tsx registers them on
// the main thread only), so the new thread registers them before it loads
// the module. The compiled package never takes that path.
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function startWorker(from: string, name: string, options: WorkerOptions = {}): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), options);
  const entry = new URL(`./${name}.ts`, from).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `const { register } = await import(${JSON.stringify(tsx)});\nregister();\nawait import(${JSON.stringify(entry)});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), options);
}
