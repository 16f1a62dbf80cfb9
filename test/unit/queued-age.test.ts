import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { Pool } from 'pg';
import { DashboardController } from '../../src/api/dashboard/dashboard.controller';
import { DashboardService } from '../../src/api/dashboard/dashboard.service';
import { loadConfig } from '../../src/config/env';
import { TaskStatsStore } from '../../src/store/task-stats-store';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';

/**
 * How long the longest-waiting queued task has waited counts from when it last became queued (its
 * current run's start, or its last attempt's end), not from its creation: a task retried today, or
 * held back by a breaker after its attempts, is not days old. A database of its own, so that no other
 * test's queued task is the oldest.
 */
describe('the age of the oldest queued task', { timeout: 60_000 }, () => {
  let db: ScratchDatabase;
  let pool: Pool;

  /** A queued task created `createdSecondsAgo` ago, with its first run then. */
  async function queuedTask(createdSecondsAgo: number): Promise<string> {
    const id = randomUUID();
    await pool.query(
      `INSERT INTO tasks (id, status, prompt, agent, timeout_seconds, max_attempts, priority, workflow_id, created_at)
       VALUES ($1, 'queued', 'prompt', 'stand-in', 60, 3, 3, $2, now() - make_interval(secs => $3))`,
      [id, `task-${id}`, createdSecondsAgo],
    );
    await pool.query(
      `INSERT INTO task_runs (task_id, number, kind, created_at)
       VALUES ($1, 1, 'submitted', now() - make_interval(secs => $2))`,
      [id, createdSecondsAgo],
    );
    return id;
  }

  before(async () => {
    db = await createScratchDatabase('queued_age');
    pool = new Pool({ connectionString: db.url, max: 4 });
    // Dropping the database at the end ends its idle connections: expected, not an error.
    pool.on('error', () => undefined);
    const DAY = 86_400;

    // Retried 60 s ago, three days after its submission: queued again since its new run began.
    const retried = await queuedTask(3 * DAY);
    await pool.query(
      `INSERT INTO task_runs (task_id, number, kind, created_at) VALUES ($1, 2, 'retry', now() - interval '60 seconds')`,
      [retried],
    );
    await pool.query('UPDATE tasks SET current_run = 2 WHERE id = $1', [retried]);

    // Two attempts over two days, the last ended 30 s ago; now held back by the open breaker.
    const held = await queuedTask(2 * DAY);
    await pool.query(
      `INSERT INTO attempts (task_id, run, number, agent, started_at, finished_at, failure_class)
       VALUES ($1, 1, 1, 'stand-in', now() - interval '2 days', now() - interval '1 day', 'nonzero_exit'),
              ($1, 1, 2, 'stand-in', now() - interval '90 seconds', now() - interval '30 seconds', 'nonzero_exit')`,
      [held],
    );
    await pool.query(`UPDATE tasks SET waiting_reason = '{"kind": "breaker", "agent": "stand-in"}' WHERE id = $1`, [
      held,
    ]);

    // Submitted 90 s ago, no attempt yet: the longest wait.
    await queuedTask(90);

    // Not queued: a task running for days does not count.
    const running = await queuedTask(5 * DAY);
    await pool.query(`UPDATE tasks SET status = 'running' WHERE id = $1`, [running]);

    // A plan submitted two days ago: its first task ended 60 s ago, so the task after it, started then
    // (its run recorded), has waited 60 s; the task after the still running one, and one its plan's
    // maxParallel holds back, wait for their plan, not for an agent.
    const [first, ready, blocked, heldBack] = [
      await queuedTask(2 * DAY),
      await queuedTask(2 * DAY),
      await queuedTask(2 * DAY),
      await queuedTask(2 * DAY),
    ];
    await pool.query('UPDATE tasks SET run_id = $2 WHERE id = $1', [ready, randomUUID()]);
    await pool.query(
      `UPDATE tasks SET status = 'succeeded', finished_at = now() - interval '60 seconds' WHERE id = $1`,
      [first],
    );
    const plan = randomUUID();
    await pool.query(
      `INSERT INTO plans (id, status, max_parallel, on_failure, workflow_id) VALUES ($1, 'running', 2, 'stop', $2)`,
      [plan, `plan-${plan}`],
    );
    await pool.query(
      `INSERT INTO plan_tasks (plan_id, key, position, task_id, depends_on) VALUES
         ($1, 'first', 0, $2, '{}'), ($1, 'ready', 1, $3, '{first}'), ($1, 'running', 2, $4, '{}'),
         ($1, 'blocked', 3, $5, '{first,running}'), ($1, 'held-back', 4, $6, '{}')`,
      [plan, first, ready, running, blocked, heldBack],
    );
  });

  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** 90 s, give or take the time the test takes. */
  const assertNinetySeconds = (age: number | null | undefined, what: string): void => {
    assert.ok(typeof age === 'number' && age >= 90 && age < 150, `${what}: ${age}`);
  };

  it('is reported by GET /metrics (atelier_task_queued_oldest_age_seconds)', async () => {
    const stats = await new TaskStatsStore(pool).stats();
    assert.equal(stats.byStatus.queued, 6);
    assertNinetySeconds(stats.oldestQueuedSeconds, 'oldestQueuedSeconds');
  });

  it("is the dashboard's oldestWaitingSeconds of the agent queue", async () => {
    // No Temporal here: the queue descriptions fail, and the PostgreSQL figures stay.
    const dashboard = new DashboardController(new DashboardService(loadConfig({}), pool, {} as Client));
    const agents = (await dashboard.snapshot()).queues.find((q) => q.role === 'agents');
    assert.equal(agents?.waitingTasks, 4, "not the plan's tasks it has not started");
    assertNinetySeconds(agents?.oldestWaitingSeconds, 'oldestWaitingSeconds');
  });
});
