// The real OCI clients the /v2 tests drive: Debian's skopeo and podman. In CI
// they must be installed (.ci/run apt-installs them): a missing client is a
// failure there, and a skip with a note only on a developer's machine.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

export function hasClient(name: 'skopeo' | 'podman'): boolean {
  const found = existsSync(`/usr/bin/${name}`);
  if (!found && process.env.CI) throw new Error(`CI: ${name} is not installed; .ci/run must apt-get install skopeo podman`);
  return found;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a client to the end (no shell), with its output. */
export function run(command: string, args: readonly string[], timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0, stdout, stderr });
    });
  });
}

/** Runs a client and throws with its output unless it succeeds. */
export async function ok(command: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await run(command, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `host:port` of a server URL: the registry part of an image reference. */
export function registryHost(url: string): string {
  return new URL(url).host;
}
