import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import { PlanStore } from '../../src/store/plan-store';
import type { agentTaskWorkflow, planWorkflow } from '../../workflows';
import {
  CANCEL_PLAN_TASK_SIGNAL,
  workflowIdForPlan,
  workflowIdForTask,
  type AgentTaskInput,
  type PlanInput,
  type PlanOnFailure,
  type PlanTaskInput,
} from '../../workflows/definitions';
import {
  openHarness,
  runAgentWorker,
  runWorkflowWorker,
  type Harness,
  type RunningWorker,
} from '../support/in-process-workers';
import { completeFirstTaskBeforePatches } from '../support/plan-before-patches';
import { uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';
import { git as gitIn, initRepo } from '../support/git';

interface Queues {
  workflowQueue: string;
  agentQueue: string;
}

interface TaskSpec {
  key: string;
  prompt: string;
  dependsOn?: string[];
  priority?: number;
  repo?: { path: string };
}

/** When a task's agent ran, from its attempt row (written by the agent worker around the process). */
interface Span {
  key: string;
  start: number;
  end: number;
}

describe('planWorkflow', { timeout: 120_000 }, () => {
  let h: Harness;
  let plans: PlanStore;
  const workers: RunningWorker[] = [];

  before(async () => {
    h = await openHarness();
    plans = new PlanStore(h.pool);
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  const track = (worker: RunningWorker): RunningWorker => (workers.push(worker), worker);

  async function freshQueues(agentOptions: { slots?: number } = {}): Promise<Queues> {
    const queues = { workflowQueue: uniqueQueue('wf-plan'), agentQueue: uniqueQueue('agents-plan') };
    await Promise.all([
      runWorkflowWorker(h, queues.workflowQueue).then(track),
      runAgentWorker(h, queues.agentQueue, 'agent-worker', agentOptions).then(track),
    ]);
    return queues;
  }

  const taskInput = (queues: Queues, taskId: string, priority: number): AgentTaskInput => ({
    taskId,
    agent: 'stand-in',
    timeoutSeconds: 60,
    maxAttempts: 1,
    priority,
    agentTaskQueue: queues.agentQueue,
    backoffSeconds: 0.1,
  });

  /** Stores the plan as the API does, then starts its workflow; returns the handle and task ids by key. */
  async function startPlan(
    queues: Queues,
    specs: TaskSpec[],
    options: { maxParallel?: number; onFailure?: PlanOnFailure } = {},
  ): Promise<{
    planId: string;
    handle: WorkflowHandle<typeof planWorkflow>;
    ids: Map<string, string>;
    input: PlanInput;
  }> {
    const planId = randomUUID();
    const ids = new Map(specs.map((s) => [s.key, randomUUID()]));
    const id = (key: string) => ids.get(key) as string;
    await plans.create({
      id: planId,
      maxParallel: options.maxParallel ?? 4,
      onFailure: options.onFailure ?? 'stop',
      workflowId: workflowIdForPlan(planId),
      tasks: specs.map((s) => ({
        id: id(s.key),
        key: s.key,
        dependsOn: s.dependsOn ?? [],
        prompt: s.prompt,
        agent: 'stand-in',
        timeoutSeconds: 60,
        maxAttempts: 1,
        priority: s.priority ?? 3,
        labels: {},
        workflowId: workflowIdForTask(id(s.key)),
      })),
    });
    const input: PlanInput = {
      planId,
      maxParallel: options.maxParallel ?? 4,
      onFailure: options.onFailure ?? 'stop',
      tasks: specs.map((s) => ({
        key: s.key,
        dependsOn: s.dependsOn ?? [],
        task: { ...taskInput(queues, id(s.key), s.priority ?? 3), ...(s.repo && { repo: s.repo }) },
      })),
    };
    const handle = await h.client.workflow.start<typeof planWorkflow>('planWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForPlan(planId),
      args: [input],
    });
    return { planId, handle, ids, input };
  }

  async function spans(ids: Map<string, string>): Promise<Span[]> {
    const res = await h.pool.query<{ task_id: string; started_at: Date; finished_at: Date | null }>(
      'SELECT task_id, started_at, finished_at FROM attempts WHERE task_id = ANY($1)',
      [[...ids.values()]],
    );
    const keyOf = new Map([...ids].map(([k, v]) => [v, k]));
    return res.rows
      .map((r) => ({
        key: keyOf.get(r.task_id) as string,
        start: r.started_at.getTime(),
        end: (r.finished_at ?? new Date(8.64e15)).getTime(),
      }))
      .sort((a, b) => a.start - b.start);
  }

  const spanOf = (all: Span[], key: string): Span => {
    const found = all.find((s) => s.key === key);
    assert.ok(found, `task ${key} ran`);
    return found;
  };

  /** The most spans running at one moment. */
  const maxOverlap = (all: Span[]): number =>
    Math.max(...all.map((s) => all.filter((o) => o.start <= s.start && s.start < o.end).length));

  async function planTasks(planId: string) {
    const found = await plans.get(planId);
    assert.ok(found);
    return { plan: found.plan, byKey: new Map(found.tasks.map((t) => [t.key, t])) };
  }

  it('runs a diamond in dependency order, the middle tasks in parallel', async () => {
    const queues = await freshQueues();
    const { planId, handle, ids } = await startPlan(queues, [
      { key: 'd', prompt: 'bottom', dependsOn: ['b', 'c'] },
      { key: 'b', prompt: '@sleep 1\nleft', dependsOn: ['a'] },
      { key: 'c', prompt: '@sleep 1\nright', dependsOn: ['a'] },
      { key: 'a', prompt: 'top' },
    ]);
    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    assert.deepEqual([...result.succeeded].sort(), ['a', 'b', 'c', 'd']);
    const all = await spans(ids);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((k) => spanOf(all, k)) as [Span, Span, Span, Span];
    assert.ok(b.start >= a.end && c.start >= a.end, 'b and c start after a ended');
    assert.ok(d.start >= b.end && d.start >= c.end, 'd starts after b and c ended');
    assert.ok(b.start < c.end && c.start < b.end, 'b and c overlap in time');
    const { plan, byKey } = await planTasks(planId);
    assert.equal(plan.status, 'succeeded');
    assert.ok(plan.finished_at);
    for (const key of ['a', 'b', 'c', 'd']) assert.equal(byKey.get(key)?.status, 'succeeded');
  });

  it('runs a chain strictly one after another', async () => {
    const queues = await freshQueues();
    const { handle, ids } = await startPlan(queues, [
      { key: 'one', prompt: '@sleep 0.2\n1' },
      { key: 'two', prompt: '@sleep 0.2\n2', dependsOn: ['one'] },
      { key: 'three', prompt: '@sleep 0.2\n3', dependsOn: ['two'] },
    ]);
    assert.equal((await handle.result()).status, 'succeeded');
    const all = await spans(ids);
    assert.deepEqual(
      all.map((s) => s.key),
      ['one', 'two', 'three'],
    );
    assert.equal(maxOverlap(all), 1);
  });

  it('keeps a wide fan-out within maxParallel', async () => {
    const queues = await freshQueues();
    const fan = Array.from({ length: 6 }, (_, i) => ({
      key: `leaf${i}`,
      prompt: '@sleep 1\nleaf',
      dependsOn: ['root'],
    }));
    const { handle, ids } = await startPlan(queues, [{ key: 'root', prompt: 'root' }, ...fan], { maxParallel: 2 });
    assert.equal((await handle.result()).status, 'succeeded');
    const all = await spans(ids);
    assert.equal(all.length, 7);
    assert.equal(maxOverlap(all), 2, 'two leaves at a time, never more');
  });

  it('starts the highest priority first among ready tasks (submission order between equals)', async () => {
    const queues = await freshQueues();
    const { handle, ids } = await startPlan(
      queues,
      [
        { key: 'p3', prompt: 'x', priority: 3 },
        { key: 'p1a', prompt: 'x', priority: 1 },
        { key: 'p5', prompt: 'x', priority: 5 },
        { key: 'p2', prompt: 'x', priority: 2 },
        { key: 'p1b', prompt: 'x', priority: 1 },
      ],
      { maxParallel: 1 },
    );
    assert.equal((await handle.result()).status, 'succeeded');
    assert.deepEqual(
      (await spans(ids)).map((s) => s.key),
      ['p1a', 'p1b', 'p2', 'p3', 'p5'],
    );
  });

  it('with stop: a failure skips every task not started yet, running ones finish', async () => {
    const queues = await freshQueues();
    const { planId, handle, ids } = await startPlan(
      queues,
      [
        { key: 'fails', prompt: '@exit 1' },
        { key: 'slow', prompt: '@sleep 1.5\nslow' },
        { key: 'later', prompt: 'later' },
        { key: 'child', prompt: 'child', dependsOn: ['slow'] },
      ],
      { maxParallel: 2, onFailure: 'stop' },
    );
    const result = await handle.result();
    assert.deepEqual(result, { status: 'failed', succeeded: ['slow'], failed: ['fails'], skipped: ['later', 'child'] });
    assert.deepEqual((await spans(ids)).map((s) => s.key).sort(), ['fails', 'slow']);
    const { plan, byKey } = await planTasks(planId);
    assert.equal(plan.status, 'failed');
    assert.equal(byKey.get('fails')?.status, 'failed');
    assert.equal(byKey.get('slow')?.status, 'succeeded');
    for (const key of ['later', 'child']) {
      assert.equal(byKey.get(key)?.status, 'cancelled');
      assert.equal(byKey.get(key)?.skipped_reason, 'plan stopped: task "fails" failed');
    }
  });

  it('starts every ready task that fits at once, highest priority first', async () => {
    const queues = await freshQueues();
    const specs = [5, 1, 3, 2, 4].map((priority) => ({ key: `p${priority}`, prompt: 'x', priority }));
    const { handle, ids } = await startPlan(queues, specs, { maxParallel: 3 });
    assert.equal((await handle.result()).status, 'succeeded');
    const events = (await handle.fetchHistory()).events ?? [];
    const first = events.findIndex((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
    const batch: unknown[] = [];
    for (const e of events.slice(first)) {
      if (!e.startChildWorkflowExecutionInitiatedEventAttributes) break;
      batch.push(e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId);
    }
    assert.deepEqual(
      batch,
      ['p1', 'p2', 'p3'].map((key) => workflowIdForTask(ids.get(key) as string)),
      'the first three started in one workflow task',
    );
  });

  it('with stop: no task starts once a failure is in, even while other tasks keep ending', async () => {
    const queues = await freshQueues();
    // Tasks end while the failing one runs, and each end starts the next: its failure comes in mid-way.
    const others = Array.from({ length: 40 }, (_, i) => ({ key: `t${i}`, prompt: '@sleep 0.2\nx', priority: 3 }));
    const { handle } = await startPlan(
      queues,
      [{ key: 'fails', prompt: '@sleep 1.5\n@exit 1', priority: 1 }, ...others],
      {
        maxParallel: 4,
        onFailure: 'stop',
      },
    );
    const result = await handle.result();
    assert.equal(result.status, 'failed');
    assert.ok(result.succeeded.length > 3, `tasks started after the first ones ended: ${result.succeeded.length}`);
    assert.ok(result.skipped.length > 0, 'tasks were left to skip when the failure came in');
    const events = (await handle.fetchHistory()).events ?? [];
    const failure = events.findIndex((e) => e.childWorkflowExecutionFailedEventAttributes);
    assert.ok(failure >= 0, 'the failing task failed as a child');
    const startsAfter = events
      .slice(failure)
      .filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)
      .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId);
    assert.deepEqual(startsAfter, [], 'children started after the failure came in');
  });

  it('a cancel request for a running task (cancelPlanTask) cancels it; it counts as failed', async () => {
    const queues = await freshQueues();
    const { planId, handle, ids } = await startPlan(queues, [
      { key: 'hangs', prompt: '@hang' },
      { key: 'next', prompt: 'x', dependsOn: ['hangs'] },
    ]);
    await waitFor('the first task to run', async () => (await spans(ids)).length === 1);
    await handle.signal(CANCEL_PLAN_TASK_SIGNAL, 'hangs');
    const result = await handle.result();
    assert.deepEqual(result, { status: 'failed', succeeded: [], failed: ['hangs'], skipped: ['next'] });
    const { byKey } = await planTasks(planId);
    assert.equal(byKey.get('hangs')?.status, 'cancelled');
    assert.equal(byKey.get('next')?.skipped_reason, 'plan stopped: task "hangs" failed');
  });

  it('a plan started before patch plan-fresh-ready honours a cancel request for a task it has not started', async () => {
    // Its first workflow task done by that code, before any worker polls: the worker then replays it unpatched.
    const queues = { workflowQueue: uniqueQueue('wf-plan'), agentQueue: uniqueQueue('agents-plan') };
    const { planId, handle, ids, input } = await startPlan(queues, [
      { key: 'first', prompt: '@print first' },
      { key: 'second', prompt: '@print second', dependsOn: ['first'] },
    ]);
    await completeFirstTaskBeforePatches(h.client, queues.workflowQueue, input.tasks[0] as PlanTaskInput);
    await handle.signal(CANCEL_PLAN_TASK_SIGNAL, 'second');
    await Promise.all([
      runWorkflowWorker(h, queues.workflowQueue).then(track),
      runAgentWorker(h, queues.agentQueue).then(track),
    ]);
    const result = await handle.result();
    assert.deepEqual(result, { status: 'failed', succeeded: ['first'], failed: ['second'], skipped: [] });
    assert.deepEqual(
      (await spans(ids)).map((s) => s.key),
      ['first'],
      'only the first task ran',
    );
    const { byKey } = await planTasks(planId);
    assert.equal(byKey.get('second')?.skipped_reason, 'cancelled');
    const markers = ((await handle.fetchHistory()).events ?? []).flatMap((e) =>
      e.markerRecordedEventAttributes?.markerName === 'core_patch' ? [e.markerRecordedEventAttributes] : [],
    );
    const patches = markers.map((m) =>
      String(defaultPayloadConverter.fromPayload<{ id: string }>(m.details?.['patch-data']?.payloads?.[0] ?? {}).id),
    );
    assert.ok(!patches.includes('plan-fresh-ready'), `the plan ran unpatched (patches ${patches.join()})`);
  });

  it("with continue: only the failed task's dependants are skipped", async () => {
    const queues = await freshQueues();
    const { planId, handle, ids } = await startPlan(
      queues,
      [
        { key: 'fails', prompt: '@exit 1' },
        { key: 'after', prompt: 'x', dependsOn: ['fails'] },
        { key: 'after2', prompt: 'x', dependsOn: ['after'] },
        { key: 'free', prompt: '@sleep 0.5\nfree' },
        { key: 'free2', prompt: 'x', dependsOn: ['free'] },
      ],
      { maxParallel: 1, onFailure: 'continue' },
    );
    const result = await handle.result();
    assert.equal(result.status, 'failed');
    assert.deepEqual(result.failed, ['fails']);
    assert.deepEqual([...result.succeeded].sort(), ['free', 'free2']);
    assert.deepEqual([...result.skipped].sort(), ['after', 'after2']);
    assert.deepEqual((await spans(ids)).map((s) => s.key).sort(), ['fails', 'free', 'free2']);
    const { byKey } = await planTasks(planId);
    assert.equal(byKey.get('after')?.skipped_reason, 'dependency "fails" failed');
    assert.equal(byKey.get('after2')?.status, 'cancelled');
  });

  it('cancelling the plan cancels its running tasks and skips the rest', async () => {
    const queues = await freshQueues();
    const { planId, handle, ids } = await startPlan(queues, [
      { key: 'hangs', prompt: '@hang' },
      { key: 'next', prompt: 'x', dependsOn: ['hangs'] },
    ]);
    await waitFor('the first task to run', async () => (await spans(ids)).length === 1);
    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail('the plan should end cancelled'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
    const { plan, byKey } = await planTasks(planId);
    assert.equal(plan.status, 'cancelled');
    assert.equal(byKey.get('hangs')?.status, 'cancelled');
    assert.equal(byKey.get('next')?.status, 'cancelled');
    assert.equal(byKey.get('next')?.skipped_reason, 'plan cancelled');
    const child = await h.client.workflow.getHandle(workflowIdForTask(ids.get('hangs') as string)).describe();
    assert.equal(child.status.name, 'CANCELLED');
  });

  it('a plan cancelled before its first task has started ends cancelled, the task skipped', async () => {
    // The cancel reaches the workflow with its start (no worker polls yet), so the child's start is refused.
    const queues = { workflowQueue: uniqueQueue('wf-plan'), agentQueue: uniqueQueue('agents-plan') };
    const { planId, handle } = await startPlan(queues, [{ key: 'only', prompt: 'x' }]);
    await handle.cancel();
    track(await runWorkflowWorker(h, queues.workflowQueue));
    await waitFor('the plan to end cancelled', async () => (await handle.describe()).status.name === 'CANCELLED', {
      timeoutMs: 20_000,
    });
    const { plan, byKey } = await planTasks(planId);
    assert.equal(plan.status, 'cancelled');
    assert.equal(byKey.get('only')?.status, 'cancelled');
    assert.equal(byKey.get('only')?.skipped_reason, 'plan cancelled');
  });

  it('skips a cancel interrupts while they are being recorded are recorded by the cancel', async () => {
    const queues = { workflowQueue: uniqueQueue('wf-plan'), agentQueue: uniqueQueue('agents-plan') };
    // The first skips recorded never finish: the plan is cancelled while it waits on them.
    let entered = false;
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    class StuckFirstSkips extends PlanStore {
      override async recordSkips(record: Parameters<PlanStore['recordSkips']>[0]): Promise<void> {
        if (entered) return super.recordSkips(record);
        entered = true;
        await held;
      }
    }
    await Promise.all([
      runWorkflowWorker(h, queues.workflowQueue, { plans: new StuckFirstSkips(h.pool) }).then(track),
      runAgentWorker(h, queues.agentQueue).then(track),
    ]);
    try {
      const { planId, handle } = await startPlan(
        queues,
        [
          { key: 'fails', prompt: '@exit 1' },
          { key: 'later', prompt: 'later' },
        ],
        { maxParallel: 1, onFailure: 'stop' },
      );
      await waitFor('the skips after the failure to be recorded', () => entered);
      await handle.cancel();
      await waitFor('the plan to end cancelled', async () => (await handle.describe()).status.name === 'CANCELLED', {
        timeoutMs: 20_000,
      });
      const { plan, byKey } = await planTasks(planId);
      assert.equal(plan.status, 'cancelled');
      assert.equal(byKey.get('fails')?.status, 'failed');
      assert.equal(byKey.get('later')?.status, 'cancelled');
      assert.equal(byKey.get('later')?.skipped_reason, 'plan cancelled');
    } finally {
      release();
    }
  });

  it('a cancel arriving while the outcome is written leaves Temporal and PostgreSQL agreeing', async () => {
    // The cancel fails the workflow task running the outcome's local activity: the write lands, its
    // result is not recorded, and the next workflow task sees the cancel first.
    const queues = { workflowQueue: uniqueQueue('wf-plan'), agentQueue: uniqueQueue('agents-plan') };
    let entered = false;
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    class SlowOutcome extends PlanStore {
      override async recordOutcome(record: Parameters<PlanStore['recordOutcome']>[0]) {
        if (record.status !== 'cancelled') {
          entered = true;
          await held;
        }
        return super.recordOutcome(record);
      }
    }
    await Promise.all([
      runWorkflowWorker(h, queues.workflowQueue, { plans: new SlowOutcome(h.pool) }).then(track),
      runAgentWorker(h, queues.agentQueue).then(track),
    ]);
    try {
      const { planId, handle } = await startPlan(queues, [{ key: 'only', prompt: 'x' }]);
      await waitFor("the plan's outcome to be being written", () => entered);
      await handle.cancel();
      release();
      await waitFor('the plan to end', async () => (await handle.describe()).status.name !== 'RUNNING', {
        timeoutMs: 20_000,
      });
      const temporalStatus = (await handle.describe()).status.name;
      const { plan } = await planTasks(planId);
      assert.deepEqual([temporalStatus, plan.status], ['COMPLETED', 'succeeded']);
    } finally {
      release();
    }
  });

  it("honours task priority when agent slots are contended, across plans and single tasks (Temporal's priority)", async () => {
    const queues = await freshQueues({ slots: 1 });
    // A single task holds the only agent slot while everything else queues up behind it.
    const blockerId = randomUUID();
    await h.pool.query(
      `INSERT INTO tasks (id, status, prompt, agent, timeout_seconds, max_attempts, priority, workflow_id)
       VALUES ($1, 'queued', '@hang', 'stand-in', 60, 1, 3, $2)`,
      [blockerId, workflowIdForTask(blockerId)],
    );
    const blocker = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(blockerId),
      args: [taskInput(queues, blockerId, 3)],
      priority: { priorityKey: 3 },
    });
    await waitFor('the blocker to run', async () => (await spans(new Map([['blocker', blockerId]]))).length === 1);
    const low = await startPlan(queues, [
      { key: 'low1', prompt: 'x', priority: 5 },
      { key: 'low2', prompt: 'x', priority: 5 },
    ]);
    const high = await startPlan(queues, [
      { key: 'high1', prompt: 'x', priority: 1 },
      { key: 'high2', prompt: 'x', priority: 1 },
    ]);
    const all = new Map([...low.ids, ...high.ids]);
    // Every agent activity is scheduled (waiting for the slot) before the slot frees up.
    await waitFor('all four agent activities to be scheduled', async () => {
      for (const taskId of all.values()) {
        try {
          const d = await h.client.workflow.getHandle(workflowIdForTask(taskId)).describe();
          if ((d.raw.pendingActivities ?? []).length === 0) return false;
        } catch {
          return false;
        }
      }
      return true;
    });
    await blocker.cancel();
    await Promise.all([low.handle.result(), high.handle.result()]);
    const order = (await spans(all)).map((s) => s.key);
    assert.deepEqual(
      order.map((k) => k.replace(/\d$/, '')),
      ['high', 'high', 'low', 'low'],
      order.join(', '),
    );
  });

  it('starts a task in a repository from the commit of the dependency it builds on', async () => {
    const queues = await freshQueues();
    const dir = mkdtempSync(join(tmpdir(), 'atelier-plan-branch-'));
    try {
      const repo = join(dir, 'repo');
      initRepo(repo);
      const git = (...args: string[]): string => gitIn(repo, ...args);
      const { handle, ids } = await startPlan(queues, [
        { key: 'schema', prompt: '@pidfile schema.txt', repo: { path: repo } },
        { key: 'api', prompt: '@pidfile api.txt', dependsOn: ['schema'], repo: { path: repo } },
      ]);
      assert.equal((await handle.result()).status, 'succeeded');
      const schemaHead = git('rev-parse', `atelier/${ids.get('schema')}`);
      const apiBranch = `atelier/${ids.get('api')}`;
      assert.equal(git('rev-parse', `${apiBranch}~1`), schemaHead, "api's branch starts at schema's commit");
      assert.deepEqual(git('ls-tree', '--name-only', apiBranch).split('\n').sort(), [
        'README.md',
        'api.txt',
        'schema.txt',
      ]);
      assert.equal(git('rev-parse', '--abbrev-ref', 'HEAD'), 'main');
      assert.equal(git('status', '--porcelain'), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts a task that builds on several dependencies from their work merged, and fails it when they conflict', async () => {
    const queues = await freshQueues();
    const dir = mkdtempSync(join(tmpdir(), 'atelier-plan-merge-'));
    try {
      const repo = join(dir, 'repo');
      initRepo(repo);
      const git = (...args: string[]): string => gitIn(repo, ...args);
      const { planId, handle, ids } = await startPlan(
        queues,
        [
          { key: 'left', prompt: '@pidfile left.txt', repo: { path: repo } },
          { key: 'right', prompt: '@pidfile right.txt', repo: { path: repo } },
          { key: 'join', prompt: '@pidfile join.txt', dependsOn: ['left', 'right'], repo: { path: repo } },
          // Both write clash.txt: a task building on the two cannot start from their work.
          { key: 'clash-1', prompt: '@pidfile clash.txt', dependsOn: ['join'], repo: { path: repo } },
          { key: 'clash-2', prompt: '@pidfile clash.txt', dependsOn: ['join'], repo: { path: repo } },
          { key: 'after-clash', prompt: 'x', dependsOn: ['clash-1', 'clash-2'], repo: { path: repo } },
        ],
        { onFailure: 'continue' },
      );
      const output = await handle.result();
      assert.deepEqual(output.failed, ['after-clash']);
      const joinBranch = `atelier/${ids.get('join')}`;
      const base = git('rev-parse', `${joinBranch}~1`);
      assert.deepEqual(
        git('rev-list', '--parents', '-1', base).split(' ').slice(1),
        [git('rev-parse', `atelier/${ids.get('left')}`), git('rev-parse', `atelier/${ids.get('right')}`)],
        "join's branch starts at the merge of both dependencies' commits",
      );
      assert.deepEqual(git('ls-tree', '--name-only', joinBranch).split('\n').sort(), [
        'README.md',
        'join.txt',
        'left.txt',
        'right.txt',
      ]);
      const { byKey } = await planTasks(planId);
      assert.equal(byKey.get('after-clash')?.status, 'failed');
      const row = await h.pool.query<{ error_class: string; error_message: string }>(
        'SELECT error_class, error_message FROM tasks WHERE id = $1',
        [ids.get('after-clash')],
      );
      assert.equal(row.rows[0]?.error_class, 'merge_conflict');
      assert.match(row.rows[0]?.error_message ?? '', /conflicts in clash\.txt/);
      const attempts = await h.pool.query('SELECT 1 FROM attempts WHERE task_id = $1', [ids.get('after-clash')]);
      assert.equal(attempts.rowCount, 0, 'no agent ran');
      assert.equal(git('rev-parse', '--abbrev-ref', 'HEAD'), 'main');
      assert.equal(git('status', '--porcelain'), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
