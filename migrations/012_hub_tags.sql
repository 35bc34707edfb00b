-- Tags made by Hugging Face clients (create_tag): aliases that never move.
-- No commit, alias set or publish moves a fixed alias; deleting it
-- (delete_tag, cairn unalias) is the only change. list_repo_refs lists them
-- among the tags, the other aliases among the branches.
ALTER TABLE aliases ADD COLUMN fixed INTEGER NOT NULL DEFAULT 0;
