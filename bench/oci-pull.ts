// Pull throughput of one version through the OCI front door, side by side:
//
//   node --import tsx bench/oci-pull.ts [--size 1G] [--storage s3|fs]
//
//   skopeo copy   docker://…/bench/oci:1.0.0 → dir:<tmp> (skopeo's own client, sha256 checked by it)
//   cairn pull    the CLI (`bin/cairn.js pull bench/oci@1.0.0 -o <tmp>`), digests checked
//   direct S3 GET GetObject of an object of the same bytes, written to a file the same way
//
// The server is the real `cairn serve` as a child process (test/support/child-server.ts)
// on a temporary data dir; with --storage s3 (the default) on the S3 server of
// `source /tmp/cairn-test-s3/env`. The file is an incompressible keystream (no
// codec helps anyone), written once to the version and once to the bucket. Each
// client writes to local disk, so the three compare like for like. The order of
// the three alternates over --rounds (default 2) and the best of each is kept.
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomStream } from '../test/support/bytes.ts';
import { s3ChildEnv, spawnServer } from '../test/support/child-server.ts';
import { cairnBin } from '../test/support/build.ts';
import { streamedMultipart } from '../test/support/http-client.ts';
import { option, parseSize } from './support.ts';

const size = parseSize(option('size', '1G'));
const storage = option('storage', 's3');
const rounds = Number(option('rounds', '2'));
const bucket = process.env.CAIRN_BENCH_BUCKET ?? 'cairn-bench';
const runId = randomBytes(4).toString('hex');
const seed = `oci-bench-${runId}`;
const MB = 1e6;

async function main(): Promise<void> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-oci-bench-'));
  const env = storage === 's3' ? s3ChildEnv(bucket, `oci-bench-${runId}/`) : {};
  if (storage === 's3' && !process.env.CAIRN_S3_ENDPOINT) throw new Error('source /tmp/cairn-test-s3/env first (or --storage fs)');
  const server = await spawnServer({ dataDir: path.join(tmp, 'data'), env: { ...env, CAIRN_OCI_IMAGE_JOB: 'false' }, timeoutMs: 60_000 });
  const s3 = storage === 's3' ? new S3Client({ endpoint: process.env.CAIRN_S3_ENDPOINT, region: process.env.CAIRN_S3_REGION ?? 'us-east-1', forcePathStyle: true }) : undefined;
  const directKey = `oci-bench-${runId}/direct.bin`;
  try {
    const boundary = `b${runId}`;
    const started = Date.now();
    const res = await fetch(`${server.url}/v1/models/bench/oci/versions`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.toWeb(Readable.from(streamedMultipart(boundary, { version: '1.0.0' }, [{ path: 'weights.bin', source: randomStream(seed, size) }]))) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    if (res.status !== 201) throw new Error(`publish: ${res.status} ${await res.text()}`);
    console.log(`published ${(size / 2 ** 20).toFixed(0)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s (${storage})`);
    if (s3) await new Upload({ client: s3, params: { Bucket: bucket, Key: directKey, Body: Readable.from(randomStream(seed, size)) }, partSize: 16 * 2 ** 20, queueSize: 4 }).done();

    const host = new URL(server.url).host;
    const phases: Record<string, () => Promise<void>> = {
      'skopeo copy (/v2)': async () => {
        const out = path.join(tmp, 'skopeo');
        await fsp.rm(out, { recursive: true, force: true });
        const r = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/bench/oci:1.0.0`, `dir:${out}`], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(r.stderr);
      },
      'cairn pull (/v1)': async () => {
        const out = path.join(tmp, 'cli');
        await fsp.rm(out, { recursive: true, force: true });
        execFileSync(process.execPath, [cairnBin(), 'pull', 'bench/oci@1.0.0', '-o', out, '--json'], { env: { ...process.env, CAIRN_URL: server.url }, stdio: ['ignore', 'ignore', 'inherit'] });
      },
      ...(s3
        ? {
            'direct S3 GET': async () => {
              const out = path.join(tmp, 'direct.bin');
              const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: directKey }));
              await pipeline(got.Body as Readable, fs.createWriteStream(out));
              await fsp.rm(out, { force: true });
            },
          }
        : {}),
    };
    const best: Record<string, number> = {};
    const names = Object.keys(phases);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const t0 = process.hrtime.bigint();
        await phases[name]!();
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        best[name] = Math.min(best[name] ?? Infinity, seconds);
        console.log(`  round ${round + 1} ${name.padEnd(20)} ${seconds.toFixed(2)} s  ${(size / MB / seconds).toFixed(0)} MB/s`);
      }
    }
    console.log(`\nbest of ${rounds}, ${(size / 2 ** 20).toFixed(0)} MiB, ${storage}, ${os.cpus().length} CPUs:`);
    for (const name of names) console.log(`  ${name.padEnd(20)} ${(size / MB / best[name]!).toFixed(0).padStart(5)} MB/s  (${best[name]!.toFixed(2)} s)`);
  } finally {
    await server.stop();
    if (s3) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: directKey })).catch(() => {});
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

await main();
