// A real server with access control on (same wiring as `cairn serve`, fs
// storage), its first-start admin token, and the small helpers the access
// tests share: tokens, bearer headers, a one-file multipart publish.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../src/config.ts';
import type { Logger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/main.ts';
import { bodyOf, call, type JsonResponse } from './http-client.ts';

export interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every line. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

export interface AuthServer extends RunningServer {
  dataDir: string;
  log: ReturnType<typeof recordingLogger>;
  adminToken: string;
  stop(): Promise<void>;
}

export async function startAuthServer(overrides: Partial<Config> = {}): Promise<AuthServer> {
  const dataDir = overrides.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-auth-')));
  const log = recordingLogger();
  const running = await startServer({ dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: true, unsafePolicy: 'warn', ...overrides }, log);
  const adminToken = overrides.auth === false ? '' : (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  return {
    ...running,
    dataDir,
    log,
    adminToken,
    async stop() {
      await running.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export async function publish(base: string, token: string | undefined, name: string, version: string, data: Uint8Array = randomBytes(256)): Promise<JsonResponse> {
  const form = new FormData();
  form.append('version', version);
  form.append('file', new Blob([bodyOf(data)]), 'weights.bin');
  const res = await fetch(`${base}/v1/models/${name}/versions`, { method: 'POST', body: form, headers: token ? bearer(token) : {} });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export async function createToken(server: AuthServer, body: Record<string, unknown>): Promise<string> {
  const res = await call(server.url, 'POST', '/v1/tokens', body, bearer(server.adminToken));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.match(res.body.token, /^cairn_[0-9A-Za-z]{32}$/);
  return res.body.token as string;
}
