-- Jobs: work the server does after answering (today: derive, a new version
-- made from another by a named transform). A job is a row from the request
-- on; its state moves queued → running → succeeded | failed. A job still
-- `running` at start was cut short by a crash: it is queued again (its
-- output is content-addressed, a partial run leaves only chunks for gc) or
-- failed with the reason. The derived version becomes visible only in its
-- publish transaction, never half.
CREATE TABLE jobs (
  id                TEXT PRIMARY KEY,          -- random, unguessable
  kind              TEXT NOT NULL,             -- derive
  state             TEXT NOT NULL,             -- queued | running | succeeded | failed
  params            TEXT NOT NULL,             -- JSON: the request, normalised (transform, params, files, samples)
  derive_key        TEXT NOT NULL,             -- sha256 of parent digest, transform, params, files, derive version: same key, same bytes
  parent_version_id INTEGER NOT NULL REFERENCES versions(id),
  target_name       TEXT NOT NULL,
  target_version    TEXT NOT NULL,
  progress_bytes    INTEGER NOT NULL DEFAULT 0,
  progress_total    INTEGER NOT NULL DEFAULT 0,
  phase             TEXT NOT NULL DEFAULT '',
  result_version_id INTEGER REFERENCES versions(id),
  error_code        TEXT,
  error_message     TEXT,
  attempts          INTEGER NOT NULL DEFAULT 0, -- runs started (a crash mid-run counts)
  created_by        TEXT NOT NULL,             -- the actor (token name), the derived version's author
  principal         TEXT,                      -- the creator's token (`token:<id>`); NULL with CAIRN_AUTH=off
  caller_models     TEXT NOT NULL DEFAULT '[]', -- JSON: the creator's model name patterns ([] = every model)
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  started_at        TEXT,
  finished_at       TEXT
);
CREATE INDEX jobs_by_state ON jobs (state, created_at);
CREATE INDEX jobs_by_key ON jobs (derive_key);
