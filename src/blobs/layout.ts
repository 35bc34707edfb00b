// Where every object lives in the driver's key space. One pure function per
// kind of object; nothing else in the code base builds keys.
//
//   chunks/<first 2 hex of sha256>/<64 hex>   one compressed chunk, addressed by
//                                             the sha256 of its raw bytes; the
//                                             object starts with a codec byte
//                                             (see codec.ts) so it can be decoded
//                                             without the database.
//
// Files, versions, upload sessions and aliases are metadata and live in SQLite.

export function chunkKey(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a sha256 digest: ${digest}`);
  return `chunks/${hex.slice(0, 2)}/${hex}`;
}

export const CHUNKS_PREFIX = 'chunks/';
