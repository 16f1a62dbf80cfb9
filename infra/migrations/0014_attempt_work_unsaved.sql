-- A task with a repository commits its agent's work before its attempt closes as succeeded, so that
-- a worker that takes the task over after this one is lost finds the work on the task's branch, and
-- runs nothing again. When that commit fails, the attempt still closes as succeeded (the workflow
-- commits the worktree once the attempt answers), but its work is only in this worker's worktree:
-- such a success must not stand in for a run of the agent if its answer is lost. A constant default
-- makes adding the column instant.
ALTER TABLE attempts ADD COLUMN work_unsaved boolean NOT NULL DEFAULT false;
