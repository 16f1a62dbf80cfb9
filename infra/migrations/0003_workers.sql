-- Worker registry: every workflow and agent worker registers itself at start and heartbeats its state
-- (slots, running tasks, counts) every few seconds. GET /v1/workers joins these rows with Temporal's
-- view of the task queues' pollers. Rows are the workers' own reports: nothing else writes them.

CREATE TABLE workers (
  identity      text PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('workflow', 'agent')),
  task_queue    text NOT NULL,
  host          text NOT NULL,
  pid           integer NOT NULL,
  -- Where this worker serves GET /metrics, or NULL when its metrics endpoint is off.
  metrics_url   text,
  -- 'fixed' (slots_total is the limit) or 'resource-based' (slots_total is the tuner's maximum).
  slot_mode     text NOT NULL CHECK (slot_mode IN ('fixed', 'resource-based')),
  slots_total   integer NOT NULL,
  slots_used    integer NOT NULL DEFAULT 0,
  -- The tasks running on this worker: [{taskId, workflowId, attempt, agent, startedAt}].
  running       jsonb NOT NULL DEFAULT '[]'::jsonb,
  completed     bigint NOT NULL DEFAULT 0,
  failed        bigint NOT NULL DEFAULT 0,
  cancelled     bigint NOT NULL DEFAULT 0,
  -- The Temporal worker's run state: RUNNING, DRAINING, STOPPED, ...
  state         text NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  stopped_at    timestamptz
);
CREATE INDEX workers_heartbeat ON workers (heartbeat_at DESC);

-- Live log streaming (GET /v1/tasks/:id/logs?follow=1) from any API replica: each new log chunk and
-- each status change of a task sends its task id on the channel `atelier_task_activity`, so a replica
-- following that task reads the new rows at once instead of waiting for its next poll. Delivery is
-- a hint only: followers also poll, so a lost notification delays output, never drops it.

CREATE FUNCTION atelier_notify_task_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('atelier_task_activity', NEW.task_id::text);
  RETURN NULL;
END;
$$;

CREATE FUNCTION atelier_notify_task_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('atelier_task_activity', NEW.id::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER task_logs_notify AFTER INSERT ON task_logs
  FOR EACH ROW EXECUTE FUNCTION atelier_notify_task_activity();

CREATE TRIGGER tasks_status_notify AFTER UPDATE OF status ON tasks
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION atelier_notify_task_status();
