// The thinnest possible server between a client and S3, for
// bench/push-pull.ts --hop-baseline: what one extra hop through a Node HTTP
// server costs on this machine, whatever the server does. No hashing, no
// chunking, no compression:
//
//   PUT|POST /objects/<name>   the body streamed into one S3 object (lib-storage Upload,
//                              the bench's part size and parts in flight); 201 {"size": n}
//   GET      /objects/<name>   the object streamed back (GetObject body piped to the response)
//
// Run by push-pull.ts as a child (`node --import tsx bench/hop-server.ts`),
// configured by environment: CAIRN_S3_ENDPOINT, CAIRN_S3_REGION,
// CAIRN_S3_FORCE_PATH_STYLE and AWS keys as for Cairn; HOP_BUCKET; HOP_PREFIX
// (objects are HOP_PREFIX + <name>); HOP_PART_SIZE and HOP_QUEUE_SIZE (bytes,
// count). It listens on 127.0.0.1:<free port> and tells the parent the port
// over IPC ({type: 'listening', port}), or prints it without a parent.
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`hop-server: ${name} is not set`);
  return value;
}

const bucket = required('HOP_BUCKET');
const prefix = process.env.HOP_PREFIX ?? '';
const partSize = Number(required('HOP_PART_SIZE'));
const queueSize = Number(required('HOP_QUEUE_SIZE'));
const client = new S3Client({
  endpoint: process.env.CAIRN_S3_ENDPOINT || undefined,
  region: process.env.CAIRN_S3_REGION || process.env.AWS_REGION || 'us-east-1',
  forcePathStyle: (process.env.CAIRN_S3_FORCE_PATH_STYLE ?? (process.env.CAIRN_S3_ENDPOINT ? 'true' : 'false')) === 'true',
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const name = /^\/objects\/([\w.-]+)$/.exec(new URL(req.url ?? '/', 'http://hop').pathname)?.[1];
  if (!name) {
    res.writeHead(404).end('not found\n');
    return;
  }
  const key = `${prefix}${name}`;
  if (req.method === 'PUT' || req.method === 'POST') {
    const upload = new Upload({ client, params: { Bucket: bucket, Key: key, Body: req }, partSize, queueSize, leavePartsOnError: false });
    await upload.done();
    // The same check the bench's direct upload makes (and pays for) after its Upload.
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const declared = req.headers['content-length'];
    if (declared !== undefined && head.ContentLength !== Number(declared)) {
      throw new Error(`stored ${head.ContentLength} bytes, the request declared ${declared}`);
    }
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ size: head.ContentLength }));
  } else if (req.method === 'GET') {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(out.ContentLength) });
    await pipeline(out.Body as Readable, res);
  } else {
    res.writeHead(405, { Allow: 'GET, PUT, POST' }).end('method not allowed\n');
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: Error) => {
    process.stderr.write(`hop-server: ${req.method} ${req.url}: ${err.stack ?? err.message}\n`);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.message}\n`);
    else res.destroy(err);
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as net.AddressInfo).port;

const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
if (process.send) {
  // The parent stops us (SIGTERM) once it is done, also after a Ctrl-C that reaches us too;
  // it going away stops us as well.
  process.on('SIGINT', () => {});
  process.on('disconnect', stop);
  process.send({ type: 'listening', port });
} else {
  process.on('SIGINT', stop);
  process.stdout.write(`hop server at http://127.0.0.1:${port}/objects/<name> → s3://${bucket}/${prefix}<name>\n`);
}
