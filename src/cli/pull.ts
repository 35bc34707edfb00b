// `cairn pull <name>@<ref> [-o dir]`: every file of one version, pinned by its
// manifest digest, streamed to a temp file next to its final place, checked
// (size and sha256), fsynced and renamed into place. A file that does not
// check out never appears under its final name.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FileDoc } from '../api/index.ts';
import { type CairnClient, ClientError } from '../client.ts';
import { CairnError } from '../errors.ts';
import { checkPathShape } from '../identifiers.ts';
import { CodecPool } from '../codecs/codec-pool.ts';
import { CliError, type Command, formatBytes, parseNameRef, printJson, say, shortDigest, sleep, str, UsageError } from './common.ts';
import { directUnavailable, downloadDirect, mismatch, type Source } from './direct-pull.ts';
import { Progress } from './progress.ts';

const DOWNLOAD_RETRIES = 3;

export interface PulledFile {
  path: string;
  size: number;
  digest: string;
  /** `present`: already there with the right digest, left as it was */
  status: 'downloaded' | 'present';
  /** how the bytes came: straight from storage (S3) or through the server */
  via?: 'storage' | 'server';
}

/** The path segments of a file path from a version document; anything that could leave the output directory is refused. */
function safeSegments(filePath: unknown): string[] {
  try {
    checkPathShape(filePath); // the shape only: versions published under older rules stay pullable
  } catch (err) {
    if (err instanceof CairnError) throw new CliError('UNSAFE_PATH', `refusing to write ${JSON.stringify(filePath)}: ${err.message}`);
    throw err;
  }
  return (filePath as string).split('/');
}

function inside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** Whether `dest` is a regular file (not a link) with this file's size and digest. */
async function alreadyPresent(dest: string, file: FileDoc): Promise<boolean> {
  let st;
  try {
    st = await fs.lstat(dest);
  } catch {
    return false;
  }
  if (!st.isFile() || st.size !== file.size) return false;
  return (await sha256OfFile(dest)) === file.digest;
}

/** Streams one file to a temp file beside `dest`, checks it, fsyncs, renames. Resumes a cut download with Range. */
async function download(source: Source, file: FileDoc, dest: string): Promise<number> {
  const { client, name, pinned, progress } = source;
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(6).toString('hex')}.cairn-partial`);
  const handle = await fs.open(tmp, 'wx', 0o644);
  let closed = false;
  let done = false;
  try {
    let written = 0;
    let hash: Hash = createHash('sha256');
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await client.getFile(name, pinned, file.path, written > 0 ? { range: { start: written } } : {});
        if (res.digest && res.digest !== file.digest) {
          res.stream.destroy();
          throw mismatch(file, `the server sent content ${res.digest}, expected ${file.digest}`, { actual: res.digest });
        }
        if (written > 0 && res.status !== 206) {
          // the range was ignored: start over
          await handle.truncate(0);
          written = 0;
          hash = createHash('sha256');
          progress.set(0);
        }
        try {
          for await (const chunk of res.stream as AsyncIterable<Buffer>) {
            if (written + chunk.length > file.size) {
              res.stream.destroy();
              throw mismatch(file, `the server sent more than the ${file.size} bytes the version lists`);
            }
            hash.update(chunk);
            let at = 0;
            while (at < chunk.length) {
              const { bytesWritten } = await handle.write(chunk, at, chunk.length - at, written + at);
              at += bytesWritten;
            }
            written += chunk.length;
            progress.add(chunk.length);
          }
        } catch (err) {
          if (err instanceof CliError) throw err;
          throw new ClientError(0, 'NETWORK_ERROR', `${file.path}: download interrupted: ${(err as Error).message}`, {}, { cause: err });
        }
        break;
      } catch (err) {
        if (!(err instanceof ClientError && err.isNetwork && err.code !== 'CONNECTION_FAILED') || attempt >= DOWNLOAD_RETRIES) throw err;
        progress.note(`cairn: ${err.message}; retrying`);
        await sleep(500 * 2 ** attempt);
      }
    }
    if (written !== file.size) throw mismatch(file, `received ${written} bytes, the version lists ${file.size}`, { size: written });
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== file.digest) throw mismatch(file, `content digest is ${actual}, the version lists ${file.digest}`, { actual });
    await handle.sync();
    await handle.close();
    closed = true;
    await fs.rename(tmp, dest);
    done = true;
    return written;
  } finally {
    if (!closed) await handle.close().catch(() => undefined);
    if (!done) await fs.rm(tmp, { force: true });
  }
}

export const pullCommand: Command = {
  name: 'pull',
  synopsis: 'pull <name>[@<ref>] [-o dir]',
  summary: 'download the files of a version (ref defaults to latest)',
  help: `Files are written to a temp file, checked against the version's sizes and
sha256 digests, then renamed into place; files already present with the right
digest are left alone. All files come from one version even if an alias moves.

When the server stores on S3, chunks are fetched straight from the bucket
(presigned URLs from the server), decoded here and each checked against its
sha256; an interrupted pull resumes where it stopped. Otherwise, or with
--via-server, the bytes come through the server.

The ref is a version, an alias, latest or a manifest digest sha256:….

Options:
  -o, --output <dir>   where to write (default ./<name>-<version>; acme/resnet@1.0
                       goes to ./acme/resnet-1.0)
  --via-server         download through the server even when storage is S3`,
  options: {
    output: { type: 'string', short: 'o' },
    'via-server': { type: 'boolean' },
  },
  async run(ctx, args, values) {
    const { name, ref } = parseNameRef(args[0], 'ref', '<name>@<ref>', 'latest');
    if (args.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args[1])}`);
    const { client } = ctx;
    const doc = await client.getVersion(name, ref);
    // Pin every file request to this exact version.
    const pinned = doc.digest || doc.version;
    const plan = doc.files.map((file) => ({ file, segments: safeSegments(file.path) }));
    const outDir = path.resolve(ctx.cwd, str(values, 'output') ?? `${doc.name}-${doc.version}`);
    await fs.mkdir(outDir, { recursive: true });
    const root = await fs.realpath(outDir);

    const progress = new Progress(ctx.progress, ctx.stderr);
    const pulled: PulledFile[] = [];
    const dirs = new Set<string>();
    let received = 0;
    let direct = values['via-server'] !== true;
    let pool: CodecPool | undefined; // decodes and verifies chunks fetched from storage
    try {
      for (const [i, { file, segments }] of plan.entries()) {
        const dest = path.join(root, ...segments);
        const parent = path.dirname(dest);
        if (!inside(root, dest)) throw new CliError('UNSAFE_PATH', `refusing to write ${file.path}: outside ${root}`);
        await fs.mkdir(parent, { recursive: true });
        // a symlinked directory inside the output must not lead elsewhere
        if (!inside(root, await fs.realpath(parent))) throw new CliError('UNSAFE_PATH', `refusing to write ${file.path}: ${parent} leads outside ${root}`);
        if (await alreadyPresent(dest, file)) {
          pulled.push({ path: file.path, size: file.size, digest: file.digest, status: 'present' });
          continue;
        }
        progress.start(`[${i + 1}/${plan.length}] ${file.path}`, file.size);
        const source: Source = { client, name, pinned, progress };
        let via: PulledFile['via'] = 'server';
        if (direct) {
          try {
            pool ??= new CodecPool();
            received += (await downloadDirect(source, file, dest, pool)).received;
            via = 'storage';
          } catch (err) {
            if (!directUnavailable(err)) throw err;
            if (err instanceof CliError) progress.note(`cairn: ${err.message}; downloading through the server instead`);
            direct = false; // the same for every file of this server
            progress.start(`[${i + 1}/${plan.length}] ${file.path}`, file.size);
          }
        }
        if (via === 'server') received += await download(source, file, dest);
        progress.finish();
        dirs.add(parent);
        pulled.push({ path: file.path, size: file.size, digest: file.digest, status: 'downloaded', via });
      }
    } finally {
      progress.finish();
      await pool?.close();
    }
    // make the renames durable
    for (const dir of dirs) {
      const handle = await fs.open(dir, 'r').catch(() => undefined);
      await handle?.sync().catch(() => undefined);
      await handle?.close();
    }

    const downloaded = pulled.filter((f) => f.status === 'downloaded').length;
    const fromStorage = pulled.filter((f) => f.via === 'storage').length;
    const summary = { files: pulled.length, downloaded, present: pulled.length - downloaded, bytes_received: received, from_storage: fromStorage };
    if (ctx.json) {
      printJson(ctx, { name: doc.name, version: doc.version, digest: doc.digest, directory: root, files: pulled, summary });
      return 0;
    }
    say(ctx, `pulled ${doc.name}@${doc.version} (#${doc.number}, ${shortDigest(doc.digest)}) into ${root}`);
    say(ctx, `${summary.files} file(s), ${downloaded} downloaded (${formatBytes(received)}${fromStorage > 0 ? `, ${fromStorage} straight from storage` : ''}), ${summary.present} already present`);
    return 0;

  },
};
