-- The tasks held back by the cluster-wide gate, found without scanning every queued task. Each index
-- holds only the tasks its query looks for, and its predicate is that query's, word for word, so the
-- planner can prove it covers them.

-- The next tasks for a limited agent's free slots (src/store/slot-waiters-store.ts), read each time an
-- attempt of that agent ends: by agent, in the order they are woken (priority, then age).
CREATE INDEX tasks_waiting_for_slot ON tasks ((waiting_reason->>'agent'), priority, created_at)
  WHERE status = 'queued' AND waiting_reason->>'kind' = 'concurrency';

-- Every task held back by a budget (src/store/budget-store.ts waitingForBudget), woken when a budget
-- changes. The workflow id is all the query reads.
CREATE INDEX tasks_waiting_for_budget ON tasks (workflow_id)
  WHERE status = 'queued' AND waiting_reason->>'kind' IN ('daily_budget', 'task_budget');
