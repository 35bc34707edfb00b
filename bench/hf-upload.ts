// Uploading through the Hugging Face front door against the REST API: a BF16
// safetensors file (transformer-like weights, test/support/tensors.ts)
// pushed by huggingface_hub's upload_folder (git LFS: sha256 on the client,
// batch, one PUT or 64 MiB parts, verify, commit) and the same bytes by
// `curl -F` to POST /v1/models/{name}/versions, each into a fresh server;
// then the same folder uploaded again to another repo of the first server,
// counting the bytes the LFS upload links received (the batch answer says
// the object is stored: none).
//
//   node --import tsx bench/hf-upload.ts [--size 1G] [--python /path/to/venv/bin/python]
//
// The python needs huggingface_hub (test/support/python.ts builds such a
// venv; by default the one for huggingface_hub==2.0.0 is built or reused).
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { startAuthServer, type AuthServer } from '../test/support/auth-server.ts';
import { pythonVenv } from '../test/support/python.ts';
import { modelSpec, safetensorsStream } from '../test/support/tensors.ts';
import { option, parseSize } from './support.ts';

const run = promisify(execFile);
const MB = 1e6;

const UPLOAD = `
import sys, time
from huggingface_hub import HfApi
api = HfApi()
api.create_repo(sys.argv[1], exist_ok=True)
t = time.time()
api.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2], commit_message="bench")
print(time.time() - t)
`;

async function uploadFolder(python: string, server: AuthServer, repo: string, folder: string, home: string): Promise<number> {
  const env = { ...process.env, HF_ENDPOINT: `${server.url}/hf`, HF_TOKEN: server.adminToken, HF_HOME: home, HF_HUB_DISABLE_XET: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1', HF_HUB_DISABLE_TELEMETRY: '1' };
  const started = Date.now();
  await run(python, ['-c', UPLOAD, repo, folder], { env, maxBuffer: 1 << 24 });
  return (Date.now() - started) / 1000;
}

/** Seconds the server spent answering requests whose path matches, summed. */
function secondsIn(server: AuthServer, match: RegExp): number {
  return server.log.lines.filter((l) => l.msg === 'request' && match.test(String(l.fields.path))).reduce((n, l) => n + Number(l.fields.duration_ms ?? 0) / 1000, 0);
}

/** Request body bytes the server logged for requests whose path starts with `prefix`. */
function bytesIn(server: AuthServer, prefix: string): number {
  return server.log.lines.filter((l) => l.msg === 'request' && String(l.fields.path).startsWith(prefix)).reduce((n, l) => n + Number(l.fields.bytes_in ?? 0), 0);
}

async function main(): Promise<void> {
  const size = parseSize(option('size', '1G'));
  const python = option('python', '') || (await pythonVenv(['huggingface_hub==2.0.0'])).python;
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-hf-'));
  try {
    const folder = path.join(work, 'model');
    await fs.mkdir(folder);
    const file = path.join(folder, 'model.safetensors');
    await pipeline(Readable.from(safetensorsStream(modelSpec(size, 'BF16', { seed: 'hf-bench' }), { format: 'pt' })), createWriteStream(file));
    await fs.writeFile(path.join(folder, 'config.json'), '{"model_type":"bench"}\n');
    const bytes = (await fs.stat(file)).size;
    console.log(`file: ${(bytes / MB).toFixed(0)} MB BF16 safetensors`);

    const hub = await startAuthServer();
    try {
      const seconds = await uploadFolder(python, hub, 'acme/bench', folder, path.join(work, 'home'));
      const sent = bytesIn(hub, '/hf/lfs-upload/');
      console.log(`upload_folder (huggingface_hub, LFS): ${seconds.toFixed(1)} s, ${(bytes / MB / seconds).toFixed(1)} MB/s; LFS bytes received ${(sent / MB).toFixed(1)} MB`);
      const puts = secondsIn(hub, /^\/hf\/lfs-upload\//);
      const commit = secondsIn(hub, /\/commit\//);
      console.log(`  of which the server spent ${puts.toFixed(1)} s on the LFS PUTs (${(bytes / MB / puts).toFixed(1)} MB/s) and ${commit.toFixed(1)} s on the commit (the version's publish); the rest is the client (sha256 of the file, requests)`);
      const again = await uploadFolder(python, hub, 'acme/bench-copy', folder, path.join(work, 'home'));
      const sentAgain = bytesIn(hub, '/hf/lfs-upload/') - sent;
      console.log(`the same folder to another repo: ${again.toFixed(1)} s, LFS bytes received ${sentAgain} (${((100 * sentAgain) / bytes).toFixed(3)} % of the file)`);
    } finally {
      await hub.stop();
    }

    const rest = await startAuthServer();
    try {
      const started = Date.now();
      await run('curl', ['-sS', '--fail-with-body', '-H', `Authorization: Bearer ${rest.adminToken}`, '-F', 'version=1', '-F', `file=@${file}`, '-F', `file=@${path.join(folder, 'config.json')}`, `${rest.url}/v1/models/acme/bench/versions`], { maxBuffer: 1 << 24 });
      const seconds = (Date.now() - started) / 1000;
      console.log(`POST /v1/models/acme/bench/versions (curl -F): ${seconds.toFixed(1)} s, ${(bytes / MB / seconds).toFixed(1)} MB/s`);
    } finally {
      await rest.stop();
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
