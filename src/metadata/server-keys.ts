// Secret keys the server makes for itself: random on first use, then kept in
// the database so that what they protect outlives a restart.
import { randomBytes } from 'node:crypto';
import type { Database } from './db.ts';

/** The key named `name` (32 random bytes, made the first time it is asked for). */
export function serverKey(db: Database, name: string): Buffer {
  db.run('INSERT OR IGNORE INTO server_keys (name, key, created_at) VALUES (?, ?, ?)', [name, randomBytes(32), new Date().toISOString()]);
  return db.first<{ key: Buffer }>('SELECT key FROM server_keys WHERE name = ?', [name])!.key;
}
