import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import { AttemptStore } from '../../src/store/attempt-store';
import type { agentTaskWorkflow } from '../../workflows';
import {
  TASK_CODE_LEVEL,
  workflowIdForTask,
  WAKE_SIGNAL,
  type AgentTaskInput,
  type RunAgentInput,
  type RunAgentOutput,
} from '../../workflows/definitions';
import {
  openHarness,
  runAgentWorker,
  runWorkflowWorker,
  type Harness,
  type RunningWorker,
} from '../support/in-process-workers';
import { attemptRows, eventRows, insertTask, storedLogs, taskRow, type TaskRowFields } from '../support/task-rows';
import { testEnv, uniqueQueue } from '../support/test-env';
import { processAlive, waitFor } from '../support/wait-for';

type TaskHandle = WorkflowHandle<typeof agentTaskWorkflow>;

interface Queues {
  workflowQueue: string;
  agentQueue: string;
}

describe('agentTaskWorkflow', { timeout: 60_000 }, () => {
  let h: Harness;
  let dir: string;
  const workers: RunningWorker[] = [];

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-workflow-test-'));
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const track = (worker: RunningWorker): RunningWorker => (workers.push(worker), worker);

  /** Fresh queues for one test, each with a worker polling it. */
  async function freshQueues(): Promise<Queues & { agentWorker: RunningWorker }> {
    const queues = { workflowQueue: uniqueQueue('wf'), agentQueue: uniqueQueue('agents') };
    const [, agentWorker] = await Promise.all([
      runWorkflowWorker(h, queues.workflowQueue).then(track),
      runAgentWorker(h, queues.agentQueue).then(track),
    ]);
    return { ...queues, agentWorker };
  }

  /**
   * Fresh queues: a workflow worker, and in place of the agent worker `runAgent` alone, which makes a
   * race of the real one happen on cue.
   */
  async function queuesServedBy(runAgent: (attempt: RunAgentInput) => Promise<RunAgentOutput>): Promise<Queues> {
    const queues = { workflowQueue: uniqueQueue('wf'), agentQueue: uniqueQueue('agents') };
    const worker = await Worker.create({
      connection: h.connection,
      namespace: testEnv.namespace,
      taskQueue: queues.agentQueue,
      activities: { runAgent },
    });
    const running = worker.run();
    running.catch(() => undefined);
    track({
      worker,
      identity: 'stub-agent-worker',
      stop: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      },
    });
    track(await runWorkflowWorker(h, queues.workflowQueue));
    return queues;
  }

  /** Inserts the task row, then starts its workflow, as the API does. */
  async function startTask(
    queues: Queues,
    task: TaskRowFields,
    overrides: Partial<AgentTaskInput> = {},
  ): Promise<{ taskId: string; handle: TaskHandle }> {
    const taskId = await insertTask(h.pool, task);
    const input: AgentTaskInput = {
      taskId,
      agent: task.agent ?? 'stand-in',
      timeoutSeconds: task.timeoutSeconds ?? 30,
      maxAttempts: task.maxAttempts ?? 1,
      priority: 3,
      agentTaskQueue: queues.agentQueue,
      backoffSeconds: 0.1,
      codeLevel: TASK_CODE_LEVEL,
      ...overrides,
    };
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [input],
    });
    return { taskId, handle };
  }

  /** The workflow's failure: asserts it failed and returns the cause. */
  async function failureOf(handle: TaskHandle): Promise<Error | undefined> {
    const err = await handle.result().then(
      (result) => assert.fail(`expected the workflow to fail, it returned ${JSON.stringify(result)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
    return err.cause;
  }

  function assertApplicationFailure(cause: Error | undefined, type: string): void {
    assert.ok(cause instanceof ApplicationFailure, `expected an ApplicationFailure cause, got ${String(cause)}`);
    assert.equal(cause.type, type);
  }

  const terminalEvents = async (taskId: string): Promise<string[]> =>
    (await eventRows(h.pool, taskId)).filter((e) => e.terminal).map((e) => e.kind);

  /** The pid the stand-in agent wrote to `file`, once it has. */
  const pidFrom = (file: string): Promise<number> =>
    waitFor(`a pid in ${file}`, () => (existsSync(file) ? Number(readFileSync(file, 'utf8')) || undefined : undefined));

  it('runs the agent once and records the success in PostgreSQL', async () => {
    const queues = await freshQueues();
    const { taskId, handle } = await startTask(queues, { prompt: '@print hello from the agent\n@stderr thinking' });

    assert.deepEqual(await handle.result(), {
      status: 'succeeded',
      attempts: 1,
      exitCode: 0,
      outputTail: 'hello from the agent\n',
      agent: 'stand-in',
    });
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result_attempt, 1);
    assert.equal(task.result_exit_code, 0);
    assert.equal(task.error_class, null);
    assert.ok(task.started_at instanceof Date && task.finished_at instanceof Date);
    const attempts = await attemptRows(h.pool, taskId);
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.exit_code, 0);
    assert.equal(attempts[0]?.failure_class, 'succeeded');
    assert.equal(attempts[0]?.output, 'hello from the agent\n');
    assert.equal(attempts[0]?.worker, queues.agentWorker.identity);
    assert.deepEqual(await storedLogs(h.pool, taskId, 1), { stdout: 'hello from the agent\n', stderr: 'thinking\n' });
    assert.deepEqual(
      (await eventRows(h.pool, taskId)).map((e) => [e.kind, e.attempt, e.terminal]),
      [
        ['attempt_started', 1, false],
        ['attempt_finished', 1, false],
        ['succeeded', 1, true],
      ],
    );
  });

  it('retries failed attempts with backoff until one succeeds', async () => {
    const queues = await freshQueues();
    const counter = join(dir, `runs-${randomUUID()}`);
    const { taskId, handle } = await startTask(queues, {
      prompt: `@fail-until 3 ${counter}\n@print third time lucky`,
      maxAttempts: 3,
    });

    const result = await handle.result();
    assert.equal(result.attempts, 3);
    assert.equal(result.outputTail, 'third time lucky\n');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => [a.number, a.failure_class, a.exit_code]),
      [
        [1, 'nonzero_exit', 1],
        [2, 'nonzero_exit', 1],
        [3, 'succeeded', 0],
      ],
    );
    assert.equal((await storedLogs(h.pool, taskId, 1)).stderr, 'failing run 1 of 2\n');
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result_attempt, 3);
    assert.deepEqual(await terminalEvents(taskId), ['succeeded']);
  });

  it('fails the task with the last failure class once its attempts are used up', async () => {
    const queues = await freshQueues();
    const { taskId, handle } = await startTask(queues, { prompt: '@stderr cannot do it\n@exit 2', maxAttempts: 2 });

    assertApplicationFailure(await failureOf(handle), 'nonzero_exit');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => [a.failure_class, a.exit_code]),
      [
        ['nonzero_exit', 2],
        ['nonzero_exit', 2],
      ],
    );
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'failed');
    assert.equal(task.error_class, 'nonzero_exit');
    assert.equal(task.result_attempt, null);
    assert.deepEqual(await terminalEvents(taskId), ['failed']);
  });

  it('kills an attempt that runs past its timeout', async () => {
    const queues = await freshQueues();
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const { taskId, handle } = await startTask(queues, { prompt: `@pidfile ${pidFile}\n@hang`, timeoutSeconds: 1 });

    assertApplicationFailure(await failureOf(handle), 'timeout');
    // The attempt ends only once the agent has exited; by now nothing of it may be left.
    assert.equal(processAlive(await pidFrom(pidFile)), false, 'the timed-out agent is still running');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => a.failure_class),
      ['timeout'],
    );
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'failed');
    assert.equal(task.error_class, 'timeout');
  });

  it('kills the running agent when the task is cancelled', async () => {
    const queues = await freshQueues();
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const { taskId, handle } = await startTask(queues, { prompt: `@pidfile ${pidFile}\n@hang`, maxAttempts: 3 });
    const pid = await pidFrom(pidFile);
    assert.ok(processAlive(pid));

    await handle.cancel();

    const cause = await failureOf(handle);
    assert.ok(cause instanceof CancelledFailure, `expected a CancelledFailure, got ${String(cause)}`);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    assert.equal(processAlive(pid), false, 'the agent of a cancelled task is still running');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => a.failure_class),
      ['cancelled'],
    );
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'cancelled');
    assert.deepEqual(await terminalEvents(taskId), ['cancelled']);
  });

  it('fails at once, without running the agent, on input no retry can fix', async () => {
    const queues = await freshQueues();
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const cases: Partial<AgentTaskInput>[] = [
      { maxAttempts: 0 },
      { workdir: 'relative/dir' },
      { timeoutSeconds: 0 },
      // Started by a newer API: this code does not know that level's paths.
      { codeLevel: TASK_CODE_LEVEL + 1 },
      // Started by hand with locks or a repo of the wrong shape: no TypeError that would retry for ever.
      { locks: { repo: '/repo' } as AgentTaskInput['locks'] },
      { locks: null as unknown as AgentTaskInput['locks'] },
      { repo: { path: 'relative' } },
      { backoffSeconds: -1 },
    ];
    for (const overrides of cases) {
      const { taskId, handle } = await startTask(queues, { prompt: `@pidfile ${pidFile}\n@print ran` }, overrides);
      const cause = await failureOf(handle);
      assertApplicationFailure(cause, 'invalid_input');
      assert.equal((cause as ApplicationFailure).nonRetryable, true);
      assert.deepEqual(await attemptRows(h.pool, taskId), [], `an attempt started for ${JSON.stringify(overrides)}`);
      const task = await taskRow(h.pool, taskId);
      assert.equal(task.status, 'failed', `the task row of ${JSON.stringify(overrides)} is not failed`);
      assert.deepEqual(await terminalEvents(taskId), ['failed']);
    }
    assert.equal(existsSync(pidFile), false, 'the agent ran');
  });

  it('stops after one attempt when the agent is unknown', async () => {
    const queues = await freshQueues();
    const { taskId, handle } = await startTask(queues, { prompt: 'hello', agent: 'no-such-agent', maxAttempts: 3 });

    assertApplicationFailure(await failureOf(handle), 'unknown_agent');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => [a.number, a.failure_class]),
      [[1, 'unknown_agent']],
    );
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'failed');
    assert.equal(task.error_class, 'unknown_agent');
  });

  it('moves a task whose agent worker goes away mid-run to another worker', async () => {
    const queues = await freshQueues();
    const first = queues.agentWorker;
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const { taskId, handle } = await startTask(queues, { prompt: `@pidfile ${pidFile}\n@hang`, maxAttempts: 2 });
    const pid = await pidFrom(pidFile);
    // The agent reads its prompt from PostgreSQL at each attempt: the next attempt finishes instead of hanging.
    await h.pool.query('UPDATE tasks SET prompt = $2 WHERE id = $1', [taskId, '@print finished elsewhere']);

    await first.stop();

    assert.equal(processAlive(pid), false, 'the agent outlived its worker');
    // One process may not run two workers on one queue, so the second starts once the first is gone.
    const second = track(await runAgentWorker(h, queues.agentQueue, 'second-agent-worker'));
    const result = await handle.result();
    assert.equal(result.attempts, 2);
    assert.equal(result.outputTail, 'finished elsewhere\n');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => [a.number, a.failure_class, a.worker]),
      [
        [1, 'crash', first.identity],
        [2, 'succeeded', second.identity],
      ],
    );
    assert.equal((await taskRow(h.pool, taskId)).status, 'succeeded');
  });

  /**
   * An agent worker's runAgent that records its attempt's success, then loses Temporal before it can
   * answer (the attempt counts as a crash). `ran` counts its calls.
   */
  const successThenLost = (ran: { count: number }) => {
    const store = new AttemptStore(h.pool);
    return async (attempt: RunAgentInput) => {
      ran.count += 1;
      const runId = Context.current().info.workflowExecution?.runId;
      const { taskId, agent } = attempt;
      await store.startAttempt({ taskId, runId, attempt: attempt.attempt, agent, worker: 'w' });
      await store.finishAttempt({
        taskId,
        runId,
        attempt: attempt.attempt,
        exitCode: 0,
        failureClass: 'succeeded',
        error: null,
        outputBytes: 5,
        output: 'done\n',
      });
      throw ApplicationFailure.create({ message: 'agent worker stopped heartbeating (worker lost)', type: 'crash' });
    };
  };

  it('ends succeeded when its last attempt wrote its success and then counted as lost', async () => {
    // An agent worker that records its attempt's success, then loses Temporal before it can answer.
    const queues = await queuesServedBy(successThenLost({ count: 0 }));
    const { taskId, handle } = await startTask(queues, { prompt: 'p', maxAttempts: 1 });
    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.attempts, 1);
    assert.equal((await taskRow(h.pool, taskId)).status, 'succeeded');
    assert.deepEqual(await terminalEvents(taskId), ['succeeded']);
  });

  it('ends succeeded, not cancelled, when a cancel comes after a lost worker wrote its success', async () => {
    const ran = { count: 0 };
    // The first attempt records its success, then its worker loses Temporal: the task backs off to retry.
    const queues = await queuesServedBy(successThenLost(ran));
    const { taskId, handle } = await startTask(queues, { prompt: 'p', maxAttempts: 2 }, { backoffSeconds: 600 });
    await waitFor('the attempt to count as lost', async () => (await attemptRows(h.pool, taskId)).length === 1);
    await waitFor('the workflow to back off', async () => {
      const events = (await handle.fetchHistory()).events ?? [];
      return events.some((e) => e.timerStartedEventAttributes);
    });
    await handle.cancel();
    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
    assert.equal((await taskRow(h.pool, taskId)).status, 'succeeded');
    assert.deepEqual(await terminalEvents(taskId), ['succeeded']);
    assert.equal(ran.count, 1, 'no second attempt ran');
  });

  it('asks again at once when a slot frees while it was being refused one (the wake is kept)', async () => {
    let asks = 0;
    // The agent's one slot is taken on the first ask, and freed (the waiter woken) before the answer arrives.
    const queues = await queuesServedBy(async (attempt) => {
      asks += 1;
      if (asks > 1) return { exitCode: 0, outputBytes: 3, outputTail: 'ok\n' };
      await h.client.workflow.getHandle(workflowIdForTask(attempt.taskId)).signal(WAKE_SIGNAL);
      const waiting = { kind: 'concurrency' as const, agent: attempt.agent, message: 'at its limit', until: null };
      return { exitCode: 0, outputBytes: 0, outputTail: '', waiting };
    });
    // Without the wake, the task would look again only after a minute.
    const { handle } = await startTask(queues, { prompt: 'p' }, { waitRecheckSeconds: 60 });
    await waitFor('the task to end', async () => (await handle.describe()).status.name === 'COMPLETED', {
      timeoutMs: 15_000,
    });
    assert.equal(asks, 2);
  });
});
