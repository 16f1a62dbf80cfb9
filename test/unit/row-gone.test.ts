import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Pool } from 'pg';
import { createPlanActivities } from '../../activities/plan/plan.activities';
import { createBookkeepingActivities } from '../../activities/store/bookkeeping.activities';
import { ROW_GONE } from '../../activities/store/row-gone';
import { AttemptStore } from '../../src/store/attempt-store';
import { PlanStore } from '../../src/store/plan-store';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

/**
 * A workflow whose submission the API removed (its start's answer was lost, and Temporal said it had
 * no such workflow, but the start landed later) must end at its first write, not retry it for ever
 * while holding its locks.
 */
describe('bookkeeping for a task or plan whose rows are gone', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  const env = (): MockActivityEnvironment =>
    new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  const goneForGood = (what: RegExp) => (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, ROW_GONE);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, what);
    return true;
  };

  it('fails for good, naming the task, instead of retrying a write that can never land', async () => {
    const activities = createBookkeepingActivities({ store: new AttemptStore(pool) });
    const taskId = randomUUID();
    const failure = { taskId, attempt: 1, agent: 'stand-in', failureClass: 'invalid_input' as const, message: 'x' };
    await assert.rejects(
      env().run(activities.recordAttemptFailure, failure),
      goneForGood(new RegExp(`task ${taskId} is not in the database`)),
    );
    await assert.rejects(
      env().run(activities.recordTaskOutcome, { taskId, status: 'failed' as const, attempt: 1 }),
      goneForGood(new RegExp(`task ${taskId}`)),
    );
  });

  it("fails a plan's skip for good when its task's row is gone", async () => {
    const activities = createPlanActivities({ plans: new PlanStore(pool), attempts: new AttemptStore(pool) });
    const planId = randomUUID();
    const skips = [{ key: 'b', taskId: randomUUID(), reason: 'dependency a failed' }];
    await assert.rejects(
      env().run(activities.recordPlanSkips, { planId, skips }),
      goneForGood(new RegExp(`plan ${planId} is not in the database`)),
    );
  });

  it('still records a task that is there', async () => {
    const activities = createBookkeepingActivities({ store: new AttemptStore(pool) });
    const taskId = await insertTask(pool, { prompt: 'p' });
    const failure = { taskId, attempt: 1, agent: 'stand-in', failureClass: 'crash' as const, message: 'lost' };
    await env().run(activities.recordAttemptFailure, failure);
    const rows = await pool.query('SELECT failure_class FROM attempts WHERE task_id = $1', [taskId]);
    assert.deepEqual(rows.rows, [{ failure_class: 'crash' }]);
  });
});
