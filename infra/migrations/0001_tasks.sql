-- Tasks, their attempts, their output and their audit trail: Atelier's system of record.

CREATE TABLE tasks (
  id              uuid PRIMARY KEY,
  idempotency_key text UNIQUE,
  status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  prompt          text NOT NULL,
  agent           text NOT NULL,
  model           text,
  workdir         text,
  timeout_seconds integer NOT NULL,
  max_attempts    integer NOT NULL,
  priority        integer NOT NULL,
  labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
  workflow_id     text NOT NULL UNIQUE,
  run_id          text,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at      timestamptz,
  finished_at     timestamptz,
  result_attempt  integer,
  result_exit_code integer,
  error_class     text,
  error_message   text
);
CREATE INDEX tasks_newest ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_newest ON tasks (status, created_at DESC, id DESC);
CREATE INDEX tasks_labels ON tasks USING gin (labels jsonb_path_ops);

CREATE TABLE attempts (
  task_id       uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  number        integer NOT NULL,
  agent         text NOT NULL,
  model         text,
  worker        text,
  started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at   timestamptz,
  exit_code     integer,
  failure_class text,
  error         text,
  output_bytes  bigint NOT NULL DEFAULT 0,
  output        text,
  PRIMARY KEY (task_id, number)
);

-- Agent output in arrival order; (task, attempt, seq) makes a retried write a no-op.
CREATE TABLE task_logs (
  task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  attempt    integer NOT NULL,
  seq        integer NOT NULL,
  stream     text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
  data       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (task_id, attempt, seq)
);

-- Audit trail of state changes. The unique indexes make every write idempotent and allow exactly one
-- terminal event per task, whatever retries or races happen.
CREATE TABLE task_events (
  id         bigserial PRIMARY KEY,
  task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  kind       text NOT NULL,
  attempt    integer NOT NULL DEFAULT 0,
  terminal   boolean NOT NULL DEFAULT false,
  detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (task_id, kind, attempt)
);
CREATE UNIQUE INDEX task_events_one_terminal ON task_events (task_id) WHERE terminal;
