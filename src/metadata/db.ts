// A tiny wrapper over better-sqlite3: all, first, run, transaction — and
// numbered migrations from migrations/NNN_name.sql, applied in order at open.
import BetterSqlite3 from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Params = Record<string, unknown> | unknown[];

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export class Database {
  readonly raw: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(file: string) {
    const onDisk = file !== ':memory:';
    if (onDisk) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // Owner only, like the data dir's other secrets (admin-token,
      // webhook-key): created 0600 here, and SQLite gives the -wal and -shm
      // files the mode of the database file.
      fs.closeSync(fs.openSync(file, 'a', 0o600));
    }
    this.raw = new BetterSqlite3(file);
    this.raw.pragma('journal_mode = WAL');
    this.raw.pragma('synchronous = FULL');
    this.raw.pragma('foreign_keys = ON');
    this.raw.pragma('busy_timeout = 5000');
    // files made before (0644 by default umask) are narrowed at every open
    if (onDisk) for (const suffix of ['', '-wal', '-shm', '-journal']) chmodIfExists(file + suffix, 0o600);
  }

  private prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.raw.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  all<T>(sql: string, params: Params = []): T[] {
    return this.prepare(sql).all(params) as T[];
  }

  first<T>(sql: string, params: Params = []): T | undefined {
    return this.prepare(sql).get(params) as T | undefined;
  }

  run(sql: string, params: Params = []): BetterSqlite3.RunResult {
    return this.prepare(sql).run(params);
  }

  /** Runs fn in one IMMEDIATE transaction (writers serialize at BEGIN, not at first write). */
  transaction<T>(fn: () => T): T {
    return this.raw.transaction(fn).immediate();
  }

  migrate(dir: string = MIGRATIONS_DIR): string[] {
    this.raw.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    const applied = new Set(this.all<{ id: number }>('SELECT id FROM schema_migrations').map((r) => r.id));
    const files = fs.readdirSync(dir).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
    const done: string[] = [];
    for (const file of files) {
      const id = Number(file.slice(0, 3));
      if (applied.has(id)) continue;
      const sql = fs.readFileSync(path.join(dir, file), 'utf8');
      this.transaction(() => {
        this.raw.exec(sql);
        this.run('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)', [id, file, new Date().toISOString()]);
      });
      done.push(file);
    }
    return done;
  }

  close(): void {
    this.statements.clear();
    this.raw.close();
  }
}

function chmodIfExists(file: string, mode: number): void {
  try {
    fs.chmodSync(file, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
