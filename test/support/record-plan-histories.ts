/**
 * Records histories of the plan and lock-manager workflows, and of task workflows that need workers of
 * their own, into test/histories/, beside the task workflow's (test/support/record-histories.ts), so
 * that test/workflows/replay.test.ts replays them too. Like that recorder, it writes only the files
 * that do not exist yet, unless named:
 *
 *   npm run build && node dist/test/support/record-plan-histories.js [plan-continue-after-failure …]
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { PlanStore } from '../../src/store/plan-store';
import type { agentTaskWorkflow, planWorkflow } from '../../workflows';
import {
  CANCEL_PLAN_TASK_SIGNAL,
  workflowIdForLocks,
  workflowIdForPlan,
  workflowIdForTask,
  type AgentTaskInput,
  type PlanInput,
  type PlanTaskInput,
} from '../../workflows/definitions';
import { initRepo } from './git';
import { drainWhileInLine, startHeldRepoTask } from './gone-worktree-worker';
import { holdFirstLockRequest } from './held-lock-request';
import { completeFirstTaskBeforePatches } from './plan-before-patches';
import { HISTORIES_DIR } from './record-histories';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from './in-process-workers';
import { attemptRows, insertTask } from './task-rows';
import { uniqueQueue } from './test-env';
import { waitFor, within } from './wait-for';
import { startTestServices } from './test-services';
import { startAgentTask } from './start-agent-task';

type TaskHandle = WorkflowHandle<typeof agentTaskWorkflow>;

interface Queues {
  workflowQueue: string;
  agentQueue: string;
}

const taskInput = (q: Queues, taskId: string, extra: Partial<AgentTaskInput> = {}): AgentTaskInput => ({
  taskId,
  agent: 'stand-in',
  timeoutSeconds: 30,
  maxAttempts: 1,
  priority: 3,
  agentTaskQueue: q.agentQueue,
  backoffSeconds: 0.1,
  ...extra,
});

interface PlanSpec {
  key: string;
  prompt: string;
  dependsOn: string[];
}

/** Stores and starts a plan (`maxParallel` 2, `continue`) of `specs`, its tasks given `extra`. */
async function startPlan(h: Harness, q: Queues, specs: PlanSpec[], extra: Partial<AgentTaskInput> = {}) {
  const planId = randomUUID();
  const tasks = specs.map((s) => ({ ...s, id: randomUUID() }));
  await new PlanStore(h.pool).create({
    id: planId,
    maxParallel: 2,
    onFailure: 'continue',
    workflowId: workflowIdForPlan(planId),
    tasks: tasks.map((s) => ({
      id: s.id,
      key: s.key,
      dependsOn: s.dependsOn,
      prompt: s.prompt,
      agent: 'stand-in',
      timeoutSeconds: 30,
      maxAttempts: 1,
      priority: 3,
      labels: {},
      workflowId: workflowIdForTask(s.id),
    })),
  });
  const input: PlanInput = {
    planId,
    maxParallel: 2,
    onFailure: 'continue',
    tasks: tasks.map((s) => ({ key: s.key, dependsOn: s.dependsOn, task: taskInput(q, s.id, extra) })),
  };
  const handle = await h.client.workflow.start<typeof planWorkflow>('planWorkflow', {
    taskQueue: q.workflowQueue,
    workflowId: workflowIdForPlan(planId),
    args: [input],
  });
  return { handle, done: handle.result(), input };
}

/** Runs a plan as `startPlan` starts it; resolves when it ends. */
async function runPlan(h: Harness, q: Queues, specs: PlanSpec[], extra: Partial<AgentTaskInput> = {}) {
  const { handle, done } = await startPlan(h, q, specs, extra);
  return { handle, result: await done };
}

/** A diamond with `continue`: one branch fails, its dependant is skipped, the other branch succeeds. */
async function planContinueAfterFailure(h: Harness, q: Queues): Promise<string> {
  const { handle, result } = await runPlan(h, q, [
    { key: 'a', prompt: '@print a', dependsOn: [] },
    { key: 'b', prompt: '@exit 1', dependsOn: ['a'] },
    { key: 'c', prompt: '@print c', dependsOn: ['a'] },
    { key: 'd', prompt: '@print d', dependsOn: ['b', 'c'] },
  ]);
  if (result.status !== 'failed' || result.skipped.join() !== 'd')
    throw new Error(`unexpected ${JSON.stringify(result)}`);
  return historyToJSON(await handle.fetchHistory());
}

/** A chain whose second task is cancelled on its own (`cancelPlanTask`) while the first runs. */
async function planCancelTaskRequest(h: Harness, q: Queues): Promise<string> {
  const { handle, done } = await startPlan(h, q, [
    { key: 'a', prompt: '@sleep 1\na', dependsOn: [] },
    { key: 'b', prompt: '@print b', dependsOn: ['a'] },
    { key: 'c', prompt: '@print c', dependsOn: ['b'] },
  ]);
  await handle.signal(CANCEL_PLAN_TASK_SIGNAL, 'b');
  const result = await done;
  if (result.status !== 'failed' || result.failed.join() !== 'b' || result.skipped.join() !== 'c') {
    throw new Error(`unexpected ${JSON.stringify(result)}`);
  }
  return historyToJSON(await handle.fetchHistory());
}

/**
 * A chain whose second task is cancelled on its own (`cancelPlanTask`) in a plan that code from before
 * patch plan-fresh-ready started (its first workflow task done as that code did), so it runs by rounds.
 * Since patch plan-by-rounds-honours-cancels the task is skipped; before, it started all the same
 * (`honoured` false), and such plans' histories must replay as they ran.
 */
const planByRoundsCancelTaskRequest =
  (honoured: boolean) =>
  async (h: Harness, q: Queues): Promise<string> => {
    const workflowQueue = uniqueQueue('record-wf-by-rounds');
    const { handle, done, input } = await startPlan(h, { ...q, workflowQueue }, [
      { key: 'a', prompt: '@print a', dependsOn: [] },
      { key: 'b', prompt: '@print b', dependsOn: ['a'] },
    ]);
    await completeFirstTaskBeforePatches(h.client, workflowQueue, input.tasks[0] as PlanTaskInput);
    await handle.signal(CANCEL_PLAN_TASK_SIGNAL, 'b');
    const worker = await runWorkflowWorker(h, workflowQueue);
    try {
      const result = await done;
      const expected = honoured ? { succeeded: 'a', failed: 'b' } : { succeeded: 'a,b', failed: '' };
      if (result.succeeded.join() !== expected.succeeded || result.failed.join() !== expected.failed) {
        throw new Error(`unexpected ${JSON.stringify(result)}`);
      }
      return historyToJSON(await handle.fetchHistory());
    } finally {
      await worker.stop();
    }
  };

/**
 * A chain whose first task's workflow is terminated while its agent runs, as in the Temporal Web UI: the
 * plan records that task's end (patch plan-records-closed-children), then skips the next one.
 */
async function planRecordsClosedChildren(h: Harness, q: Queues): Promise<string> {
  const { handle, done } = await startPlan(h, q, [
    { key: 'a', prompt: '@sleep 30', dependsOn: [] },
    { key: 'b', prompt: '@print b', dependsOn: ['a'] },
  ]);
  const planId = handle.workflowId.slice(workflowIdForPlan('').length);
  const found = await h.pool.query<{ task_id: string }>(
    "SELECT task_id FROM plan_tasks WHERE plan_id = $1 AND key = 'a'",
    [planId],
  );
  const taskId = found.rows[0]?.task_id as string;
  await waitFor('the first task to run', async () => (await attemptRows(h.pool, taskId)).length > 0);
  await h.client.workflow.getHandle(workflowIdForTask(taskId)).terminate('recording a history');
  const result = await done;
  const task = await h.pool.query<{ status: string; error_class: string }>(
    'SELECT status, error_class FROM tasks WHERE id = $1',
    [taskId],
  );
  if (result.status !== 'failed' || result.skipped.join() !== 'b' || task.rows[0]?.error_class !== 'crash') {
    throw new Error(`unexpected ${JSON.stringify({ result, task: task.rows[0] })}`);
  }
  return historyToJSON(await handle.fetchHistory());
}

/**
 * A chain cancelled as a whole while its first task runs: the running task is cancelled (its agent
 * killed), the next one skipped, and the plan's end recorded outside the cancelled scope.
 */
async function planCancelled(h: Harness, q: Queues): Promise<string> {
  const { handle, done } = await startPlan(h, q, [
    { key: 'a', prompt: '@sleep 30', dependsOn: [] },
    { key: 'b', prompt: '@print b', dependsOn: ['a'] },
  ]);
  for (let i = 0; ; i += 1) {
    const events = (await handle.fetchHistory()).events ?? [];
    if (events.some((e) => e.childWorkflowExecutionStartedEventAttributes)) break;
    if (i >= 100) throw new Error('the first task did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  await handle.cancel();
  const ended = await done.then(
    (result) => `unexpected ${JSON.stringify(result)}`,
    (err: Error) => err.name,
  );
  if (ended !== 'WorkflowFailedError') throw new Error(`the plan ended so: ${ended}`);
  return historyToJSON(await handle.fetchHistory());
}

/** A diamond in a git repository: the last task starts from both middle tasks' commits, merged. */
async function planMergeDependencies(h: Harness, q: Queues): Promise<string> {
  const repo = mkdtempSync(join(tmpdir(), 'atelier-history-plan-merge-'));
  try {
    initRepo(repo);
    const { handle, result } = await runPlan(
      h,
      q,
      [
        { key: 'a', prompt: '@pidfile a.txt', dependsOn: [] },
        { key: 'b', prompt: '@pidfile b.txt', dependsOn: ['a'] },
        { key: 'c', prompt: '@pidfile c.txt', dependsOn: ['a'] },
        { key: 'd', prompt: '@pidfile d.txt', dependsOn: ['b', 'c'] },
      ],
      { repo: { path: repo } },
    );
    if (result.status !== 'succeeded') throw new Error(`unexpected ${JSON.stringify(result)}`);
    return historyToJSON(await handle.fetchHistory());
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

/** The lock manager of a repository after two overlapping tasks took and released their locks in turn. */
async function lockManager(h: Harness, q: Queues): Promise<string> {
  const repo = `/tmp/atelier-history-locks-${randomUUID()}`;
  const tasks = await Promise.all(
    ['@print one', '@print two'].map(async (prompt) => {
      const taskId = await insertTask(h.pool, { prompt });
      return h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
        taskQueue: q.workflowQueue,
        workflowId: workflowIdForTask(taskId),
        args: [taskInput(q, taskId, { locks: { repo, globs: ['src/**'] } })],
      });
    }),
  );
  await Promise.all(tasks.map((t) => t.result()));
  const manager = h.client.workflow.getHandle(workflowIdForLocks(repo));
  // The manager runs on; its history so far holds both grants and both releases.
  for (let i = 0; i < 100; i += 1) {
    const history = await manager.fetchHistory();
    const released = (history.events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'releaseLocks',
    ).length;
    const completed = (history.events ?? []).at(-1)?.workflowTaskCompletedEventAttributes !== undefined;
    if (released === 2 && completed) return historyToJSON(history);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the lock manager did not see both releases');
}

/**
 * A task cancelled while its first lock request, which starts its repository's lock manager, is held
 * back: the release finds no manager, and the request arrives after it.
 */
async function lockedTaskCancelledWhileRequesting(h: Harness, q: Queues): Promise<string> {
  const held = holdFirstLockRequest();
  const workflowQueue = uniqueQueue('record-held-locks');
  const worker = await runWorkflowWorker(h, workflowQueue, { wrapLocks: held.wrap });
  try {
    const taskId = await insertTask(h.pool, { prompt: 'never runs' });
    const repo = `/tmp/atelier-history-locks-${randomUUID()}`;
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [taskInput(q, taskId, { locks: { repo, globs: ['src/**'] } })],
    });
    try {
      await within('the lock request to be sent', 30_000, held.reached);
      await handle.cancel();
      const ended = await handle.result().then(
        (result) => `unexpected ${JSON.stringify(result)}`,
        (err: Error) => err.name,
      );
      if (ended !== 'WorkflowFailedError') throw new Error(`the task ended so: ${ended}`);
    } finally {
      held.letGo();
    }
    await within('the held request to be delivered', 30_000, held.delivered);
    return historyToJSON(await handle.fetchHistory());
  } finally {
    await worker.stop();
  }
}

/**
 * Runs `scenario` on a fresh agent queue with a git repository of its own (`dir/repo`); records the
 * history of the task it returns once that task has ended `expect` (its agent writes out.txt).
 */
async function recordRepoTask(
  h: Harness,
  q: Queues,
  expect: 'succeeded' | 'failed',
  scenario: (queues: Queues, repo: string, dir: string) => Promise<{ taskId: string; handle: TaskHandle }>,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-history-gone-worker-'));
  try {
    const repo = join(dir, 'repo');
    initRepo(repo);
    const { taskId, handle } = await scenario({ ...q, agentQueue: uniqueQueue('record-gone-worker') }, repo, dir);
    const ended = await handle.result().then(
      () => 'succeeded',
      () => 'failed',
    );
    const attempts = (await attemptRows(h.pool, taskId)).map((a) => `${a.number}:${a.failure_class}`);
    if (ended !== expect) throw new Error(`the task ${ended}, not ${expect} (attempts ${attempts.join()})`);
    if (ended === 'succeeded' && attempts.join() !== '1:succeeded') throw new Error(`attempts ${attempts.join()}`);
    return historyToJSON(await handle.fetchHistory());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A repo task whose attempt waits in line on its worktree's worker when that worker drains; a worker
 * that stays comes up. Since patch worktree-leaves-gone-workers the task moves there and succeeds with
 * its one attempt; before, it asked the drained worker again and failed two minutes later (`expect`).
 */
const worktreeWorkerDrains = (expect: 'succeeded' | 'failed') => (h: Harness, q: Queues) =>
  recordRepoTask(h, q, expect, async (queues, repo, dir) => {
    const { task, draining, holder, stopped } = await drainWhileInLine(h, queues, repo, dir, '@pidfile out.txt');
    const stays = await runAgentWorker(h, queues.agentQueue, 'stays', { worktreeRoot: join(dir, 'worktrees-stays') });
    try {
      await task.handle.result().catch(() => undefined);
      await holder.handle.cancel().catch(() => undefined);
      await stopped;
    } finally {
      await Promise.all([draining.stop(), stays.stop()]);
    }
    return task;
  });

/**
 * A repo task held back (its budget) while the worker holding its worktree stops; let go, its attempt
 * waits two minutes on that worker's own queue, which nobody polls, then moves to a worker that stays
 * and runs there as the same attempt (patch worktree-leaves-gone-workers).
 */
const worktreeWorkerUnpolled = (h: Harness, q: Queues) =>
  recordRepoTask(h, q, 'succeeded', async (queues, repo, dir) => {
    const gone = await runAgentWorker(h, queues.agentQueue, 'gone', { worktreeRoot: join(dir, 'worktrees-gone') });
    const task = await startHeldRepoTask(h, queues, repo, '@pidfile out.txt');
    await gone.stop();
    const stays = await runAgentWorker(h, queues.agentQueue, 'stays', { worktreeRoot: join(dir, 'worktrees-stays') });
    try {
      await task.letGo();
      await task.handle.result().catch(() => undefined);
    } finally {
      await stays.stop();
    }
    return task;
  });

/**
 * A repo task whose worktree's directory is deleted while its agent runs; the agent then fails its one
 * attempt. Nothing is left to commit or remove there, and since patch lost-worktree-unregistered the
 * task's end has a worker remove the worktree's registration.
 */
const worktreeDirectoryGone = (h: Harness, q: Queues) =>
  recordRepoTask(h, q, 'failed', async (queues, repo, dir) => {
    const worktreeRoot = join(dir, 'worktrees');
    const worker = await runAgentWorker(h, queues.agentQueue, 'loses-worktree', { worktreeRoot });
    try {
      const started = join(dir, 'started');
      const task = await startAgentTask(h, queues, `@pidfile ${started}\n@wait-file ${started}.go\n@exit 3`, {
        repo: { path: repo },
      });
      await waitFor('the agent to start', () => existsSync(started));
      rmSync(join(worktreeRoot, task.taskId), { recursive: true, force: true });
      writeFileSync(`${started}.go`, '');
      await task.handle.result().catch(() => undefined);
      return task;
    } finally {
      await worker.stop();
    }
  });

const RECORDERS: Record<string, (h: Harness, q: Queues) => Promise<string>> = {
  'plan-continue-after-failure': planContinueAfterFailure,
  'plan-merge-dependencies': planMergeDependencies,
  // Patch plan-fresh-ready: the same scenario, ready tasks looked at before each start; and a task's own cancel.
  'plan-fresh-ready': planContinueAfterFailure,
  // Patch plan-start-together: the same scenario, the ready tasks that fit started in one workflow task.
  'plan-start-together': planContinueAfterFailure,
  'plan-cancel-task-request': planCancelTaskRequest,
  // Recorded before patch plan-by-rounds-honours-cancels: a plan running by rounds started the task anyway.
  'plan-by-rounds-cancel-ignored': planByRoundsCancelTaskRequest(false),
  // Patch plan-by-rounds-honours-cancels: the same scenario, the task skipped.
  'plan-by-rounds-honours-cancels': planByRoundsCancelTaskRequest(true),
  // Patch plan-records-closed-children: a task terminated in Temporal has its end recorded by its plan.
  'plan-records-closed-children': planRecordsClosedChildren,
  'plan-cancelled': planCancelled,
  'lock-manager': lockManager,
  // Patch lock-manager-reap-schedule: the same scenario, reaping on its own schedule.
  'lock-manager-reap-schedule': lockManager,
  // Patch lock-manager-changes-during-grant: the same scenario, counting changes from before each grant.
  'lock-manager-changes-during-grant': lockManager,
  // Patch lock-manager-release-before-request: the same scenario, early releases remembered.
  'lock-manager-release-before-request': lockManager,
  // Patch lock-manager-remember-releases: the same scenario, every release remembered.
  'lock-manager-remember-releases': lockManager,
  // Patch lock-manager-idle-without-timer: the same scenario, no timer once the table is empty.
  'lock-manager-idle-without-timer': lockManager,
  // A task cancelled while its first lock request is on its way: the release finds no lock manager.
  'locked-task-cancelled-while-requesting': lockedTaskCancelledWhileRequesting,
  // Patch locks-release-starts-manager: the same scenario, the release starting the lock manager.
  'locks-release-starts-manager': lockedTaskCancelledWhileRequesting,
  // Recorded before patch worktree-leaves-gone-workers: the attempt asked the drained worker again.
  'worktree-stays-on-draining-worker': worktreeWorkerDrains('failed'),
  // Patch worktree-leaves-gone-workers: the same scenario, the worktree moving to a worker that stays.
  'worktree-leaves-draining-worker': worktreeWorkerDrains('succeeded'),
  // Patch worktree-leaves-gone-workers: an attempt no worker took, asked again where the worktree moved.
  'worktree-leaves-unpolled-worker': worktreeWorkerUnpolled,
  // Patch lost-worktree-unregistered: a worktree whose directory is gone has its registration removed.
  'worktree-gone-unregistered': worktreeDirectoryGone,
};

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const names = Object.keys(RECORDERS).filter((n) =>
    only.length > 0 ? only.includes(n) : !existsSync(join(HISTORIES_DIR, `${n}.json`)),
  );
  if (names.length === 0) return void process.stdout.write('every history is recorded already\n');
  const services = await startTestServices(`atelier_record_plans_${process.pid}`);
  process.env.TEMPORAL_ADDRESS = services.temporalAddress;
  process.env.DATABASE_URL = services.databaseUrl;
  try {
    const h = await openHarness();
    const q = { workflowQueue: uniqueQueue('record-wf'), agentQueue: uniqueQueue('record-agents') };
    const workers = await Promise.all([runWorkflowWorker(h, q.workflowQueue), runAgentWorker(h, q.agentQueue)]);
    try {
      for (const name of names) {
        const file = join(HISTORIES_DIR, `${name}.json`);
        writeFileSync(file, `${await (RECORDERS[name] as (h: Harness, q: Queues) => Promise<string>)(h, q)}\n`);
        process.stdout.write(`recorded ${file}\n`);
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await h.close();
    }
  } finally {
    await services.stop();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`recording histories failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
