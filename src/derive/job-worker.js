// Entry point of a derive worker thread (job-host.ts): loads the body,
// job-thread. Plain JavaScript because a worker thread has no TypeScript
// loader of its own: compiled (dist/) the body is the .js next to this file;
// run from src/ (tests, `cairn serve` without a build), tsx is registered in
// this thread first, as bin/cairn.js does for the main thread.
import fs from 'node:fs';

const compiled = new URL('./job-thread.js', import.meta.url);
if (fs.existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('./job-thread.ts', import.meta.url).href);
}
