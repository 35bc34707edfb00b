-- Chunks: content-addressed pieces of file content, stored once.
CREATE TABLE chunks (
  digest      TEXT PRIMARY KEY,          -- sha256:<hex> of the raw bytes
  raw_size    INTEGER NOT NULL,
  stored_size INTEGER NOT NULL,          -- bytes in storage, codec byte included
  codec       TEXT NOT NULL,
  created_at  TEXT NOT NULL
) WITHOUT ROWID;

-- Blobs: whole file contents (an ordered list of chunks), shared by every
-- version file with the same digest.
CREATE TABLE blobs (
  digest      TEXT PRIMARY KEY,          -- sha256:<hex> of the whole file
  size        INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL,
  created_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE blob_chunks (
  blob_digest  TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  offset       INTEGER NOT NULL,         -- where the chunk starts in the file
  size         INTEGER NOT NULL,
  chunk_digest TEXT NOT NULL REFERENCES chunks(digest),
  PRIMARY KEY (blob_digest, seq)
) WITHOUT ROWID;
CREATE INDEX blob_chunks_by_chunk ON blob_chunks (chunk_digest);

CREATE TABLE models (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  last_number INTEGER NOT NULL DEFAULT 0 -- version numbers are never reused
);

CREATE TABLE versions (
  id          INTEGER PRIMARY KEY,
  model_id    INTEGER NOT NULL REFERENCES models(id),
  version     TEXT NOT NULL,
  number      INTEGER NOT NULL,
  digest      TEXT NOT NULL,             -- sha256 of the canonical manifest
  size        INTEGER NOT NULL,          -- sum of file sizes
  created_at  TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  message     TEXT NOT NULL DEFAULT '',
  metadata    TEXT NOT NULL DEFAULT '{}',
  deleted_at  TEXT,                      -- tombstone: the version string stays taken
  deleted_by  TEXT,
  UNIQUE (model_id, version),
  UNIQUE (model_id, number)
);
CREATE INDEX versions_by_digest ON versions (digest);

CREATE TABLE version_files (
  version_id  INTEGER NOT NULL REFERENCES versions(id),
  path        TEXT NOT NULL,
  blob_digest TEXT NOT NULL REFERENCES blobs(digest),
  size        INTEGER NOT NULL,
  PRIMARY KEY (version_id, path)
) WITHOUT ROWID;
CREATE INDEX version_files_by_blob ON version_files (blob_digest);

CREATE TABLE aliases (
  model_id    INTEGER NOT NULL REFERENCES models(id),
  alias       TEXT NOT NULL,
  version_id  INTEGER NOT NULL REFERENCES versions(id),
  updated_at  TEXT NOT NULL,
  updated_by  TEXT NOT NULL,
  PRIMARY KEY (model_id, alias)
) WITHOUT ROWID;
CREATE INDEX aliases_by_version ON aliases (version_id);

-- Resumable upload sessions: bytes are chunked and stored as they arrive;
-- finishing turns the chunk list into a blob once the digest matches.
CREATE TABLE uploads (
  id          TEXT PRIMARY KEY,
  size        INTEGER NOT NULL DEFAULT 0, -- bytes received and stored so far
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  digest      TEXT                        -- set once finished
) WITHOUT ROWID;

CREATE TABLE upload_chunks (
  upload_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  offset       INTEGER NOT NULL,
  size         INTEGER NOT NULL,
  chunk_digest TEXT NOT NULL REFERENCES chunks(digest),
  PRIMARY KEY (upload_id, seq)
) WITHOUT ROWID;
