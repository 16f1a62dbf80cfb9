-- Patches are kept byte for byte as git prints them (a file that is not UTF-8 included), in a column
-- of their own: adding it is instant, where changing `patch` to bytea would rewrite every patch under
-- an exclusive lock. This release writes `patch_bytes` and sets `patch` to NULL; a row whose `patch` is
-- set was written by an earlier release (an agent worker not yet upgraded), and that text is its patch.
ALTER TABLE task_diffs ADD COLUMN patch_bytes bytea;
