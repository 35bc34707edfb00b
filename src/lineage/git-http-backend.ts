// Read-only git smart HTTP for the lineage repository, through git's own CGI
// program (`git http-backend`): the real git client talks to the real git
// server code. Pushes are refused before git is even started.
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CairnError } from '../errors.ts';

const SAFE_PATH = /^[A-Za-z0-9._\/-]*$/;

export interface GitHttpRequest {
  method: string;
  /** path inside the repository, e.g. `info/refs` or `git-upload-pack` */
  path: string;
  query: string;
  req: IncomingMessage;
  res: ServerResponse;
}

/** Serves one request for `<projectRoot>/<repo>`; resolves when the response is complete. */
export function serveGitHttp(projectRoot: string, repo: string, request: GitHttpRequest): Promise<void> {
  const { method, path, query, req, res } = request;
  if (path === 'git-receive-pack' || /(^|&)service=git-receive-pack(&|$)/.test(query)) {
    throw new CairnError('FORBIDDEN', 'the lineage repository is a read-only mirror: pushes are refused');
  }
  if (!SAFE_PATH.test(path) || path.split('/').includes('..')) throw new CairnError('ROUTE_NOT_FOUND', `no such git path ${path}`);
  if (method !== 'GET' && method !== 'HEAD' && !(method === 'POST' && path === 'git-upload-pack')) {
    throw new CairnError('FORBIDDEN', 'the lineage repository is read-only');
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: `/${repo}/${path}`,
    REQUEST_METHOD: method,
    QUERY_STRING: query,
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    // The data dir may belong to another user than the server process.
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'safe.directory',
    GIT_CONFIG_VALUE_0: '*',
    GIT_CONFIG_KEY_1: 'http.receivepack',
    GIT_CONFIG_VALUE_1: 'false',
  };
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
  if (req.headers['content-length']) env.CONTENT_LENGTH = String(req.headers['content-length']);

  return new Promise<void>((resolve, reject) => {
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    child.on('error', (err) => reject(new Error(`git http-backend: ${err.message}`)));
    req.pipe(child.stdin);
    child.stdin.on('error', () => {}); // git may exit before reading everything

    // CGI response: headers, a blank line, then the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (data: Buffer) => {
      if (headersDone) {
        if (!res.write(data)) {
          child.stdout.pause();
          res.once('drain', () => child.stdout.resume());
        }
        return;
      }
      head = Buffer.concat([head, data]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sep = end === crlf ? 4 : 2;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      const rest = head.subarray(end + sep);
      if (rest.length > 0) res.write(rest);
    });
    child.on('close', (code) => {
      if (!headersDone) {
        reject(new Error(`git http-backend exited with ${code} before answering: ${stderr.trim()}`));
        return;
      }
      res.end();
      resolve();
    });
    res.on('close', () => {
      if (!res.writableFinished) child.kill();
    });
  });
}
