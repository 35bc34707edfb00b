// Page cursors (`next_cursor`, passed back as `cursor`) are opaque: the
// position (a model name, a version number, an event id) is encrypted and
// authenticated with a server key (AES-256-GCM) and bound to the list it came
// from. A client can neither read a cursor, nor forge or alter one, nor carry
// it to another list: any of those is 400.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CairnError } from './errors.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class PageCursors {
  constructor(private readonly key: Buffer) {}

  /** `list` names the listing (and its model): a cursor is valid for it only. */
  encode(list: string, position: string | number): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(list));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(position), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /**
   * A page of `list` from rows read with one more than `limit`: the first
   * `limit` rows, and a cursor at the last of them when the extra row shows
   * that more follow.
   */
  page<R>(list: string, rows: readonly R[], limit: number, positionOf: (row: R) => string | number): { page: R[]; next_cursor: string | null } {
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { page, next_cursor: rows.length > limit && last !== undefined ? this.encode(list, positionOf(last)) : null };
  }

  /** The position in a cursor of `list`; undefined without one (the first page). */
  decode<T extends string | number>(list: string, cursor: unknown, type: 'string' | 'number'): T | undefined {
    if (cursor === undefined || cursor === '') return undefined;
    try {
      const raw = Buffer.from(String(cursor), 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(list));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      const value = JSON.parse(plain.toString('utf8'));
      if (typeof value === type) return value as T;
    } catch {
      // fall through: not one of ours
    }
    throw new CairnError('INVALID_ARGUMENT', 'invalid cursor: pass back the next_cursor of a previous page of the same list');
  }
}
