// Starts a worker thread on one of this package's own modules, the one named
// `name` next to the module `from` (its import.meta.url). Compiled (dist/),
// that is the .js there. Run from src/ through tsx (the tests), it is the
// .ts: Node 20's workers do not inherit tsx's hooks (tsx registers them on
// the main thread only), so the new thread first runs TSX_BOOTSTRAP, which
// registers them and then loads the module. The compiled package never takes
// that path.
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** A module's source; its last two arguments: the URLs of tsx's API and of the module to run. */
const TSX_BOOTSTRAP = 'const [api, entry] = process.argv.slice(-2); const { register } = await import(api); register(); await import(entry);';

export function startWorker(from: string, name: string, options: WorkerOptions = {}): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), options);
  const args = [import.meta.resolve('tsx/esm/api'), new URL(`./${name}.ts`, from).href];
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(TSX_BOOTSTRAP)}`), { ...options, argv: args });
}
