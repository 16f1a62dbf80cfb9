import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import { startTwoAgentWorkers, type TwoAgentWorkers } from '../support/agent-worker-process';
import type { Harness } from '../support/in-process-workers';
import { insertTask } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

type TaskHandle = WorkflowHandle<typeof agentTaskWorkflow>;

interface Interval {
  worker: string;
  started_at: Date;
  finished_at: Date;
}

/** The most attempts that ever ran at once, from their start and end times. */
function peakConcurrency(intervals: Interval[]): number {
  const events = intervals.flatMap((i) => [
    [i.started_at.getTime(), 1],
    [i.finished_at.getTime(), -1],
  ]);
  // At equal times an end comes before a start: an attempt that ends as another starts is not overlap.
  events.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let running = 0;
  let peak = 0;
  for (const [, delta] of events) {
    running += delta as number;
    peak = Math.max(peak, running);
  }
  return peak;
}

/**
 * Cluster-wide limits hold across agent workers: an in-process worker and a worker process, each with
 * slots to spare, share the `limited` profile's 2 concurrent runs and `start-limited`'s 3 starts a minute.
 */
describe('cluster-wide limits', { timeout: 90_000 }, () => {
  let cluster: TwoAgentWorkers;
  let h: Harness;
  let queues: TwoAgentWorkers['queues'];

  before(async () => {
    cluster = await startTwoAgentWorkers('limits', 4);
    ({ h, queues } = cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  async function startTask(
    agent: string,
    prompt: string,
    waitRecheckSeconds = 0.1,
  ): Promise<{ taskId: string; handle: TaskHandle }> {
    const taskId = await insertTask(h.pool, { prompt, agent });
    const input: AgentTaskInput = {
      taskId,
      agent,
      timeoutSeconds: 30,
      maxAttempts: 1,
      priority: 3,
      agentTaskQueue: queues.agentQueue,
      backoffSeconds: 0.1,
      waitRecheckSeconds,
    };
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [input],
    });
    return { taskId, handle };
  }

  const waitingKinds = async (taskIds: string[]): Promise<string[]> =>
    (
      await h.pool.query<{ kind: string }>(
        `SELECT waiting_reason->>'kind' AS kind FROM tasks WHERE id = ANY($1) AND status = 'queued' AND waiting_reason IS NOT NULL`,
        [taskIds],
      )
    ).rows.map((r) => r.kind);

  it('never runs more than maxConcurrent at once across workers, and the others wait visibly', async () => {
    const tasks = await Promise.all(
      Array.from({ length: 8 }, (_, i) => startTask('limited', `@sleep 0.4\n@print task ${i}`)),
    );
    const ids = tasks.map((t) => t.taskId);
    const seen = await waitFor('tasks to wait for a slot', async () => {
      const kinds = await waitingKinds(ids);
      return kinds.length > 0 ? kinds : undefined;
    });
    assert.ok(
      seen.every((k) => k === 'concurrency'),
      seen.join(),
    );
    for (const { handle } of tasks) await handle.result();

    const intervals = (
      await h.pool.query<Interval>(
        'SELECT worker, started_at, finished_at FROM attempts WHERE task_id = ANY($1) ORDER BY started_at',
        [ids],
      )
    ).rows;
    assert.equal(intervals.length, 8, 'one attempt per task: waiting is not an attempt');
    assert.equal(peakConcurrency(intervals), 2, 'the limit is reached and never exceeded');
    assert.equal(new Set(intervals.map((i) => i.worker)).size, 2, 'both agent workers ran attempts');
  });

  it('wakes the task next in line as soon as a slot frees, long before its next recheck', async () => {
    const holders = await Promise.all([0, 1].map((i) => startTask('limited', `@sleep 3\n@print holder ${i}`)));
    await waitFor('both holders to run', async () => {
      const res = await h.pool.query('SELECT 1 FROM attempts WHERE task_id = ANY($1)', [holders.map((t) => t.taskId)]);
      return res.rowCount === 2;
    });
    // Its first recheck would come after two minutes: only the wake can start it sooner.
    const next = await startTask('limited', '@print next', 120);
    await waitFor(
      'the next task to wait for a slot',
      async () => (await waitingKinds([next.taskId]))[0] === 'concurrency',
    );
    const started = await waitFor(
      'the next task to start',
      async () =>
        (await h.pool.query<{ started_at: Date }>('SELECT started_at FROM attempts WHERE task_id = $1', [next.taskId]))
          .rows[0]?.started_at,
      { timeoutMs: 20_000 },
    );
    const freed = await h.pool.query<{ at: Date }>(
      'SELECT min(finished_at) AS at FROM attempts WHERE task_id = ANY($1)',
      [holders.map((t) => t.taskId)],
    );
    const after = started.getTime() - (freed.rows[0]?.at as Date).getTime();
    assert.ok(after < 5_000, `started ${after} ms after a slot freed`);
    await Promise.all([...holders, next].map((t) => t.handle.result()));
  });

  it('starts at most startsPerMinute a minute; the rest wait for the window', async () => {
    const tasks = await Promise.all(
      Array.from({ length: 5 }, (_, i) => startTask('start-limited', `@print start ${i}`)),
    );
    const ids = tasks.map((t) => t.taskId);
    const waiting = await waitFor('three to finish and two to wait', async () => {
      const done = await h.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1) AND status = 'succeeded'`,
        [ids],
      );
      const kinds = await waitingKinds(ids);
      return done.rows[0]?.n === 3 && kinds.length === 2 ? kinds : undefined;
    });
    assert.deepEqual(waiting, ['start_rate', 'start_rate']);
    const reasons = await h.pool.query<{ until: string }>(
      `SELECT waiting_reason->>'until' AS until FROM tasks WHERE id = ANY($1) AND status = 'queued'`,
      [ids],
    );
    for (const r of reasons.rows)
      assert.ok(new Date(r.until).getTime() - Date.now() > 45_000, 'until the window moves on');
    const started = await h.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM attempts WHERE task_id = ANY($1)',
      [ids],
    );
    assert.equal(started.rows[0]?.n, 3);
    // The waiting ones would start in a minute; cancel them rather than wait.
    await Promise.all(tasks.map(({ handle }) => handle.cancel().catch(() => undefined)));
    await Promise.all(tasks.map(({ handle }) => handle.result().catch(() => undefined)));
  });
});
