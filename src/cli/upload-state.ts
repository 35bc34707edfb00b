// Where `cairn push` remembers its unfinished upload sessions, so that a
// re-run after a crash or Ctrl-C resumes from the server's offset instead of
// starting over. One small JSON file per (server URL, file digest, size):
//   $XDG_STATE_HOME/cairn/uploads/<key>.json   (default ~/.local/state/cairn/uploads)
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface UploadRecord {
  url: string;
  digest: string;
  size: number;
  upload_id: string;
  /** the local file it came from, for humans reading the state dir */
  source: string;
  created_at: string;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'cairn', 'uploads');
}

export class UploadStates {
  constructor(readonly dir: string) {}

  fileFor(url: string, digest: string, size: number): string {
    const key = createHash('sha256').update(`${url}\n${digest}\n${size}`).digest('hex').slice(0, 40);
    return path.join(this.dir, `${key}.json`);
  }

  async load(url: string, digest: string, size: number): Promise<UploadRecord | undefined> {
    const file = this.fileFor(url, digest, size);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const record = JSON.parse(text) as UploadRecord;
      if (record.url === url && record.digest === digest && record.size === size && typeof record.upload_id === 'string') return record;
    } catch {
      // unreadable: forget it
    }
    await this.remove(url, digest, size);
    return undefined;
  }

  /** Written atomically (temp file + rename): a crash never leaves half a record. */
  async save(record: UploadRecord): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.fileFor(record.url, record.digest, record.size);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await fs.rename(tmp, file);
  }

  async remove(url: string, digest: string, size: number): Promise<void> {
    await fs.rm(this.fileFor(url, digest, size), { force: true });
  }
}
