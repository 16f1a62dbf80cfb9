-- Runs: a task can run more than once under its one workflow id (`POST /v1/tasks/:id/retry` starts a
-- new run with the same input; `POST /v1/tasks/:id/reset` resets the workflow, which Temporal runs as a
-- new run too). Attempts, log chunks and events belong to a run, so that the runs of a task stay apart
-- and each run has exactly one terminal event. The `tasks` row shows the current (latest) run.

CREATE TABLE task_runs (
  task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  number     integer NOT NULL CHECK (number >= 1),
  -- The Temporal run id; null from the moment the run is recorded until its start returns.
  run_id     text,
  -- submitted: the task's first run. retry, reset: asked for through the API. external: a run the API
  -- did not start (a reset from the Temporal Web UI, say), recorded when its first write arrives.
  kind       text NOT NULL CHECK (kind IN ('submitted', 'retry', 'reset', 'external')),
  detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (task_id, number),
  UNIQUE (task_id, run_id)
);

-- Every existing task had exactly one run.
INSERT INTO task_runs (task_id, number, run_id, kind, created_at)
SELECT id, 1, run_id, 'submitted', created_at FROM tasks;

ALTER TABLE tasks ADD COLUMN current_run integer NOT NULL DEFAULT 1;

-- Rows written before runs existed belong to run 1, hence the default. The keys gain the run: the same
-- attempt number (and log sequence, and event) can occur once per run.
ALTER TABLE attempts ADD COLUMN run integer NOT NULL DEFAULT 1;
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts ADD PRIMARY KEY (task_id, run, number);

ALTER TABLE task_logs ADD COLUMN run integer NOT NULL DEFAULT 1;
ALTER TABLE task_logs DROP CONSTRAINT task_logs_pkey;
ALTER TABLE task_logs ADD PRIMARY KEY (task_id, run, attempt, seq);

ALTER TABLE task_events ADD COLUMN run integer NOT NULL DEFAULT 1;
ALTER TABLE task_events DROP CONSTRAINT task_events_task_id_kind_attempt_key;
ALTER TABLE task_events ADD CONSTRAINT task_events_once_per_run UNIQUE (task_id, run, kind, attempt);
-- Exactly one terminal event per run (it was per task).
DROP INDEX task_events_one_terminal;
CREATE UNIQUE INDEX task_events_one_terminal_per_run ON task_events (task_id, run) WHERE terminal;

-- The dashboard's "last hour" queries.
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX attempts_finished ON attempts (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX attempts_open ON attempts (worker) WHERE finished_at IS NULL;
