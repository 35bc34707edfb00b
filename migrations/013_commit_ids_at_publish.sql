-- Commit ids are computed in the transaction that records each event
-- (src/lineage/commit-chain.ts), so commit_id is set from the start and
-- mirrored_at alone says whether the git mirror has written the event.
DROP INDEX events_pending;
CREATE INDEX events_unmirrored ON events (id) WHERE mirrored_at IS NULL;
