-- Submissions stored but never started, which the API's sweeper starts (src/api/stranded): found
-- without scanning every task or plan. As in 0009, each predicate is its query's, word for word.
-- A task waiting in a plan is in the first index too until its plan starts it; the query leaves it out.
CREATE INDEX tasks_unstarted ON tasks (created_at) WHERE status = 'queued' AND run_id IS NULL;
CREATE INDEX plans_unstarted ON plans (created_at) WHERE status = 'running' AND run_id IS NULL;
