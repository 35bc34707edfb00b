// Where every object lives in the driver's key space. One pure function per
// kind of object, and its inverse; nothing else in the code base builds or
// parses keys.
//
//   chunks/<first 2 hex of sha256>/<64 hex>   one compressed chunk, addressed by
//                                             the sha256 of its raw bytes; the
//                                             object starts with a codec byte
//                                             (see codec.ts) so it can be decoded
//                                             without the database.
//
// Files, versions, upload sessions and aliases are metadata and live in SQLite.

export const CHUNKS_PREFIX = 'chunks/';

export function chunkKey(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a sha256 digest: ${digest}`);
  return `${CHUNKS_PREFIX}${hex.slice(0, 2)}/${hex}`;
}

const CHUNK_KEY = /^chunks\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** The digest of the chunk stored under `key`; undefined when no chunk is stored there (not ours: leave it alone). */
export function chunkDigestOfKey(key: string): string | undefined {
  const m = CHUNK_KEY.exec(key);
  return m && m[2]!.startsWith(m[1]!) ? `sha256:${m[2]}` : undefined;
}
