// Where every object lives in the driver's key space. One pure function per
// kind of object, and its inverse; nothing else in the code base builds or
// parses keys.
//
//   chunks/<first 2 hex of sha256>/<64 hex>   one compressed chunk, addressed by
//                                             the sha256 of its raw bytes; the
//                                             object starts with a codec byte
//                                             (see codec.ts) so it can be decoded
//                                             without the database.
//   staging/<upload session id>/<64 hex>      a chunk object a client put straight
//                                             into the bucket (presigned PUT) for a
//                                             direct push, named by the digest it
//                                             claims; untrusted until the server has
//                                             read it back, decoded and hashed it, and
//                                             then written the verified bytes to
//                                             chunks/. gc deletes those of sessions
//                                             that are gone.
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

export const STAGING_PREFIX = 'staging/';
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function stagingKey(session: string, digest: string): string {
  if (!SESSION_ID.test(session)) throw new Error(`not an upload session id: ${session}`);
  return `${STAGING_PREFIX}${session}/${chunkKey(digest).slice(CHUNKS_PREFIX.length + 3)}`;
}

const STAGING_KEY = /^staging\/([A-Za-z0-9_-]{1,64})\/([0-9a-f]{64})$/;

/** The session and claimed digest of a staged object; undefined when `key` is not one (not ours: leave it alone). */
export function stagedOfKey(key: string): { session: string; digest: string } | undefined {
  const m = STAGING_KEY.exec(key);
  return m ? { session: m[1]!, digest: `sha256:${m[2]}` } : undefined;
}
