// No source file under src/ grows past 500 lines, except those listed here
// with the reason: format interpreters, whose one walk over a file format
// reads better whole, and data. A file that shrinks below the limit leaves
// the list (so the list stays the truth).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const LIMIT = 500;

const LONGER: Record<string, string> = {
  'src/formats/pickle.ts': 'format interpreter: the pickle VM (every opcode, the safety scan of what it would import and call)',
  'src/formats/safetensors.ts': 'format interpreter: the safetensors header, every dtype and its checks',
  'src/formats/gguf.ts': 'format interpreter: the GGUF header, metadata values and tensor infos',
  'src/formats/onnx.ts': 'format interpreter: the ONNX protobuf walk (graphs, subgraphs, initializers) with its budgets',
  'src/infer/tensors.ts': 'format interpreter: JSON tensors of the two inference protocols to typed arrays and back, every element type',
  'src/web/app.js': 'the web UI as one dependency-free file served as it is (no build step)',
};

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(?:ts|mts|js|mjs)$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

test(`src/: no file over ${LIMIT} lines but the format interpreters listed (and data)`, () => {
  const lines = new Map(sourceFiles('src').map((f) => [f, fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n').length - 1]));
  const over = [...lines].filter(([f, n]) => n > LIMIT && !(f in LONGER)).map(([f, n]) => `${f}: ${n} lines`);
  assert.deepEqual(over, [], `split these, or list them with the reason in test/unit/file-sizes.test.ts:\n${over.join('\n')}`);
  const listed = Object.keys(LONGER).filter((f) => !((lines.get(f) ?? 0) > LIMIT));
  assert.deepEqual(listed, [], 'listed but no longer over the limit (or gone): take them off the list');
});
