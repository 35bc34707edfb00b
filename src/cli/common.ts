// What every CLI command shares: the context it runs in, its two kinds of
// failure (usage → exit 2, anything else → exit 1), argument helpers and
// text formatting.
import type { ParseArgsConfig } from 'node:util';
import type { CairnClient } from '../client.ts';
import { CairnError } from '../errors.ts';
import { checkName, checkNewVersion, checkRef, checkVersion } from '../identifiers.ts';

export interface Context {
  client: CairnClient;
  /** one JSON document on stdout, no progress */
  json: boolean;
  /** progress bars on stderr: only when it is a terminal and not --json */
  progress: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Bad arguments: usage is printed, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure found by the CLI itself (a digest mismatch, an unsafe path…): exit 1. */
export class CliError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  name: string;
  aliases?: string[];
  /** `push <name>@<version> <file|dir>…` */
  synopsis: string;
  summary: string;
  /** per-command help: options and details */
  help: string;
  options: OptionsConfig;
  run(ctx: Context, args: string[], values: OptionValues): Promise<number>;
}

export function str(values: OptionValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function strs(values: OptionValues, key: string): string[] {
  const v = values[key];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function flag(values: OptionValues, key: string): boolean {
  return values[key] === true;
}

export function positiveInt(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Runs a domain check (name, version, ref, path…), turning its error into a usage error. */
export function check<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CairnError) throw new UsageError(err.message);
    throw err;
  }
}

/** `<name>@<ref>`; with `kind: 'version'` the part after '@' must be a version string (`'new-version'`: one that may be published). */
export function parseNameRef(arg: string | undefined, kind: 'new-version' | 'version' | 'ref', what: string, defaultRef?: string): { name: string; ref: string } {
  if (arg === undefined) throw new UsageError(`missing ${what}`);
  const at = arg.indexOf('@');
  if (at < 0 && defaultRef === undefined) throw new UsageError(`expected ${what}, got ${JSON.stringify(arg)}`);
  const name = at < 0 ? arg : arg.slice(0, at);
  const ref = at < 0 ? defaultRef! : arg.slice(at + 1);
  check(() => checkName(name));
  check(() => (kind === 'new-version' ? checkNewVersion(ref) : kind === 'version' ? checkVersion(ref) : checkRef(ref)));
  return { name, ref };
}

export function printJson(ctx: Context, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function say(ctx: Context, text: string): void {
  ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${UNITS[u]}`;
}

/** `8M`, `512k`, `1.5G`, `1048576` → bytes (binary units). */
export function parseSize(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!m || !Number.isFinite(n) || n < 1) throw new UsageError(`${what} must be a size like 65536, 512K or 64M, got ${JSON.stringify(value)}`);
  return Math.floor(n);
}

export function shortDigest(digest: string): string {
  return digest.startsWith('sha256:') ? `sha256:${digest.slice(7, 19)}` : digest;
}

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
