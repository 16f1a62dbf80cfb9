-- Webhook notifications: a durable outbox. An event is written in the same transaction as the state
-- change it reports (a task failed, a breaker opened, the daily budget was reached), once per dedupe
-- key, and the workflow workers' dispatcher delivers it, retrying with backoff until a receiver
-- accepts it or a day has passed.
CREATE TABLE notifications (
  -- Also the delivery id receivers see (X-Atelier-Delivery): the same on every retry.
  id              uuid PRIMARY KEY,
  type            text NOT NULL CHECK (type IN ('task.failed', 'breaker.opened', 'budget.reached')),
  -- What makes two events the same event (`task.failed:<task id>:<run>`...): enqueued at most once.
  dedupe_key      text NOT NULL UNIQUE,
  -- The event's `data`.
  payload         jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  attempts        integer NOT NULL DEFAULT 0,
  -- When the next delivery is due; NULL once delivered or given up.
  next_attempt_at timestamptz DEFAULT clock_timestamp(),
  delivered_at    timestamptz,
  last_error      text
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
