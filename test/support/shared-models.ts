// The real model files the LOCAL CHECK tests run on. They are not part of
// the repository: they sit in ../shared/models next to it (the
// CAIRN_SHARED_MODELS variable names another folder). Fresh clones and CI
// have none; a test then skips and says why, and how to run it.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the real models are looked for: CAIRN_SHARED_MODELS, or ../shared/models relative to the repository root. */
export const SHARED_MODELS_DIR = path.resolve(ROOT, process.env.CAIRN_SHARED_MODELS || '../shared/models');

export interface SharedModels {
  dir: string;
  /** the file names found (all of those asked for by name, or every one matching the pattern) */
  files: string[];
  /** the path of one of them */
  path(name: string): string;
  /** false when the files are there; otherwise why the test skips (for node:test's `skip`) */
  skip: string | false;
}

/**
 * The real model files a LOCAL CHECK needs: every one of `wanted` (names), or
 * all those matching it (a pattern; at least one). When they are not there,
 * `skip` says so and the reason is also written to stderr, so a skipped local
 * check is visible in any output.
 */
export function sharedModels(wanted: readonly string[] | RegExp, what = 'test'): SharedModels {
  const dir = SHARED_MODELS_DIR;
  const present = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const files = wanted instanceof RegExp ? present.filter((f) => wanted.test(f)) : wanted.filter((f) => present.includes(f));
  const complete = wanted instanceof RegExp ? files.length > 0 : files.length === wanted.length;
  const needs = wanted instanceof RegExp ? `files matching ${wanted}` : wanted.join(', ');
  const skip = complete ? false : `LOCAL CHECK skipped: ${dir} does not hold ${needs} (set CAIRN_SHARED_MODELS to the folder of real models to run it)`;
  if (skip) process.stderr.write(`# ${what}: ${skip}\n`);
  return { dir, files, path: (name) => path.join(dir, name), skip };
}
