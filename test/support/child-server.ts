// The real `cairn serve` as a child process in its own process group, so a
// test can SIGKILL it at any moment and start it again on the same data dir.
// Also: a seeded PRNG and a raw node:http client that reports bytes sent and
// can be cut, for crash and fault harnesses.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cairnBin } from './build.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');


export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface ChildServer {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  /** last bytes of the server's stdout/stderr */
  logTail(): string;
  /** SIGKILL to the whole process group; resolves once the process is gone */
  kill(): Promise<void>;
  /** SIGTERM (graceful), then SIGKILL after a grace period */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  dataDir: string;
  /** extra environment (CAIRN_S3_* …); CAIRN_DATA_DIR/PORT/AUTH are set here */
  env?: Record<string, string | undefined>;
  port?: number;
  timeoutMs?: number;
}

/** Environment for an s3-backed child from the variables `scripts/s3-server.sh` writes. */
export function s3ChildEnv(bucket: string, prefix: string, endpoint = process.env.CAIRN_S3_ENDPOINT): Record<string, string | undefined> {
  return {
    CAIRN_S3_BUCKET: bucket,
    CAIRN_S3_PREFIX: prefix,
    CAIRN_S3_ENDPOINT: endpoint,
    CAIRN_S3_REGION: process.env.CAIRN_S3_REGION ?? 'us-east-1',
    CAIRN_S3_FORCE_PATH_STYLE: 'true',
  };
}

export async function spawnServer(options: SpawnOptions): Promise<ChildServer> {
  const port = options.port ?? (await freePort());
  const env: Record<string, string | undefined> = { ...process.env };
  // fs unless the caller asks for S3
  for (const k of ['CAIRN_S3_BUCKET', 'CAIRN_S3_PREFIX']) delete env[k];
  Object.assign(env, options.env ?? {}, {
    CAIRN_DATA_DIR: options.dataDir,
    CAIRN_PORT: String(port),
    CAIRN_HOST: '127.0.0.1',
    CAIRN_AUTH: 'off',
  });
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const proc = spawn(process.execPath, ['--max-semi-space-size=2', cairnBin(), 'serve'], { cwd: ROOT, env: { MALLOC_MMAP_THRESHOLD_: '1048576', ...env } as NodeJS.ProcessEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString('utf8')).slice(-16_384);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.once('exit', () => { exited = true; resolve(); }));
  const url = `http://127.0.0.1:${port}`;
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid!, signal);
    } catch {
      // already gone
    }
  };
  const server: ChildServer = {
    url,
    port,
    dataDir: options.dataDir,
    proc,
    logTail: () => tail,
    async kill() {
      if (!exited) killGroup('SIGKILL');
      await exit;
    },
    async stop() {
      if (exited) return;
      killGroup('SIGTERM');
      const t = setTimeout(() => killGroup('SIGKILL'), 5_000);
      await exit;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) throw new Error(`cairn serve exited during start (code ${proc.exitCode}):\n${tail}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.kill();
      throw new Error(`cairn serve did not answer /healthz within ${options.timeoutMs ?? 30_000} ms:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: any;
}

/**
 * One HTTP request over node:http. The body (a buffer or an async iterable)
 * is written piece by piece; `onSent(total)` sees the running byte count. The
 * promise rejects when the connection breaks before a whole response arrived.
 * Once a response is in, the rest of the body is not sent.
 */
export function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Buffer | AsyncIterable<Uint8Array>,
  onSent?: (total: number) => void,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let responded = false;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      responded = true;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', fail);
      res.on('aborted', () => fail(new Error('response aborted')));
      res.on('end', () => {
        if (settled) return;
        const buf = Buffer.concat(parts);
        const cl = res.headers['content-length'];
        if (method !== 'HEAD' && res.statusCode !== 304 && cl !== undefined && Number(cl) !== buf.length) return fail(new Error(`response cut at ${buf.length} of ${cl} bytes`));
        let json: any;
        try {
          json = buf.length ? JSON.parse(buf.toString('utf8')) : undefined;
        } catch {
          json = undefined;
        }
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, json });
      });
    });
    req.on('error', (err) => {
      // a write error after the response arrived is the server refusing the rest of the body
      if (!responded) fail(err);
    });
    if (body === undefined) {
      req.end();
      return;
    }
    if (Buffer.isBuffer(body)) {
      onSent?.(0);
      req.end(body, () => onSent?.(body.length));
      return;
    }
    (async () => {
      let total = 0;
      for await (const piece of body) {
        if (responded || req.destroyed) break;
        const ok = req.write(piece);
        total += piece.byteLength;
        onSent?.(total);
        if (!ok) {
          await new Promise<void>((r) => {
            const done = () => {
              req.off('drain', done);
              req.off('close', done);
              r();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      if (!responded && !req.destroyed) req.end();
    })().catch((err: Error) => {
      req.destroy(err);
      fail(err);
    });
  });
}

/** A buffer as an async iterable of `piece`-byte slices. */
export async function* pieces(data: Buffer, piece = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += piece) yield data.subarray(i, Math.min(i + piece, data.length));
}
