import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { AttemptStore } from '../../src/store/attempt-store';
import { PlanStore } from '../../src/store/plan-store';
import { FAILURE_CLASSES, workflowIdForPlan } from '../../workflows/definitions';
import { eventRows, newTask, taskRow } from '../support/task-rows';
import { testEnv } from '../support/test-env';

describe('PlanStore.recordSkips', () => {
  let pool: Pool;
  let plans: PlanStore;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    plans = new PlanStore(pool);
  });
  after(() => pool.end());

  /** A stored plan of one task, `a`; answers the plan's and the task's ids. */
  async function planOfOne(): Promise<{ planId: string; taskId: string }> {
    const planId = randomUUID();
    const task = newTask('p');
    await plans.create({
      id: planId,
      maxParallel: 1,
      onFailure: 'stop',
      workflowId: workflowIdForPlan(planId),
      tasks: [{ ...task, key: 'a', dependsOn: [] }],
    });
    return { planId, taskId: task.id };
  }

  it('skips a task not started: cancelled, with its first run’s terminal event', async () => {
    const { planId, taskId } = await planOfOne();
    await plans.recordSkips({ planId, skips: [{ key: 'a', taskId, reason: 'plan cancelled' }] });
    assert.equal((await taskRow(pool, taskId)).status, 'cancelled');
    assert.deepEqual(
      (await eventRows(pool, taskId)).filter((e) => e.terminal).map((e) => e.kind),
      ['cancelled'],
    );
    assert.equal((await plans.get(planId))?.tasks[0]?.skipped_reason, 'plan cancelled');
  });

  it('leaves alone a task whose first write came after the skip was decided: its run records its end', async () => {
    const { planId, taskId } = await planOfOne();
    const runId = randomUUID();
    const attempts = new AttemptStore(pool);
    assert.ok(await attempts.startAttempt({ taskId, runId, attempt: 1, agent: 'stand-in', worker: 'w' }));

    await plans.recordSkips({ planId, skips: [{ key: 'a', taskId, reason: 'plan workflow run r ended' }] });
    assert.equal((await taskRow(pool, taskId)).status, 'running');
    assert.deepEqual(
      (await eventRows(pool, taskId)).filter((e) => e.terminal),
      [],
    );
    assert.equal((await plans.get(planId))?.tasks[0]?.skipped_reason, null);

    await attempts.recordTaskOutcome(
      { taskId, status: 'failed', attempt: 0, error: { class: FAILURE_CLASSES.crash, message: 'terminated' } },
      runId,
    );
    assert.equal((await taskRow(pool, taskId)).status, 'failed');
  });
});
