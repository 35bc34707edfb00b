// `cairn push <name>@<version> <file|dir|path=local>…`: hash each file
// (streaming), skip content the server already stores, upload the rest through
// resumable sessions, then publish the version from the digests. With S3
// storage the bytes go straight into the bucket (direct-push.ts: the CLI
// cuts the file and sends only the chunks the server lacks); through the
// server otherwise, or with --via-server.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Relation, UploadDoc, VersionDoc } from '../api/index.ts';
import { ClientError, type CairnClient } from '../client.ts';
import { CodecPool } from '../codecs/codec-pool.ts';
import { checkAlias, checkFilePath, VersionPaths } from '../identifiers.ts';
import {
  check,
  CliError,
  type Command,
  formatBytes,
  parseNameRef,
  parseSize,
  say,
  printJson,
  shortDigest,
  sleep,
  str,
  strs,
  table,
  UsageError,
} from './common.ts';
import { cutFile, directPushUnavailable, pushDirect, type CutFile } from './direct-push.ts';
import { Progress } from './progress.ts';
import { RateLimiter } from './rate-limiter.ts';
import { stateDir, UploadStates } from './upload-state.ts';

const DEFAULT_PART_SIZE = 64 * 1024 * 1024;
const READ_BUFFER = 1024 * 1024;
/** attempts per step after a network error or a busy session, with backoff */
const MAX_RETRIES = 6;

interface LocalFile {
  /** path inside the version */
  path: string;
  /** path on this machine */
  local: string;
}

export interface PushedFile {
  path: string;
  size: number;
  digest: string;
  /** `skipped`: the server already stored this content; nothing was sent */
  status: 'uploaded' | 'skipped';
  /** the chunks went straight to storage (S3), encoded: `bytes_sent` counts stored bytes */
  direct: boolean;
  /** bytes the server already held when this run picked up an earlier session; null for a fresh session */
  resumed_from: number | null;
  bytes_sent: number;
}

// ---- gathering the files ------------------------------------------------------

async function statOrNull(p: string) {
  try {
    return await fs.stat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

async function walk(dir: string, rel: string, out: LocalFile[], seen: Set<string>): Promise<void> {
  const real = await fs.realpath(dir);
  if (seen.has(real)) return; // a symlink loop
  seen.add(real);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    const inner = rel ? `${rel}/${entry.name}` : entry.name;
    const st = entry.isSymbolicLink() ? await statOrNull(full) : entry;
    if (!st) throw new UsageError(`broken symbolic link: ${full}`);
    if (st.isDirectory()) await walk(full, inner, out, seen);
    else if (st.isFile()) out.push({ path: inner, local: full });
    // sockets, fifos, devices: not model files
  }
  seen.delete(real);
}

/** Arguments → files with their in-version paths: `file` (its basename), `dir` (relative paths inside), `path=local`. */
export async function gatherFiles(args: string[], cwd: string): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  for (const arg of args) {
    let target = arg;
    let prefix: string | undefined;
    let st = await statOrNull(path.resolve(cwd, arg));
    const eq = arg.indexOf('=');
    if (!st && eq > 0) {
      prefix = arg.slice(0, eq);
      target = arg.slice(eq + 1);
      st = await statOrNull(path.resolve(cwd, target));
    }
    if (!st) throw new UsageError(`no such file or directory: ${target}`);
    const local = path.resolve(cwd, target);
    if (st.isDirectory()) {
      const inside: LocalFile[] = [];
      await walk(local, '', inside, new Set());
      if (inside.length === 0) throw new UsageError(`directory ${target} has no files`);
      const base = prefix?.replace(/\/+$/, '');
      for (const f of inside) files.push({ path: base ? `${base}/${f.path}` : f.path, local: f.local });
    } else if (st.isFile()) {
      const name = prefix === undefined ? path.basename(local) : prefix.endsWith('/') ? `${prefix}${path.basename(local)}` : prefix;
      files.push({ path: name, local });
    } else {
      throw new UsageError(`${target} is neither a file nor a directory`);
    }
  }
  // the server's rules, before any byte is sent: paths in NFC (a directory
  // written on macOS may hold NFD names), no case or file/directory collisions
  const seen = new Map<string, string>();
  const paths = new VersionPaths();
  for (const f of files) {
    f.path = check(() => checkFilePath(f.path));
    const other = seen.get(f.path);
    if (other !== undefined) throw new UsageError(`two files would be stored as ${f.path}: ${other} and ${f.local}`);
    seen.set(f.path, f.local);
    check(() => paths.add(f.path));
  }
  return files;
}

// ---- bytes ------------------------------------------------------------------------

async function* metered(source: AsyncIterable<Buffer>, limiter: RateLimiter | undefined, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (limiter) await limiter.take(chunk.length);
    yield chunk;
    onBytes(chunk.length);
  }
}

async function hashFile(local: string, progress: Progress): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const stream = createReadStream(local, { highWaterMark: READ_BUFFER });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    progress.add(chunk.length);
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

function retryable(err: unknown): boolean {
  if (!(err instanceof ClientError)) return false;
  if (err.isNetwork) return err.code !== 'ABORTED';
  if (err.status >= 500) return true;
  if (err.code === 'UPLOAD_BUSY' || err.code === 'UPLOAD_OFFSET_MISMATCH') return true;
  // "Content-Range declared … but the session now ends at N": resume from N
  return err.code === 'UPLOAD_INCOMPLETE';
}

function backoff(attempt: number): number {
  return Math.min(250 * 2 ** (attempt - 1), 8000) * (0.75 + Math.random() / 2);
}

async function withRetries<T>(fn: () => Promise<T>, onRetry: (err: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!retryable(err) || attempt > MAX_RETRIES) throw err;
      onRetry(err, attempt);
      await sleep(backoff(attempt));
    }
  }
}

interface UploadOptions {
  client: CairnClient;
  states: UploadStates;
  partSize: number;
  limiter: RateLimiter | undefined;
  progress: Progress;
  label: string;
}

/** The session an earlier run recorded for this content, if the server still has it and `fits` it; else a new one, recorded. */
async function openSession(file: LocalFile, digest: string, size: number, o: UploadOptions, fits: (session: UploadDoc) => boolean) {
  const { client, states, progress } = o;
  const url = client.url;
  const onRetry = (err: unknown, attempt: number) =>
    progress.note(`cairn: ${file.path}: ${(err as Error).message}; retrying (${attempt}/${MAX_RETRIES})`);

  let session: UploadDoc | undefined;
  const record = await states.load(url, digest, size);
  if (record) {
    try {
      session = await withRetries(() => client.getUpload(record.upload_id), onRetry);
    } catch (err) {
      if (!(err instanceof ClientError && err.status === 404)) throw err;
    }
    if (session && !fits(session)) {
      await client.cancelUpload(session.id).catch(() => undefined);
      session = undefined;
    }
    if (!session) await states.remove(url, digest, size);
  }
  const resumedFrom = session ? session.offset : null;
  if (!session) {
    session = await withRetries(() => client.createUpload(), onRetry);
    await states.save({ url, digest, size, upload_id: session.id, source: file.local, created_at: new Date().toISOString() });
  }
  return { session, resumedFrom, onRetry };
}

/** Ends a session whose bytes are all there: the server checks the digest. */
async function finishSession(file: LocalFile, id: string, digest: string, size: number, o: UploadOptions, onRetry: (err: unknown, attempt: number) => void) {
  const { client, states } = o;
  try {
    await withRetries(async () => {
      try {
        await client.finishUpload(id, digest);
      } catch (err) {
        // an earlier attempt finished it and only the answer was lost
        if (err instanceof ClientError && err.code === 'UPLOAD_NOT_FOUND' && (await client.hasBlob(digest))) return;
        throw err;
      }
    }, onRetry);
  } catch (err) {
    if (err instanceof ClientError && err.code === 'DIGEST_MISMATCH') {
      await client.cancelUpload(id).catch(() => undefined);
      await states.remove(client.url, digest, size);
      throw new ClientError(err.status, err.code, `${file.local} changed while it was being pushed: ${err.message}`, err.details);
    }
    throw err;
  }
  await states.remove(client.url, digest, size);
}

/**
 * Pushes one cut file straight into storage through a resumable session
 * (direct-push.ts), resuming one recorded by an earlier run where it stands
 * (after the chunks the server has checked).
 */
async function uploadFileDirect(file: LocalFile, cut: CutFile, pool: CodecPool, o: UploadOptions): Promise<{ resumed_from: number | null; bytes_sent: number }> {
  const boundaries = new Set(cut.chunks.map((c) => c.offset));
  const fits = (s: UploadDoc) => s.offset === cut.size || boundaries.has(s.offset);
  const { session, resumedFrom, onRetry } = await openSession(file, cut.digest, cut.size, o, fits);
  o.progress.start(`${o.label} (direct)`, cut.size, session.offset);
  try {
    const sent = await pushDirect(o.client, session, file.local, cut, pool, o.progress, o.limiter);
    await finishSession(file, session.id, cut.digest, cut.size, o, onRetry);
    return { resumed_from: resumedFrom, bytes_sent: sent.bytes_sent };
  } catch (err) {
    if (directPushUnavailable(err)) {
      // the file goes through the server instead, in a session of its own
      await o.client.cancelUpload(session.id).catch(() => undefined);
      await o.states.remove(o.client.url, cut.digest, cut.size);
    }
    throw err;
  } finally {
    o.progress.finish();
  }
}

/** Uploads one file through a resumable session, resuming one recorded by an earlier run. */
async function uploadFile(file: LocalFile, digest: string, size: number, o: UploadOptions): Promise<{ resumed_from: number | null; bytes_sent: number }> {
  const { client, states, progress } = o;
  const url = client.url;
  const { session, resumedFrom, onRetry } = await openSession(file, digest, size, o, (s) => s.offset <= size);
  const id = session.id;
  let offset = session.offset;
  let sent = 0;
  let failures = 0;
  progress.start(o.label, size, offset);
  while (offset < size) {
    const end = Math.min(offset + o.partSize, size) - 1;
    const stream = createReadStream(file.local, { start: offset, end, highWaterMark: READ_BUFFER });
    const body = metered(stream as AsyncIterable<Buffer>, o.limiter, (n) => {
      sent += n;
      progress.add(n);
    });
    let failure: unknown;
    try {
      offset = (await client.patchUpload(id, offset, end, body)).offset;
      failures = 0;
    } catch (err) {
      failure = err;
    } finally {
      stream.destroy();
    }
    if (failure !== undefined) {
      if (!retryable(failure) || ++failures > MAX_RETRIES) throw failure;
      onRetry(failure, failures);
      await sleep(backoff(failures));
      // Every byte the server received is stored: go on from its offset.
      offset = (await withRetries(() => client.getUpload(id), onRetry)).offset;
    }
    progress.set(offset);
  }
  if (offset !== size) {
    await client.cancelUpload(id).catch(() => undefined);
    await states.remove(url, digest, size);
    throw new CliError('UPLOAD_TOO_LONG', `${file.local}: the server holds ${offset} bytes of a ${size}-byte file; did the file change? Run the push again`);
  }
  try {
    await finishSession(file, id, digest, size, o, onRetry);
  } finally {
    progress.finish();
  }
  return { resumed_from: resumedFrom, bytes_sent: sent };
}

// ---- the command --------------------------------------------------------------------

function parseMetadata(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new UsageError(`--metadata must be a JSON object: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('--metadata must be a JSON object');
  return parsed as Record<string, unknown>;
}

export const pushCommand: Command = {
  name: 'push',
  synopsis: 'push <name>@<version> <file|dir|path=file>…',
  summary: 'upload files and publish them as a new version',
  help: `A directory is walked recursively; its files keep their paths relative to it.
A file goes in under its base name; path=file chooses its path in the version
(path/=file keeps the base name under path/; path=dir puts the directory under path/).
Content the server already stores is not uploaded again. An interrupted push
resumes where it stopped when run again.

Options:
  -m, --message <text>     describe the version
  -a, --alias <alias>      point an alias at the new version (repeatable)
      --metadata <json>    a JSON object stored with the version
      --parent <name@ref>  a version this one comes from (repeatable)
      --relation <rel>     how it relates to its parents: fine-tuned-from, quantized-from,
                           pruned-from, distilled-from, converted-from (default derived-from)
      --part-size <size>   bytes per upload request through the server (default 64M; env CAIRN_PUSH_PART_SIZE)
      --limit-rate <size>  upload at most this many bytes a second (e.g. 20M)
      --via-server         send the bytes through the server even when storage is S3

With S3 storage the file is cut into chunks here and only the chunks the server
lacks are sent, encoded, straight into the bucket; the server checks each one
before it keeps it (README "Direct transfers").`,
  options: {
    message: { type: 'string', short: 'm' },
    alias: { type: 'string', short: 'a', multiple: true },
    metadata: { type: 'string' },
    parent: { type: 'string', multiple: true },
    relation: { type: 'string' },
    'part-size': { type: 'string' },
    'limit-rate': { type: 'string' },
    'via-server': { type: 'boolean' },
  },
  async run(ctx, args, values) {
    const [target, ...sources] = args;
    const { name, ref: version } = parseNameRef(target, 'new-version', '<name>@<version>');
    if (sources.length === 0) throw new UsageError('push needs at least one file or directory');
    const aliases = strs(values, 'alias').map((a) => check(() => checkAlias(a)));
    const metadata = parseMetadata(str(values, 'metadata'));
    // checked by the server, which names the relations it knows
    const relation = str(values, 'relation') as Relation | undefined;
    const parents = strs(values, 'parent').map((p) => {
      const parent = parseNameRef(p, 'ref', '--parent <name>@<ref>');
      return { ref: `${parent.name}@${parent.ref}`, relation };
    });
    if (relation !== undefined && parents.length === 0) throw new UsageError('--relation needs at least one --parent');
    const partSize = parseSize(str(values, 'part-size') ?? (ctx.env.CAIRN_PUSH_PART_SIZE || undefined), '--part-size') ?? DEFAULT_PART_SIZE;
    const rate = parseSize(str(values, 'limit-rate'), '--limit-rate');
    const files = await gatherFiles(sources, ctx.cwd);
    const { client } = ctx;

    // Cheap early failure instead of uploading gigabytes into a 409.
    try {
      const existing = await client.getVersion(name, version);
      if (existing.version === version) {
        throw new ClientError(409, 'VERSION_EXISTS', `${name}@${version} already exists; published versions never change`);
      }
    } catch (err) {
      if (err instanceof ClientError && err.code === 'VERSION_DELETED') {
        throw new ClientError(409, 'VERSION_EXISTS', `${name}@${version} was published and deleted; version strings are never reused`);
      }
      if (!(err instanceof ClientError && err.status === 404)) throw err;
    }

    const progress = new Progress(ctx.progress, ctx.stderr);
    const states = new UploadStates(stateDir(ctx.env));
    const limiter = rate ? new RateLimiter(rate) : undefined;
    const onInterrupt = () => {
      progress.finish();
      ctx.stderr.write('cairn: interrupted; run the same push again to resume\n');
      process.exit(130);
    };
    process.once('SIGINT', onInterrupt);
    const pushed: PushedFile[] = [];
    let published: VersionDoc;
    // Straight into storage when the server takes it (S3); asked once, with nothing to upload.
    let direct = values['via-server'] !== true && (await client.missingChunks([]).then(
      () => true,
      (err: unknown) => {
        if (directPushUnavailable(err)) return false;
        throw err;
      },
    ));
    let pool: CodecPool | undefined; // cuts, hashes and encodes chunks for a direct push
    try {
      for (const [i, file] of files.entries()) {
        const label = `[${i + 1}/${files.length}] ${file.path}`;
        const st = await fs.stat(file.local);
        const o = { client, states, partSize, limiter, progress, label };
        let cut: CutFile | undefined;
        if (direct) {
          pool ??= new CodecPool();
          progress.start(`${label} (cutting)`, st.size);
          cut = await cutFile(file.local, pool, progress);
        } else {
          progress.start(`${label} (hashing)`, st.size);
        }
        const { digest, size } = cut ?? (await hashFile(file.local, progress));
        progress.finish();
        if (await client.hasBlob(digest)) {
          await states.remove(client.url, digest, size); // a session an earlier run left behind, if any
          pushed.push({ path: file.path, size, digest, status: 'skipped', direct: false, resumed_from: null, bytes_sent: 0 });
          continue;
        }
        if (cut) {
          try {
            pushed.push({ path: file.path, size, digest, status: 'uploaded', direct: true, ...(await uploadFileDirect(file, cut, pool!, o)) });
            continue;
          } catch (err) {
            if (!directPushUnavailable(err)) throw err;
            progress.note(`cairn: ${(err as Error).message}; sending the bytes through the server instead`);
            direct = false;
          }
        }
        const result = await uploadFile(file, digest, size, o);
        pushed.push({ path: file.path, size, digest, status: 'uploaded', direct: false, ...result });
      }
      published = await client.publish(name, {
        version,
        files: pushed.map((f) => ({ path: f.path, digest: f.digest })),
        message: str(values, 'message'),
        aliases: aliases.length > 0 ? aliases : undefined,
        parents: parents.length > 0 ? parents : undefined,
        metadata,
      });
    } finally {
      progress.finish();
      process.removeListener('SIGINT', onInterrupt);
      await pool?.close();
    }

    const uploaded = pushed.filter((f) => f.status === 'uploaded');
    const summary = {
      files: pushed.length,
      uploaded: uploaded.length,
      skipped: pushed.length - uploaded.length,
      bytes_sent: pushed.reduce((n, f) => n + f.bytes_sent, 0),
    };
    if (ctx.json) {
      printJson(ctx, { published, files: pushed, summary });
      return 0;
    }
    say(ctx, `pushed ${published.name}@${published.version} (#${published.number}, ${shortDigest(published.digest)})`);
    say(
      ctx,
      table(
        pushed.map((f) => [
          `  ${f.status}`,
          f.path,
          formatBytes(f.size),
          f.status === 'skipped' ? '(already stored)' : f.resumed_from !== null ? `(resumed at ${formatBytes(f.resumed_from)})` : '',
        ]),
      ),
    );
    const aliasText = published.aliases.length > 0 ? `; aliases: ${published.aliases.join(', ')}` : '';
    say(ctx, `${summary.files} file(s), ${summary.uploaded} uploaded (${formatBytes(summary.bytes_sent)} sent), ${summary.skipped} already stored${aliasText}`);
    return 0;
  },
};
