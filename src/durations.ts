// Durations as people write them (CAIRN_GC_GRACE=1h, `cairn gc --grace 30m`).

const UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** `90`, `90s`, `15m`, `1h`, `7d`, `1.5h` → seconds; undefined when not a duration. */
export function parseDuration(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/i.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  return Number.isFinite(n) ? n : undefined;
}
