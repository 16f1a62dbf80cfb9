-- Agent adapters, fallback chains, circuit breakers, cluster-wide limits and budgets.

-- A task's fallback chain (NULL: its agent alone), its cost cap, and why it waits while it waits.
ALTER TABLE tasks
  ADD COLUMN agents         text[],
  ADD COLUMN budget_usd     numeric(14, 6) CHECK (budget_usd >= 0),
  ADD COLUMN waiting_reason jsonb;

-- What the agent's output parser found in each attempt.
ALTER TABLE attempts
  ADD COLUMN cost_usd      numeric(14, 6),
  ADD COLUMN input_tokens  bigint,
  ADD COLUMN output_tokens bigint,
  ADD COLUMN turns         integer,
  ADD COLUMN session_id    text,
  ADD COLUMN result_text   text,
  ADD COLUMN reset_at      timestamptz;
-- Recent outcomes per agent (success rate) and per task (cost so far).
CREATE INDEX attempts_agent_finished ON attempts (agent, finished_at);

-- One row per agent profile: its circuit breaker, and the row every admission to that agent locks, so
-- that limits are checked and taken atomically across all agent workers.
CREATE TABLE agent_breakers (
  agent               text PRIMARY KEY,
  state               text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
  failures            integer NOT NULL DEFAULT 0,
  window_started_at   timestamptz,
  opened_at           timestamptz,
  open_until          timestamptz,
  -- The attempt let through as the half-open probe (its lease key).
  probe               text,
  updated_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A running attempt holds a lease on a slot of its agent. The agent worker renews it while the agent
-- runs and deletes it at the end; a dead worker's lease expires, and its slot frees itself.
-- Keyed by attempt: `<task id>/<workflow run id>/<attempt number>`.
CREATE TABLE agent_leases (
  key         text PRIMARY KEY,
  agent       text NOT NULL,
  worker      text NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX agent_leases_agent ON agent_leases (agent, expires_at);

-- Starts in the last minute per agent, for the start-rate limit.
CREATE TABLE agent_starts (
  key        text PRIMARY KEY,
  agent      text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX agent_starts_agent ON agent_starts (agent, started_at);

-- Spend per agent and UTC day, added to as each attempt closes.
CREATE TABLE agent_spend (
  day      date NOT NULL,
  agent    text NOT NULL,
  cost_usd numeric(16, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agent)
);

-- The global daily cap (one row; NULL: no cap).
CREATE TABLE budget (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  daily_usd  numeric(14, 6) CHECK (daily_usd >= 0),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO budget (id, daily_usd) VALUES (true, NULL);
