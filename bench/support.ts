// Helpers shared by the bench scripts: command-line options, sizes, bytes on disk.
import fs from 'node:fs';
import path from 'node:path';

const MiB = 1024 * 1024;

/** "512M", "1G", "64MiB", "300K", "4096": bytes (K/M/G are binary). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*$/i.exec(text);
  if (!m) throw new Error(`not a size: ${JSON.stringify(text)}`);
  const unit = (m[2] ?? 'B')[0]!.toUpperCase();
  const factor = unit === 'K' ? 1024 : unit === 'M' ? MiB : unit === 'G' ? 1024 * MiB : 1;
  const bytes = Math.round(Number(m[1]) * factor);
  if (!(bytes > 0)) throw new Error(`size must be positive: ${text}`);
  return bytes;
}

/** The value after `--name` on this process's command line, or `dflt`. */
export function option(name: string, dflt: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

/** Bytes of all files under `dir` (0 when it does not exist). */
export function bytesUnder(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return total;
}
