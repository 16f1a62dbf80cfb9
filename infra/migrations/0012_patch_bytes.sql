-- Patches are kept byte for byte as git prints them, a file that is not UTF-8 included. A patch that
-- is UTF-8 without NUL, as nearly every one is, stays text in `patch` (so a release before this one
-- serves it too); any other goes, as bytes, into this column of its own, and `patch` is NULL. Adding
-- it is instant, where changing `patch` to bytea would rewrite every patch under an exclusive lock.
ALTER TABLE task_diffs ADD COLUMN patch_bytes bytea;
