import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Pool } from 'pg';
import { createPlanActivities } from '../../activities/plan/plan.activities';
import { AttemptStore } from '../../src/store/attempt-store';
import { PlanStore } from '../../src/store/plan-store';
import { insertTask, taskRow } from '../support/task-rows';
import { testEnv } from '../support/test-env';

/** A plan records the end of a task whose workflow closed without recording it, for the run it knows. */
describe("a plan's record of a task closed without its end", () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  const recordChildClosed = (taskId: string, runId: string) =>
    new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(
      createPlanActivities({ plans: new PlanStore(pool), attempts: new AttemptStore(pool) }).recordChildClosed,
      { taskId, runId, ended: 'ended in Temporal (terminated)' },
    );

  it('records a run that wrote nothing yet as failed (crash)', async () => {
    const taskId = await insertTask(pool, { prompt: 'p' });
    const runId = randomUUID();
    await recordChildClosed(taskId, runId);
    const task = await taskRow(pool, taskId);
    assert.deepEqual([task.status, task.error_class], ['failed', 'crash']);
    assert.match(task.error_message ?? '', new RegExp(`workflow run ${runId} ended in Temporal \\(terminated\\)`));
  });

  it('leaves alone a task whose later run (a reset) has recorded itself: that one is the sweep’s', async () => {
    const taskId = await insertTask(pool, { prompt: 'p' });
    await pool.query(`UPDATE tasks SET status = 'running', run_id = $2 WHERE id = $1`, [taskId, randomUUID()]);
    await recordChildClosed(taskId, randomUUID());
    const task = await taskRow(pool, taskId);
    assert.deepEqual([task.status, task.error_class], ['running', null]);
  });
});
