-- Parents of a version (lineage across models): fine-tuned-from, quantized-from, …
CREATE TABLE version_parents (
  version_id        INTEGER NOT NULL REFERENCES versions(id),
  seq               INTEGER NOT NULL,
  parent_version_id INTEGER NOT NULL REFERENCES versions(id),
  relation          TEXT NOT NULL,
  recipe            TEXT NOT NULL DEFAULT 'null', -- JSON
  PRIMARY KEY (version_id, seq)
) WITHOUT ROWID;
CREATE INDEX version_parents_by_parent ON version_parents (parent_version_id);

-- Every change, in order: the outbox of the git mirror (commit IS NULL while
-- pending) and the per-model history index. `changes` holds the exact file
-- contents the event writes into the lineage tree, so the repository can be
-- rebuilt from this table alone with identical commit ids.
CREATE TABLE events (
  id         INTEGER PRIMARY KEY,
  model_id   INTEGER NOT NULL REFERENCES models(id),
  kind       TEXT NOT NULL,              -- publish | alias | unalias | delete
  version    TEXT,
  alias      TEXT,
  actor      TEXT NOT NULL,
  time       TEXT NOT NULL,              -- ISO 8601, whole seconds are what git keeps
  message    TEXT NOT NULL DEFAULT '',
  subject    TEXT NOT NULL,              -- the commit subject line
  changes    TEXT NOT NULL,              -- JSON: { "<path>": "<content>" | null }
  tag        TEXT,                       -- ref name to tag the commit with, for publishes
  commit_id  TEXT,                       -- set once mirrored
  mirrored_at TEXT
);
CREATE INDEX events_by_model ON events (model_id, id);
CREATE INDEX events_pending ON events (id) WHERE commit_id IS NULL;
