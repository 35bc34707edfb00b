-- Commit ids are computed in the transaction that records each event
-- (src/lineage/commit-chain.ts), so commit_id is set from the start and
-- mirrored_at alone says whether the git mirror has written the event.
DROP INDEX events_pending;
CREATE INDEX events_unmirrored ON events (id) WHERE mirrored_at IS NULL;
-- /hf reads find a version's publish commit, and the version a commit
-- published, on every request: by index, not by a scan of the model's events.
CREATE INDEX events_publish_by_version ON events (model_id, version) WHERE kind = 'publish';
CREATE INDEX events_by_commit ON events (commit_id);
