/**
 * A repo task whose worktree's agent worker goes away (workflows/worktree.ts), as
 * test/workflows/agent-slots.workflow.test.ts tests it and record-plan-histories.ts records it.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { workerQueueFor } from '../../src/workers/worker-queue';
import { WAKE_SIGNAL, type AgentTaskInput } from '../../workflows/definitions';
import { runAgentWorker, type Harness } from './in-process-workers';
import { startAgentTask } from './start-agent-task';
import { waitFor } from './wait-for';

interface Queues {
  workflowQueue: string;
  agentQueue: string;
}

/** Resolves once the task shows `kind` as the reason it waits. */
const taskWaits = (h: Harness, taskId: string, kind: string, timeoutMs?: number): Promise<true> =>
  waitFor(
    `the task to wait (${kind})`,
    async () => {
      const res = await h.pool.query<{ kind: string }>(
        `SELECT waiting_reason->>'kind' AS kind FROM tasks WHERE id = $1`,
        [taskId],
      );
      return res.rows[0]?.kind === kind || undefined;
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );

/**
 * Starts a task in `repo` whose budget (0) holds its attempts back once its worktree is prepared, by
 * whichever worker polls `queues.agentQueue`; resolves once it waits. It asks again only when
 * `letGo()` raises the budget and wakes it.
 */
export async function startHeldRepoTask(h: Harness, queues: Queues, repo: string, prompt: string) {
  const input: Partial<AgentTaskInput> = { repo: { path: repo }, maxAttempts: 1, waitRecheckSeconds: 120 };
  const { taskId, handle } = await startAgentTask(h, queues, { prompt, budgetUsd: 0 }, input);
  await taskWaits(h, taskId, 'task_budget');
  const letGo = async (): Promise<void> => {
    await h.pool.query('UPDATE tasks SET budget_usd = 1 WHERE id = $1', [taskId]);
    await handle.signal(WAKE_SIGNAL);
  };
  return { taskId, handle, letGo };
}

/**
 * A held repo task (`startHeldRepoTask`) whose worktree is on an agent worker with one slot, taken by
 * an agent that hangs (`holder`, started on the worker's own queue); let go, its attempt is taken and
 * waits in line for that slot. Then the worker begins to drain (`stopped` resolves once it has, after
 * the holder is cancelled): it answers that attempt `worker_draining`, and polls no more.
 */
export async function drainWhileInLine(h: Harness, queues: Queues, repo: string, dir: string, prompt: string) {
  const worktreeRoot = join(dir, 'worktrees-draining');
  const draining = await runAgentWorker(h, queues.agentQueue, 'repo-draining', {
    slots: 1,
    worktreeRoot,
    shutdownGraceTime: '1 minute',
  });
  const task = await startHeldRepoTask(h, queues, repo, prompt);
  const held = join(dir, 'holder.start');
  const ownQueue = workerQueueFor(queues.agentQueue, draining.identity);
  const holder = await startAgentTask(
    h,
    { workflowQueue: queues.workflowQueue, agentQueue: ownQueue },
    `@pidfile ${held}\n@hang`,
  );
  await waitFor('the holder to start', () => existsSync(held));
  await task.letGo();
  await waitFor('the attempt to wait in line on the worktree’s worker', async () => {
    const pending = (await task.handle.describe()).raw.pendingActivities?.[0];
    return (
      pending?.activityType?.name === 'runAgent' &&
      pending.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    );
  });
  const stopped = draining.stop();
  await taskWaits(h, task.taskId, 'worker_draining', 15_000);
  return { task, draining, worktreeRoot, holder, stopped };
}
