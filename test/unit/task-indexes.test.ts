import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { BudgetStore } from '../../src/store/budget-store';
import { PlanStore } from '../../src/store/plan-store';
import { SlotWaitersStore } from '../../src/store/slot-waiters-store';
import { FAILED_BY_CLASS_SQL } from '../../src/store/task-stats-store';
import { TaskStore } from '../../src/store/task-store';
import { countingPool } from '../support/counting-pool';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';

/**
 * The queries that find tasks held back by the gate, or stored and never started, read their partial
 * indexes (migrations 0009 and 0011), not every queued task. A database of their own, filled as a busy
 * cluster's: many finished tasks and plans, many tasks queued on Temporal's queue without a wait, a few
 * waiting for a slot or a budget, a few never started. The planner then chooses as it would in
 * production.
 */
describe('indexes of the tasks held back or never started', { timeout: 60_000 }, () => {
  let db: ScratchDatabase;
  let pool: Pool;

  before(async () => {
    db = await createScratchDatabase('waiting_indexes');
    pool = new Pool({ connectionString: db.url, max: 2 });
    // Dropping the database at the end ends its idle connections: expected, not an error.
    pool.on('error', () => undefined);
    await pool.query(
      `INSERT INTO tasks (id, status, prompt, agent, timeout_seconds, max_attempts, priority, workflow_id, created_at,
                          waiting_reason, run_id)
       SELECT gen_random_uuid(), CASE WHEN g <= 5000 THEN 'queued' WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
              'prompt', 'agent-' || g % 5,
              600, 3, 1 + g % 5, 'task-' || g, now() - g * interval '1 second',
              CASE WHEN g <= 400 THEN jsonb_build_object('kind', 'concurrency', 'agent', 'agent-' || g % 5)
                   WHEN g <= 450 THEN jsonb_build_object('kind', CASE WHEN g % 2 = 0 THEN 'daily_budget' ELSE 'task_budget' END)
              END,
              CASE WHEN g % 1000 <> 0 THEN 'run-' || g END
       FROM generate_series(1, 50000) g`,
    );
    await pool.query(
      `INSERT INTO plans (id, status, max_parallel, on_failure, workflow_id, run_id, created_at)
       SELECT gen_random_uuid(), CASE WHEN g <= 100 THEN 'running' ELSE 'succeeded' END, 4, 'stop', 'plan-' || g,
              CASE WHEN g % 1000 <> 0 THEN 'run-' || g END, now() - g * interval '1 second'
       FROM generate_series(1, 20000) g`,
    );
    await pool.query(`UPDATE tasks SET error_class = 'class-' || (created_at::time)::text WHERE status = 'failed'`);
    await pool.query('VACUUM ANALYZE tasks');
    await pool.query('ANALYZE plans');
  });
  after(async () => {
    await pool.end();
    await db.drop();
  });

  /** The plan of the one statement `query` sends, with `params`. */
  const planOf = async (query: (pool: Pool) => Promise<unknown>, params: unknown[] = []): Promise<string> => {
    const statements: string[] = [];
    await query(countingPool(pool, statements));
    assert.equal(statements.length, 1);
    const res = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statements[0]}`, params);
    return res.rows.map((r) => r['QUERY PLAN']).join('\n');
  };

  it('finds the next tasks for a free slot of an agent in the index, already in their order', async () => {
    const plan = await planOf((p) => new SlotWaitersStore(p).next('agent-3', 4), ['agent-3', 4]);
    assert.match(plan, /Index Scan using tasks_waiting_for_slot on tasks/, plan);
    assert.doesNotMatch(plan, /Sort/, plan);
  });

  it('finds the tasks waiting for a budget in the index', async () => {
    const plan = await planOf((p) => new BudgetStore(p).waitingForDailyBudget());
    // An index, index-only or bitmap scan: whichever, of this index alone.
    assert.match(plan, /Scan (using|on) tasks_waiting_for_budget\b/, plan);
    assert.doesNotMatch(plan, /Seq Scan|tasks_status_newest/, plan);
  });

  it('finds the tasks and plans stored but never started in their indexes (migration 0011)', async () => {
    const tasks = await planOf((p) => new TaskStore(p).strandedIds(120, 50), [120, 50]);
    assert.match(tasks, /Index Scan using tasks_unstarted on tasks/, tasks);
    assert.doesNotMatch(tasks, /Seq Scan on tasks/, tasks);
    const plans = await planOf((p) => new PlanStore(p).strandedIds(120, 50), [120, 50]);
    assert.match(plans, /Scan (using|on) plans_unstarted\b/, plans);
  });

  it('counts failed tasks by class in their index alone (migration 0016), for every metrics scrape', async () => {
    const res = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${FAILED_BY_CLASS_SQL}`);
    const plan = res.rows.map((r) => r['QUERY PLAN']).join('\n');
    assert.match(plan, /Index Only Scan using tasks_failed_by_class on tasks/, plan);
  });
});
