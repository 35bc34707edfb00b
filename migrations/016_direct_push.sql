-- Direct pushes: a client that cuts and encodes chunks itself puts the new
-- ones straight into the bucket, under staging/<session>/<digest>, through
-- presigned PUTs the server hands out for an upload session. One row per URL
-- handed out, with the exact stored size it was signed for: their sum bounds
-- what a session may stage. Gone with the session; gc deletes the staged
-- objects of sessions that are gone.
CREATE TABLE upload_staged (
  upload_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
  chunk_digest TEXT NOT NULL,
  stored_size  INTEGER NOT NULL,
  PRIMARY KEY (upload_id, chunk_digest)
) WITHOUT ROWID;
