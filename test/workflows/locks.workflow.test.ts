import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForLocks, type LockRelease, type LockRequest, type LockTable } from '../../workflows/definitions';
import { acquireLocksSignal, lockTableQuery, releaseLocksSignal } from '../../workflows/lock-manager.workflow';
import {
  openHarness,
  runAgentWorker,
  runWorkflowWorker,
  LOCK_ENDED_GRACE_SECONDS,
  type Harness,
  type RunningWorker,
} from '../support/in-process-workers';
import { holdFirstLockRequest, type HeldLockRequest } from '../support/held-lock-request';
import { startAgentTask } from '../support/start-agent-task';
import { uniqueQueue } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

/** The signal that starts a lock manager in the tests that send requests and releases by hand. */
type FirstSignal =
  | { signal: typeof acquireLocksSignal; signalArgs: [LockRequest] }
  | { signal: typeof releaseLocksSignal; signalArgs: [LockRelease] };

interface Queues {
  workflowQueue: string;
  agentQueue: string;
}

interface Started {
  taskId: string;
  handle: WorkflowHandle<typeof agentTaskWorkflow>;
}

/** When the agent ran, from its attempt row (written by the agent worker around the process). */
interface Span {
  start: number;
  end: number;
}

describe('file locks', { timeout: 120_000 }, () => {
  let h: Harness;
  const workers: RunningWorker[] = [];

  before(async () => {
    h = await openHarness();
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  /** Queues of their own, served by a workflow worker (its lock activities wrapped by `wrapLocks`) and an agent worker. */
  async function freshQueues(wrapLocks?: HeldLockRequest['wrap']): Promise<Queues & { agentWorker: RunningWorker }> {
    const queues = { workflowQueue: uniqueQueue('wf-locks'), agentQueue: uniqueQueue('agents-locks') };
    const started = await Promise.all([
      runWorkflowWorker(h, queues.workflowQueue, { wrapLocks }),
      runAgentWorker(h, queues.agentQueue),
    ]);
    workers.push(...started);
    return { ...queues, agentWorker: started[1] };
  }

  /** A repository path of its own per test: one lock manager each. */
  const freshRepo = () => `/tmp/atelier-locks-test/${randomUUID()}`;

  const startTask = (
    queues: Queues,
    repo: string,
    globs: string[],
    prompt: string,
    options: { workflowExecutionTimeout?: Duration } = {},
  ): Promise<Started> => startAgentTask(h, queues, prompt, { backoffSeconds: 0.1, locks: { repo, globs } }, options);

  async function spanOf(taskId: string): Promise<Span | undefined> {
    const res = await h.pool.query<{ started_at: Date; finished_at: Date | null }>(
      'SELECT started_at, finished_at FROM attempts WHERE task_id = $1',
      [taskId],
    );
    const row = res.rows[0];
    return row && { start: row.started_at.getTime(), end: (row.finished_at ?? new Date(8.64e15)).getTime() };
  }

  const overlap = (a: Span, b: Span) => a.start < b.end && b.start < a.end;

  const table = (repo: string): Promise<LockTable> =>
    h.client.workflow.getHandle(workflowIdForLocks(repo)).query(lockTableQuery);

  /** The task ids of holders and waiters, in order. */
  const tableTasks = async (repo: string) => {
    const t = await table(repo);
    return { holders: t.holders.map((r) => r.taskId), waiters: t.waiters.map((r) => r.taskId) };
  };

  const ended = async (s: Started) =>
    s.handle.result().then(
      () => 'succeeded',
      () => 'failed',
    );

  it('never runs overlapping lock sets at the same time, and runs disjoint ones in parallel', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const a = await startTask(queues, repo, ['src/**'], '@sleep 4\na');
    await waitFor('A to run', async () => (await spanOf(a.taskId)) !== undefined);
    const b = await startTask(queues, repo, ['src/api/x.ts', 'README.md'], 'b');
    const c = await startTask(queues, repo, ['docs/**'], 'c');
    // C's set is disjoint from A's: it runs, start to end, while A still runs.
    assert.equal(await ended(c), 'succeeded');
    assert.equal((await spanOf(a.taskId))?.end, 8.64e15, 'A was still running when C ended');
    assert.deepEqual(await tableTasks(repo), { holders: [a.taskId], waiters: [b.taskId] });
    assert.deepEqual(await Promise.all([a, b].map(ended)), ['succeeded', 'succeeded']);
    const [sa, sb] = (await Promise.all([a, b].map((t) => spanOf(t.taskId)))) as [Span, Span];
    assert.ok(!overlap(sa, sb), 'src/** and src/api/x.ts never ran at once');
    assert.ok(sb.start >= sa.end, 'B ran after A');
    assert.deepEqual(await tableTasks(repo), { holders: [], waiters: [] });
  });

  it('releases on cancel and on failure, and serves waiters fairly', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await startTask(queues, repo, ['a/**'], '@hang');
    await waitFor('the holder to run', async () => (await spanOf(holder.taskId)) !== undefined);
    // B waits for a/**; C only wants b/**, free right now, but B asked first and wants it too: C must
    // not pass B. D conflicts with nobody and runs at once.
    const b = await startTask(queues, repo, ['a/x', 'b/**'], '@exit 1');
    await waitFor('B to wait', async () => (await tableTasks(repo)).waiters.length === 1);
    const c = await startTask(queues, repo, ['b/y'], 'c');
    await waitFor('C to wait', async () => (await tableTasks(repo)).waiters.length === 2);
    const d = await startTask(queues, repo, ['c/**'], 'd');
    assert.equal(await ended(d), 'succeeded');
    assert.deepEqual(await tableTasks(repo), { holders: [holder.taskId], waiters: [b.taskId, c.taskId] });
    assert.equal(await spanOf(c.taskId), undefined, 'C did not pass B');

    await holder.handle.cancel();
    assert.equal(await ended(holder), 'failed');
    // B gets its locks after the cancel, fails, and its failure releases them for C.
    assert.equal(await ended(b), 'failed');
    assert.equal(await ended(c), 'succeeded');
    const [sb, sc] = (await Promise.all([spanOf(b.taskId), spanOf(c.taskId)])) as [Span, Span];
    assert.ok(sc.start >= sb.end, 'C ran after B');
    assert.deepEqual(await tableTasks(repo), { holders: [], waiters: [] });
  });

  it('records a task cancelled while it waits for its locks as cancelled, and drops its request', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await startTask(queues, repo, ['a/**'], '@hang');
    await waitFor('the holder to run', async () => (await spanOf(holder.taskId)) !== undefined);
    const waiter = await startTask(queues, repo, ['a/b.txt'], 'never runs');
    await waitFor('the waiter to wait', async () => (await tableTasks(repo)).waiters.includes(waiter.taskId));
    await waiter.handle.cancel();
    assert.equal(await ended(waiter), 'failed');
    const row = await h.pool.query<{ status: string; error_class: string }>(
      'SELECT status, error_class FROM tasks WHERE id = $1',
      [waiter.taskId],
    );
    assert.deepEqual(row.rows[0], { status: 'cancelled', error_class: 'cancelled' });
    assert.equal(await spanOf(waiter.taskId), undefined, 'its agent never ran');
    assert.deepEqual(await tableTasks(repo), { holders: [holder.taskId], waiters: [] });
    await holder.handle.cancel();
    assert.equal(await ended(holder), 'failed');
  });

  /**
   * A task holding every file of a fresh repository, terminated while a second task waits for one of
   * them. Termination runs no finally: only the lock manager's reaping frees the waiter.
   */
  async function terminatedHolder(): Promise<{ repo: string; next: Started; holder: Started }> {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await startTask(queues, repo, ['**'], '@hang');
    await waitFor('the holder to run', async () => (await spanOf(holder.taskId)) !== undefined);
    const next = await startTask(queues, repo, ['README.md'], 'next');
    await waitFor('the next task to wait', async () => (await tableTasks(repo)).waiters.length === 1);
    await holder.handle.terminate('test');
    return { repo, next, holder };
  }

  /**
   * Starts `repo`'s lock manager with its first signal, reaping only every ten minutes: no reap can stand
   * in for what a test looks at.
   */
  const startManager = (queues: Queues, repo: string, first: FirstSignal) =>
    h.client.workflow.signalWithStart('lockManagerWorkflow', {
      workflowId: workflowIdForLocks(repo),
      taskQueue: queues.workflowQueue,
      args: [{ repo, reapIntervalSeconds: 600 }],
      ...first,
    });

  /**
   * A workflow run that takes lock grants in tests that send requests by hand: any running workflow
   * does (here another repository's lock manager).
   */
  async function grantTaker(queues: Queues): Promise<{ workflowId: string; runId: string }> {
    const handle = await h.client.workflow.signalWithStart('lockManagerWorkflow', {
      workflowId: workflowIdForLocks(freshRepo()),
      taskQueue: queues.workflowQueue,
      args: [{ repo: 'holder', reapIntervalSeconds: 600 }],
      signal: acquireLocksSignal,
      signalArgs: [{ requestId: 'none', workflowId: 'none', runId: 'none', taskId: 'none', globs: [] }],
    });
    return { workflowId: handle.workflowId, runId: (await handle.describe()).runId };
  }

  /**
   * Waits for the request `next` to be granted and asserts that the table holds it alone. Signals are
   * handled in order: once `next`, sent last, is granted, every request before it has been seen.
   */
  async function assertOnlyNextGranted(repo: string): Promise<void> {
    const t = await waitFor('the later request to be granted', async () => {
      const found = await table(repo);
      return found.holders.some((r) => r.requestId === 'next') && found;
    });
    assert.deepEqual(
      [...t.holders, ...t.waiters].map((r) => r.requestId),
      ['next'],
    );
  }

  it('grants a request that arrives while another grant is being sent, without waiting for a reap', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await grantTaker(queues);
    const request = (i: number) => ({
      requestId: `r${i}`,
      workflowId: holder.workflowId,
      runId: holder.runId,
      taskId: `t${i}`,
      globs: [`part-${i}/**`],
    });
    const manager = await startManager(queues, repo, { signal: acquireLocksSignal, signalArgs: [request(0)] });
    // Disjoint requests, four at a time: many arrive while the manager signals the grants of others.
    const more = Array.from({ length: 39 }, (_, i) => i + 1);
    for (let at = 0; at < more.length; at += 4) {
      await Promise.all(more.slice(at, at + 4).map((n) => manager.signal(acquireLocksSignal, request(n))));
    }
    const granted = await waitFor(
      'every request to be granted',
      async () => {
        const t = await table(repo);
        return t.waiters.length === 0 ? t.holders.length : undefined;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(granted, 40);
  });

  it('sleeps without a timer while its table is empty, and wakes for the next request', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await grantTaker(queues);
    const request = (id: string) => ({ ...holder, requestId: id, taskId: id, globs: ['src/**'] });
    const manager = await h.client.workflow.signalWithStart('lockManagerWorkflow', {
      workflowId: workflowIdForLocks(repo),
      taskQueue: queues.workflowQueue,
      args: [{ repo, reapIntervalSeconds: 1 }],
      signal: acquireLocksSignal,
      signalArgs: [request('first')],
    });
    // While a request holds locks, the manager reaps on its schedule: a timer runs.
    await waitFor('the reap timer to start while a request holds locks', async () =>
      ((await manager.fetchHistory()).events ?? []).some((e) => e.timerStartedEventAttributes),
    );
    await manager.signal(releaseLocksSignal, { requestId: 'first' });
    // Once a workflow task after the release has completed, its commands are in the history.
    const events = await waitFor('the release to be handled', async () => {
      const all = (await manager.fetchHistory()).events ?? [];
      const released = all.findIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'releaseLocks');
      const handled = released >= 0 && all.slice(released).some((e) => e.workflowTaskCompletedEventAttributes);
      return handled && { all, released };
    });
    assert.deepEqual(
      events.all.slice(events.released).filter((e) => e.timerStartedEventAttributes),
      [],
      'no timer after the table emptied',
    );
    await manager.signal(acquireLocksSignal, request('second'));
    await waitFor('the next request to be granted', async () =>
      (await table(repo)).holders.some((r) => r.requestId === 'second'),
    );
  });

  it('ignores a request that arrives after its own release (its task was cancelled while sending it)', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await grantTaker(queues);
    const request = (id: string) => ({ ...holder, requestId: id, taskId: id, globs: [id] });
    const manager = await startManager(queues, repo, {
      signal: releaseLocksSignal,
      signalArgs: [{ requestId: 'late' }],
    });
    await manager.signal(acquireLocksSignal, request('late'));
    await manager.signal(acquireLocksSignal, request('next'));
    await assertOnlyNextGranted(repo);
  });

  it('ignores a request delivered again after its release (its sending activity retried)', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await grantTaker(queues);
    const request = (id: string) => ({ ...holder, requestId: id, taskId: id, globs: [id] });
    const manager = await startManager(queues, repo, { signal: acquireLocksSignal, signalArgs: [request('again')] });
    await waitFor('the first request to be granted', async () =>
      (await table(repo)).holders.some((r) => r.requestId === 'again'),
    );
    await manager.signal(releaseLocksSignal, { requestId: 'again' });
    await manager.signal(acquireLocksSignal, request('again'));
    await manager.signal(acquireLocksSignal, request('next'));
    await assertOnlyNextGranted(repo);
  });

  it('remembers the release of a task cancelled while its request would start the lock manager', async () => {
    const held = holdFirstLockRequest();
    const queues = await freshQueues(held.wrap);
    const repo = freshRepo();
    const manager = h.client.workflow.getHandle(workflowIdForLocks(repo));
    try {
      const task = await startTask(queues, repo, ['src/**'], 'never runs');
      await within('the lock request to be sent', 30_000, held.reached);
      await task.handle.cancel();
      assert.equal(await ended(task), 'failed');
      // No lock manager ran yet: the release started one, which remembers it for the request to come.
      assert.equal((await manager.describe()).status.name, 'RUNNING', 'the release started the lock manager');
    } finally {
      // Else the held activity would keep its worker from stopping.
      held.letGo();
    }
    await within('the held request to be delivered', 30_000, held.delivered);
    // A request for the same files, sent after the late one.
    const holder = await grantTaker(queues);
    await manager.signal(acquireLocksSignal, { ...holder, requestId: 'next', taskId: 'next', globs: ['src/**'] });
    await assertOnlyNextGranted(repo);
  });

  it('takes back the locks of a terminated task, once the grace its agent has to stop has passed', async () => {
    const { repo, next, holder } = await terminatedHolder();
    assert.equal(await ended(next), 'succeeded');
    const span = await spanOf(next.taskId);
    const closed = (await holder.handle.describe()).closeTime;
    assert.ok(span && closed, 'the next task ran, after the holder closed');
    assert.ok(
      span.start - closed.getTime() >= LOCK_ENDED_GRACE_SECONDS * 1000,
      `the next task started ${span.start - closed.getTime()} ms after the holder was terminated`,
    );
    assert.deepEqual(await tableTasks(repo), { holders: [], waiters: [] });
  });

  it('takes back the locks of a terminated task while requests keep arriving', async () => {
    const { repo, next } = await terminatedHolder();
    // A busy repository: the manager hears of a change more often than its reap interval (1 s here).
    const manager = h.client.workflow.getHandle(workflowIdForLocks(repo));
    let busy = true;
    const traffic = (async () => {
      for (let i = 0; busy; i++) {
        const id = `gone-${randomUUID()}`;
        await manager.signal(acquireLocksSignal, {
          requestId: `${id}/run`,
          workflowId: id,
          runId: randomUUID(),
          taskId: randomUUID(),
          globs: [`other-${i}/**`],
        });
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      await waitFor(
        'the next task to succeed',
        async () => (await next.handle.describe()).status.name === 'COMPLETED',
        { timeoutMs: 15_000 },
      );
    } finally {
      busy = false;
      await traffic;
    }
  });

  it('reaps on its schedule across continue-as-new, however soon a busy manager moves to a new run', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    // Two running runs that take grants: one is terminated holding its locks, the other's requests are
    // the traffic that keeps the manager busy.
    const [gone, alive] = await Promise.all([grantTaker(queues), grantTaker(queues)]);
    await h.client.workflow.signalWithStart('lockManagerWorkflow', {
      workflowId: workflowIdForLocks(repo),
      taskQueue: queues.workflowQueue,
      args: [{ repo, reapIntervalSeconds: 5 }],
      signal: acquireLocksSignal,
      signalArgs: [{ ...gone, requestId: 'gone', taskId: 'gone', globs: ['src/**'] }],
    });
    await waitFor('the first request to be granted', async () =>
      (await table(repo)).holders.some((r) => r.requestId === 'gone'),
    );
    const manager = h.client.workflow.getHandle(workflowIdForLocks(repo));
    const runs = new Set<string>();
    let busy = true;
    const since = Date.now();
    const traffic = (async () => {
      for (let i = 0; busy; i++) {
        await manager.signal(acquireLocksSignal, {
          ...alive,
          requestId: `r${i}`,
          taskId: `t${i}`,
          globs: [`other-${i}`],
        });
        await manager.signal(releaseLocksSignal, { requestId: `r${i}` });
        if (i % 3 === 0) runs.add((await manager.describe()).runId);
      }
    })();
    try {
      // The manager moves to new runs before the holder goes: no run of it will see it go and then last
      // a whole reap interval.
      await waitFor('the manager to continue as new, again and again', () => runs.size >= 3, { timeoutMs: 15_000 });
      await h.client.workflow.getHandle(gone.workflowId, gone.runId).terminate('test');
      await waitFor(
        'the terminated holder to be reaped',
        async () => !(await table(repo)).holders.some((r) => r.requestId === 'gone'),
        { timeoutMs: 30_000 },
      );
    } finally {
      busy = false;
      await traffic;
    }
    const perRun = (Date.now() - since) / (runs.size - 1);
    assert.ok(perRun < 5000, `${runs.size} runs seen, ${Math.round(perRun)} ms each: shorter than a reap interval`);
  });

  it('takes back the locks of a task whose workflow timed out', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    // The holder's attempt waits on an agent queue nobody serves, holding its locks, until its
    // workflow's deadline: a timed-out workflow runs no finally, so only a reap frees the locks.
    const nobody = { ...queues, agentQueue: uniqueQueue('agents-nobody') };
    const holder = await startTask(nobody, repo, ['src/**'], 'never runs', { workflowExecutionTimeout: '4 seconds' });
    await waitFor('the holder to hold its locks', async () => (await tableTasks(repo)).holders.includes(holder.taskId));
    const next = await startTask(queues, repo, ['src/main.ts'], 'next');
    assert.equal(await ended(holder), 'failed');
    assert.equal(await ended(next), 'succeeded');
    const [holderRun, nextRun] = await Promise.all([holder.handle.describe(), next.handle.describe()]);
    assert.equal(holderRun.status.name, 'TIMED_OUT');
    const timedOutAt = holderRun.closeTime?.getTime() ?? Infinity;
    assert.ok(nextRun.startTime.getTime() < timedOutAt, 'the next task was there while the holder held its locks');
    assert.ok(((await spanOf(next.taskId)) as Span).start >= timedOutAt, 'the next task ran only after the timeout');
  });

  it('keeps its table across continue-as-new: exclusion holds, waiters keep their turn', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    // Overlapping sets, all submitted at once: whenever the manager moves to a new run it holds one and
    // carries the rest as waiters. Each grant and release adds events, so it moves more than once.
    const tasks: Started[] = [];
    for (let i = 0; i < 16; i++) {
      const task = await startTask(queues, repo, ['src/**'], `task ${i}`);
      tasks.push(task);
      // Each request reaches the manager before the next is sent: their arrival order is known.
      await waitFor(`task ${i}'s request to arrive`, async () => {
        const t = await tableTasks(repo);
        return [...t.holders, ...t.waiters].includes(task.taskId) || (await spanOf(task.taskId)) !== undefined;
      });
    }
    assert.deepEqual(new Set(await Promise.all(tasks.map(ended))), new Set(['succeeded']));
    const spans = (await Promise.all(tasks.map((t) => spanOf(t.taskId)))) as Span[];
    for (const [i, a] of spans.entries()) {
      for (const b of spans.slice(i + 1)) assert.ok(!overlap(a, b), 'overlapping sets never ran at once');
    }
    const order = tasks.map((t, i) => ({ i, start: (spans[i] as Span).start })).sort((x, y) => x.start - y.start);
    assert.deepEqual(
      order.map((o) => o.i),
      tasks.map((_, i) => i),
      'granted in arrival order',
    );
    const runs: string[] = [];
    for await (const run of h.client.workflow.list({ query: `WorkflowId = '${workflowIdForLocks(repo)}'` })) {
      runs.push(run.runId);
    }
    assert.ok(runs.length >= 2, `the lock manager continued as new (${runs.length} run(s))`);
    assert.deepEqual(await tableTasks(repo), { holders: [], waiters: [] });
  });

  it('releases the locks of a task whose agent worker went away', async () => {
    const queues = await freshQueues();
    const repo = freshRepo();
    const holder = await startTask(queues, repo, ['**'], '@hang');
    await waitFor('the holder to run', async () => (await spanOf(holder.taskId)) !== undefined);
    const next = await startTask(queues, repo, ['a.txt'], 'next');
    await waitFor('the next task to wait', async () => (await tableTasks(repo)).waiters.length === 1);
    await queues.agentWorker.stop();
    // One process may not run two workers on one queue, so the second starts once the first is gone.
    workers.push(await runAgentWorker(h, queues.agentQueue, 'second-agent-worker'));
    // The lost attempt is a crash; with one attempt the task fails, and failing releases its locks.
    assert.equal(await ended(holder), 'failed');
    assert.equal(await ended(next), 'succeeded');
    assert.deepEqual(await tableTasks(repo), { holders: [], waiters: [] });
  });
});
