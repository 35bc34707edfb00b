-- Garbage collection: objects found under chunks/ with no chunk record (left
-- by a crashed upload, or by a gc that removed the record and then stopped).
-- Drivers report no modification time, so the grace period is measured from
-- the first gc that saw the object unrecorded: it is deleted only by a later
-- gc, at least the grace period after `first_seen`.
CREATE TABLE gc_orphans (
  key        TEXT PRIMARY KEY,           -- storage key, chunks/<2 hex>/<hex>
  first_seen TEXT NOT NULL               -- ISO 8601
) WITHOUT ROWID;
