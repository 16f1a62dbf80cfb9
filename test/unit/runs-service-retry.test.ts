import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { encodeToPayloads, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import { AtCapacityException } from '../../src/api/http/concurrency-cap';
import { MAX_RUN_STARTS, RunsService } from '../../src/api/runs/runs.service';
import type { AtelierConfig } from '../../src/config/env';
import type { AttemptStore } from '../../src/store/attempt-store';
import type { PlanStore } from '../../src/store/plan-store';
import type { RunStore } from '../../src/store/run-store';
import type { TaskRow, TaskStore } from '../../src/store/task-store';
import type { AgentTaskInput } from '../../workflows/definitions';
import { waitFor } from '../support/wait-for';

const TASK_ID = '6b164171-2f0e-4c4a-9d6a-1f8f0e7c2a10';

/**
 * A runs service over one failed task whose first run was started on other queues; `held`, when given,
 * is what each start of a run waits for (its row lock held meanwhile).
 */
async function retrySetup(held?: Promise<void>) {
  const converter = loadDataConverter();
  const firstInput = { taskId: TASK_ID, agent: 'echo', agentTaskQueue: 'agents-before', timeoutSeconds: 60 };
  const payloads = await encodeToPayloads(converter, firstInput);
  /** Starts of a run under way (their row locks held). */
  const starting = { count: 0 };
  const started: { type: string; options: { taskQueue: string; args: AgentTaskInput[] } }[] = [];
  const temporal = {
    options: { loadedDataConverter: converter },
    withDeadline: <R>(_deadline: number, fn: () => Promise<R>) => fn(),
    workflow: {
      getHandle: () => ({
        fetchHistory: async () => ({
          events: [
            {
              workflowExecutionStartedEventAttributes: {
                workflowType: { name: 'agentTaskWorkflow' },
                taskQueue: { name: 'workflows-before' },
                input: { payloads },
                priority: { priorityKey: 2 },
              },
            },
          ],
        }),
      }),
      start: async (type: string, options: { taskQueue: string; args: AgentTaskInput[] }) => {
        started.push({ type, options });
        return { firstExecutionRunId: 'run-2' };
      },
    },
  } as unknown as Client;
  const task = { id: TASK_ID, status: 'failed', workflow_id: `task-${TASK_ID}`, run_id: 'run-1', priority: 3 };
  const runs = {
    startRun: async (
      _id: string,
      _kind: string,
      check: (t: TaskRow) => void,
      start: () => Promise<{ runId: string }>,
    ) => {
      check(task as TaskRow);
      starting.count += 1;
      await held;
      return { number: 2, fromRun: 1, runId: (await start()).runId };
    },
  } as unknown as RunStore;
  const service = new RunsService(
    {
      ATELIER_WORKFLOW_QUEUE: 'workflows-now',
      ATELIER_AGENT_QUEUE: 'agents-now',
      TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
      TEMPORAL_NAMESPACE: 'default',
    } as AtelierConfig,
    temporal,
    { get: async () => task } as unknown as TaskStore,
    runs,
    {} as AttemptStore,
    { skippedDependant: async () => undefined } as unknown as PlanStore,
  );

  return { service, started, firstInput, starting };
}

describe('a retry', () => {
  it('starts the run before it again, on the task queues configured now', async () => {
    const { service, started, firstInput } = await retrySetup();
    const run = await service.retry(TASK_ID);
    assert.equal(run.runId, 'run-2');
    assert.equal(started.length, 1);
    assert.equal(started[0]?.type, 'agentTaskWorkflow');
    assert.equal(started[0]?.options.taskQueue, 'workflows-now');
    assert.deepEqual(started[0]?.options.args, [{ ...firstInput, agentTaskQueue: 'agents-now' }]);
  });

  it('is refused with 503 and Retry-After while MAX_RUN_STARTS retries and resets start their runs', async () => {
    let release = (): void => undefined;
    const { service, started, starting } = await retrySetup(new Promise<void>((resolve) => (release = resolve)));
    const under = Array.from({ length: MAX_RUN_STARTS }, () => service.retry(TASK_ID));
    await waitFor('every retry to be starting its run', () => starting.count === MAX_RUN_STARTS);
    const refused = await service.retry(TASK_ID).catch((err: unknown) => err);
    assert.ok(refused instanceof AtCapacityException, String(refused));
    assert.equal(refused.retryAfterSeconds, 5);
    release();
    assert.equal((await Promise.all(under)).length, MAX_RUN_STARTS);
    assert.equal(started.length, MAX_RUN_STARTS, 'the refused retry started nothing');
  });
});
