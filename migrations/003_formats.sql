-- What each file is (detected from its content at publish) and a per-version
-- summary, so lists can filter on format, framework and safety.
ALTER TABLE version_files ADD COLUMN format TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE version_files ADD COLUMN analysis TEXT NOT NULL DEFAULT '{}';  -- JSON FileFormat
ALTER TABLE versions ADD COLUMN framework TEXT;                          -- the version's main framework
ALTER TABLE versions ADD COLUMN safety TEXT NOT NULL DEFAULT 'unknown';  -- safe | unsafe | unknown
ALTER TABLE versions ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';      -- JSON VersionSummary
CREATE INDEX version_files_by_format ON version_files (format);
CREATE INDEX versions_by_framework ON versions (framework) WHERE deleted_at IS NULL;
CREATE INDEX versions_by_safety ON versions (safety) WHERE deleted_at IS NULL;
