import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { temporal } from '@temporalio/proto';
import { workerQueueFor } from '../../src/workers/worker-queue';
import { initRepo } from '../support/git';
import { drainWhileInLine } from '../support/gone-worktree-worker';
import { startAgentTask } from '../support/start-agent-task';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import { startAgentWorkerProcess } from '../support/agent-worker-process';
import { attemptRows } from '../support/task-rows';
import { uniqueQueue } from '../support/test-env';
import { processAlive, waitFor, within } from '../support/wait-for';

/**
 * A harness, a workflow worker and a git repository on fresh queues; the agents mark their start and
 * end in files under `marks` (their times are when they ran). `addAgentWorkers` starts the agent workers.
 */
function slotsFixture(name: string, addAgentWorkers: (f: SlotsFixture) => Promise<void>) {
  const f = {} as SlotsFixture;
  before(async () => {
    f.h = await openHarness();
    f.dir = mkdtempSync(join(tmpdir(), `atelier-${name}-`));
    f.repo = join(f.dir, 'repo');
    f.marks = join(f.dir, 'marks');
    initRepo(f.repo);
    mkdirSync(f.marks);
    f.queues = { workflowQueue: uniqueQueue(`wf-${name}`), agentQueue: uniqueQueue(`agents-${name}`) };
    f.stops = [(await runWorkflowWorker(f.h, f.queues.workflowQueue)).stop];
    await addAgentWorkers(f);
  });
  after(async () => {
    // The last started stops first: a worker process before the in-process workers.
    for (const stop of f.stops.reverse()) await stop();
    await f.h.close();
    rmSync(f.dir, { recursive: true, force: true });
  });
  return f;
}

interface SlotsFixture {
  h: Harness;
  dir: string;
  repo: string;
  marks: string;
  queues: { workflowQueue: string; agentQueue: string };
  stops: (() => Promise<void>)[];
}

/** A task of `seconds` whose agent marks its start and end; in a worktree, it runs on its worker's own queue. */
async function startTask(f: SlotsFixture, key: string, seconds: number, inWorktree: boolean) {
  const mark = (what: string): string => `@pidfile ${join(f.marks, `${key}.${what}`)}`;
  const { handle } = await startAgentTask(f.h, f.queues, [mark('start'), `@sleep ${seconds}`, mark('end')].join('\n'), {
    ...(inWorktree && { repo: { path: f.repo } }),
  });
  return { key, handle };
}

const markTime = (f: SlotsFixture, key: string, what: 'start' | 'end'): number =>
  statSync(join(f.marks, `${key}.${what}`)).mtimeMs;

describe('agent slots of one agent worker', { timeout: 120_000 }, () => {
  const f = slotsFixture('slots', async (fx) => {
    const worker = await runAgentWorker(fx.h, fx.queues.agentQueue, 'one-slot', {
      slots: 1,
      worktreeRoot: join(fx.dir, 'worktrees'),
    });
    fx.stops.push(worker.stop);
  });

  it('runs one agent at a time over its shared and its own queue, and finishes the work of both', async () => {
    const keys = ['own-1', 'shared-1', 'own-2', 'shared-2', 'own-3', 'shared-3'];
    const tasks = await Promise.all(keys.map((key) => startTask(f, key, 1, key.startsWith('own'))));
    // Each result is awaited: a queue starved of its slot would leave its tasks hanging past the timeout.
    for (const { key, handle } of tasks) assert.equal((await handle.result()).status, 'succeeded', key);

    const runs = keys
      .map((key) => ({ key, start: markTime(f, key, 'start'), end: markTime(f, key, 'end') }))
      .sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) {
      const [prev, run] = [runs[i - 1], runs[i]] as [(typeof runs)[number], (typeof runs)[number]];
      assert.ok(run.start >= prev.end, `${run.key} started while ${prev.key} ran: ${JSON.stringify(runs)}`);
    }
  });
});

describe('agent slots of two agent workers', { timeout: 120_000 }, () => {
  const f = slotsFixture('slots2', async (fx) => {
    const first = await runAgentWorker(fx.h, fx.queues.agentQueue, 'first', {
      slots: 1,
      worktreeRoot: join(fx.dir, 'worktrees-1'),
    });
    fx.stops.push(first.stop);
    // One process may not run two workers on one queue: the second is a worker process.
    const second = await startAgentWorkerProcess(fx.h.client, fx.queues.agentQueue, {
      ATELIER_AGENT_SLOTS: '1',
      ATELIER_WORKTREE_ROOT: join(fx.dir, 'worktrees-2'),
    });
    fx.stops.push(second.stop);
  });

  it('binds no more worktree tasks to a worker than it has slots: none waits behind a long one', async () => {
    const keys = ['long', 'short-1', 'short-2', 'short-3'];
    const tasks = await Promise.all(keys.map((key) => startTask(f, key, key === 'long' ? 10 : 0.3, true)));
    for (const { key, handle } of tasks) assert.equal((await handle.result()).status, 'succeeded', key);
    for (const key of keys.slice(1)) {
      // A worker that prepared a second worktree while its slot was kept for the long task's would run
      // that short task only after the long one.
      assert.ok(
        markTime(f, key, 'end') < markTime(f, 'long', 'end'),
        `${key} waited for the long task's worker while the other one idled`,
      );
    }
  });
});

describe('an agent worker that drains', { timeout: 120_000 }, () => {
  const f = slotsFixture('drain', async () => undefined);

  it('starts no agent that waits in line: that attempt runs on another worker, costing no attempt', async () => {
    const draining = await runAgentWorker(f.h, f.queues.agentQueue, 'draining', {
      slots: 1,
      shutdownGraceTime: '1 minute',
    });
    f.stops.push(draining.stop);
    const longStart = join(f.marks, 'long.start');
    const nextStart = join(f.marks, 'next.start');
    // The worker's one slot, taken until the long task is cancelled.
    const long = await startAgentTask(f.h, f.queues, `@pidfile ${longStart}\n@hang`);
    await waitFor('the long agent to start', () => existsSync(longStart));
    // An attempt on the worker's own queue is taken at once, and waits in line for the slot.
    const ownQueue = workerQueueFor(f.queues.agentQueue, draining.identity);
    const next = await startAgentTask(
      f.h,
      { workflowQueue: f.queues.workflowQueue, agentQueue: ownQueue },
      `@pidfile ${nextStart}`,
      { maxAttempts: 1 },
    );
    await waitFor(
      'the attempt to wait in line',
      async () =>
        (await next.handle.describe()).raw.pendingActivities?.[0]?.state ===
        temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
    );

    const stopped = draining.stop();
    await waitFor(
      'the attempt in line to be answered held back',
      async () =>
        (
          await f.h.pool.query<{ kind: string }>(`SELECT waiting_reason->>'kind' AS kind FROM tasks WHERE id = $1`, [
            next.taskId,
          ])
        ).rows[0]?.kind === 'worker_draining',
      { timeoutMs: 15_000 },
    );
    assert.equal(existsSync(nextStart), false, 'its agent never started');
    assert.ok(processAlive(Number(readFileSync(longStart, 'utf8'))), 'the running agent goes on');

    const successor = await runAgentWorker(f.h, ownQueue, 'successor');
    f.stops.push(successor.stop);
    assert.equal((await next.handle.result()).status, 'succeeded');
    const attempts = await attemptRows(f.h.pool, next.taskId);
    assert.deepEqual(
      attempts.map((a) => [a.number, a.failure_class, a.worker]),
      [[1, 'succeeded', successor.identity]],
    );
    await long.handle.cancel();
    await stopped;
  });

  it('moves the worktree of a repo task waiting in line to a worker that stays, costing no attempt', async () => {
    const started = join(f.marks, 'repo.start');
    const { task, draining, worktreeRoot, holder, stopped } = await drainWhileInLine(
      f.h,
      f.queues,
      f.repo,
      f.dir,
      `@pidfile ${started}\n@pidfile out.txt`,
    );
    f.stops.push(draining.stop);
    assert.ok(existsSync(join(worktreeRoot, task.taskId)), 'its worktree is on the draining worker');
    assert.equal(existsSync(started), false, 'its agent never started');

    const successor = await runAgentWorker(f.h, f.queues.agentQueue, 'repo-successor', {
      worktreeRoot: join(f.dir, 'worktrees-repo-successor'),
    });
    f.stops.push(successor.stop);
    // Asked again on the draining worker's own queue, which nobody polls any more, the attempt would
    // wait there for two minutes and then count as a crash.
    const result = await within('the repo task to end', 60_000, task.handle.result());
    assert.equal(result.status, 'succeeded');
    assert.equal(result.attempts, 1);
    assert.deepEqual(result.commit?.changedFiles, ['out.txt']);
    assert.deepEqual(
      (await attemptRows(f.h.pool, task.taskId)).map((a) => [a.number, a.failure_class, a.worker]),
      [[1, 'succeeded', successor.identity]],
      'one attempt, on the worker that stays',
    );
    assert.ok(!existsSync(join(worktreeRoot, task.taskId)), 'the draining worker’s worktree was taken over');
    await holder.handle.cancel();
    await stopped;
  });
});
