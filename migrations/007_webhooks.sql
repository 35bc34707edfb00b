-- Webhooks: an HTTP POST for each event (publish, alias, unalias, delete) of
-- the models a hook watches. Deliveries are rows, created from the events
-- table in the transaction that advances the hook's cursor, and retried with
-- backoff until they succeed or run out of attempts: nothing is lost across
-- a crash or restart (at least once; the delivery id lets receivers dedupe).
CREATE TABLE webhooks (
  id          INTEGER PRIMARY KEY,
  url         TEXT NOT NULL,
  secret      TEXT NOT NULL,             -- HMAC-SHA256 key of the signature header
  events      TEXT NOT NULL,             -- JSON array of event kinds; [] = all
  models      TEXT NOT NULL,             -- JSON array of model name patterns; [] = all
  created_by  TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  cursor      INTEGER NOT NULL           -- the last event id already turned into deliveries
);

CREATE TABLE webhook_deliveries (
  id           INTEGER PRIMARY KEY,
  webhook_id   INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  event_id     INTEGER NOT NULL REFERENCES events(id),
  state        TEXT NOT NULL,            -- pending | delivered | failed
  attempts     INTEGER NOT NULL DEFAULT 0,
  next_at      TEXT NOT NULL,            -- ISO 8601: when a pending delivery is due
  last_status  INTEGER,                  -- HTTP status of the last attempt
  last_error   TEXT,
  delivered_at TEXT,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
