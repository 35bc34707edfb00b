-- API tokens. Only the sha256 of a token is stored; `prefix` (the first
-- characters of the token) is there to tell tokens apart in lists and logs.
-- `scope` is the highest scope held: admin ⊃ write ⊃ read. `models` is a JSON
-- array of name patterns (`*` matches anything); empty means every model.
CREATE TABLE tokens (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL,
  hash         TEXT NOT NULL UNIQUE,      -- sha256 hex of the whole token
  prefix       TEXT NOT NULL,
  scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  models       TEXT NOT NULL DEFAULT '[]',
  created_at   TEXT NOT NULL,
  created_by   TEXT NOT NULL,
  expires_at   TEXT,
  last_used_at TEXT,
  revoked_at   TEXT,
  revoked_by   TEXT
);
-- a name belongs to at most one token that is not revoked
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
