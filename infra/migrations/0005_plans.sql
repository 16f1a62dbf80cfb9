-- Plans and task file locks. Plans: tasks with dependencies, run by one plan workflow (`plan-<id>`)
-- that starts each task's own workflow (`task-<id>`) as a child once the tasks it depends on have
-- succeeded. The tasks of a plan are ordinary rows of `tasks`, written together with the plan;
-- plan_tasks adds their place in the graph.

CREATE TABLE plans (
  id           uuid PRIMARY KEY,
  status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  max_parallel integer NOT NULL CHECK (max_parallel >= 1),
  on_failure   text NOT NULL CHECK (on_failure IN ('stop', 'continue')),
  workflow_id  text NOT NULL UNIQUE,
  run_id       text,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at  timestamptz
);
CREATE INDEX plans_newest ON plans (created_at DESC, id DESC);

CREATE TABLE plan_tasks (
  plan_id        uuid NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  key            text NOT NULL,
  -- Submission order: the tie-break between ready tasks of equal priority.
  position       integer NOT NULL,
  task_id        uuid NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE CASCADE,
  depends_on     text[] NOT NULL DEFAULT '{}',
  -- Set when the plan decided never to start the task (a dependency failed, the plan stopped or was cancelled).
  skipped_reason text,
  PRIMARY KEY (plan_id, key)
);

-- File locks a task declared (globs relative to its repository, its workdir); null: none. The locks
-- themselves are held by the repository's lock manager workflow, not here.
ALTER TABLE tasks ADD COLUMN locks text[];

-- Tasks with a repository run in a git worktree of their own on branch atelier/<task id>; what they
-- committed is recorded here (null for tasks without one). The patch itself is kept apart.
ALTER TABLE tasks
  ADD COLUMN repo_path       text,
  ADD COLUMN repo_ref        text,
  ADD COLUMN branch          text,
  ADD COLUMN base_sha        text,
  ADD COLUMN commit_sha      text,
  ADD COLUMN changed_files   text[],
  ADD COLUMN diffstat        text,
  ADD COLUMN lock_violations text[];

CREATE TABLE task_diffs (
  task_id    uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
  base_sha   text NOT NULL,
  sha        text NOT NULL,
  patch      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
