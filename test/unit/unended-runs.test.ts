import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { PlanStore } from '../../src/store/plan-store';
import { TaskStore } from '../../src/store/task-store';
import { workflowIdForPlan } from '../../workflows/definitions';
import { newTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

describe('TaskStore.unendedRunsOf', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  it("answers a task without a run id, but not a plan's task, which its plan records", async () => {
    const tasks = new TaskStore(pool);
    const { task: alone } = await tasks.create(newTask('p'));
    const planId = randomUUID();
    const planned = newTask('p');
    await new PlanStore(pool).create({
      id: planId,
      maxParallel: 1,
      onFailure: 'stop',
      workflowId: workflowIdForPlan(planId),
      tasks: [{ ...planned, key: 'a', dependsOn: [] }],
    });
    const { task: started } = await tasks.create(newTask('p'));
    await tasks.setRunId(started.id, 'run-1');

    const found = await tasks.unendedRunsOf([alone.workflow_id, planned.workflowId, started.workflow_id]);
    assert.deepEqual(found.map((r) => r.id).sort(), [alone.id, started.id].sort());
  });
});
