-- Model cards: a Markdown README kept with the model (PATCH /v1/models/{name}),
-- mirrored into the lineage as models/<name>/README.md. A version's own
-- README.md file is its card; this one is the model's, editable without a
-- new version. '' = none.
ALTER TABLE models ADD COLUMN readme TEXT NOT NULL DEFAULT '';

-- The model list sorted by last change, newest first, page by page.
CREATE INDEX models_by_updated ON models (updated_at DESC, name);
