-- A patch too large to keep (over what one git command may print) is not kept: its task's commit is
-- on its branch all the same, and GET /v1/tasks/:id/diff says so.
ALTER TABLE task_diffs ALTER COLUMN patch DROP NOT NULL;
