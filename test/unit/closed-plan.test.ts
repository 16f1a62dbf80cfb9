import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceUnavailableException } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { recordPlanClosedInTemporal } from '../../src/api/plans/closed-plan';
import type { AttemptStore } from '../../src/store/attempt-store';
import type { PlanStore } from '../../src/store/plan-store';
import type { TaskStore } from '../../src/store/task-store';
import type { PlanSkip } from '../../workflows/definitions';

/**
 * A terminated plan whose one task has no run id in PostgreSQL: the plan started it (or not), and it
 * wrote nothing yet, as a task waiting for its file locks. Temporal says the task's workflow is `task`:
 * a status, or undefined for no such workflow.
 */
function terminatedPlan(task: string | undefined) {
  const temporal = {
    workflow: {
      getHandle: (workflowId: string, runId?: string) => ({
        describe: async () => {
          if (workflowId === 'plan-1') return { runId: runId ?? 'plan-run', status: { name: 'TERMINATED' } };
          if (task === undefined) throw new WorkflowNotFoundError('not found', workflowId, runId);
          return { runId: runId ?? 'task-run', status: { name: task } };
        },
      }),
    },
  } as unknown as Client;
  const written = { skips: [] as PlanSkip[], planEnds: 0, taskEnds: [] as (string | undefined)[] };
  const plans = {
    get: async () => ({ tasks: [{ key: 'waits', task_id: 't1', status: 'queued', current_run: 1 }] }),
    recordSkips: async ({ skips }: { skips: PlanSkip[] }) => void written.skips.push(...skips),
    writeOutcome: async () => {
      written.planEnds += 1;
      return { status: 'failed', written: true };
    },
  } as unknown as PlanStore;
  const tasks = { get: async () => ({ id: 't1', workflow_id: 'task-t1', run_id: null }) } as unknown as TaskStore;
  const attempts = {
    closeOpenAttempts: async () => undefined,
    writeTaskOutcome: async (_outcome: unknown, runId?: string) => {
      written.taskEnds.push(runId);
      return { outcome: { status: 'failed', attempt: 0 }, written: true };
    },
  } as unknown as AttemptStore;
  const record = () =>
    recordPlanClosedInTemporal(
      temporal,
      { plans, tasks, attempts },
      { id: 'p1', workflow_id: 'plan-1', run_id: 'plan-run' },
    );
  return { record, written };
}

describe('recordPlanClosedInTemporal, for a task with no run id yet', () => {
  it('answers 503 while the task runs in Temporal, and skips nothing', async () => {
    const { record, written } = terminatedPlan('RUNNING');
    await assert.rejects(
      record(),
      (err) => err instanceof ServiceUnavailableException && /"waits" still runs/.test(err.message),
    );
    assert.deepEqual(written, { skips: [], planEnds: 0, taskEnds: [] });
  });

  it('records the run Temporal closed as failed, not skipped', async () => {
    const { record, written } = terminatedPlan('TERMINATED');
    assert.deepEqual(await record(), { status: 'failed', written: true });
    assert.deepEqual(written, { skips: [], planEnds: 1, taskEnds: ['task-run'] });
  });

  it('skips a task Temporal never heard of: the plan never started it', async () => {
    const { record, written } = terminatedPlan(undefined);
    await record();
    assert.deepEqual(written, {
      skips: [{ key: 'waits', taskId: 't1', reason: 'plan workflow run plan-run ended in Temporal (terminated)' }],
      planEnds: 1,
      taskEnds: [],
    });
  });
});
