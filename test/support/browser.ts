// A real headless browser for UI tests: Debian's chromium driven by
// playwright-core (no browser download: `npx playwright install` is never run).
// Outside CI a machine without chromium skips the UI suite; in CI it must be
// there (.ci/run installs it with apt-get).
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CAIRN_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Where UI tests write screenshots (git-ignored). */
export const SCREENSHOT_DIR = path.resolve(import.meta.dirname, '../../test-output/screenshots');

/** Why the UI suite cannot run here, or undefined when it can. Throws in CI. */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const why = `chromium not found at ${CHROMIUM_PATH} (apt-get install -y --no-install-recommends chromium, or set CAIRN_TEST_CHROMIUM)`;
  if (process.env.CI) throw new Error(`CI: ${why}; .ci/run must install it`);
  return why;
}

/** Flags for a machine without network: no first-run, sync, updates or QUIC probes. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, timeout: 60_000 });
}

export async function screenshotPath(name: string): Promise<string> {
  await fs.mkdir(SCREENSHOT_DIR, { recursive: true });
  return path.join(SCREENSHOT_DIR, `${name}.png`);
}
