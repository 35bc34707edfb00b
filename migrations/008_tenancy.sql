-- Tenancy: upload sessions and uploaded content belong to the token that sent
-- them, so a token limited to some models cannot use another tenant's session
-- or name another tenant's content by its digest.
--
-- The token that started a session (`token:<id>`); only it may read, append,
-- finish or cancel it. NULL: started with CAIRN_AUTH=off (or before this
-- migration), reachable only while auth is off.
ALTER TABLE uploads ADD COLUMN owner TEXT;

-- Who has shown they hold a blob's bytes: the token that finished an upload
-- session with it or stored it as a multipart file part. Such a token may
-- name the blob by digest (HEAD /v1/blobs, JSON publish) even when no
-- version it can read holds it. Gone with the blob.
CREATE TABLE blob_grants (
  blob_digest TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
  principal   TEXT NOT NULL,             -- token:<id>
  created_at  TEXT NOT NULL,
  PRIMARY KEY (blob_digest, principal)
) WITHOUT ROWID;

-- Keys the server makes for itself once (random) and keeps: `cursor`
-- encrypts and authenticates page cursors, so they are opaque and cannot be
-- forged.
CREATE TABLE server_keys (
  name       TEXT PRIMARY KEY,
  key        BLOB NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;
