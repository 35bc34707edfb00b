// Compiles src/ to dist/ (tsc, tsconfig.build.json), worker threads
// included, and copies the files tsc does not emit (the web UI, the ONNX
// schema). The package runs from dist/ only (bin/cairn.js); `npm ci` builds it
// (prepare), and so does `npm start` (prestart).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

fs.rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

let copied = 0;
for (const entry of fs.readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
  const from = path.join(entry.parentPath, entry.name);
  const to = path.join(dist, path.relative(src, from));
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
  copied++;
}
// Written last: the tests compare its time with the sources' (test/support/build.ts).
fs.writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);
console.log(`build: dist/ compiled, ${copied} files copied`);
