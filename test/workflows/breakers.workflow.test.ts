import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask, type AgentTaskInput, type RunAgentInput } from '../../workflows/definitions';
import { startTwoAgentWorkers, type TwoAgentWorkers } from '../support/agent-worker-process';
import type { Harness } from '../support/in-process-workers';
import { insertTask } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

type TaskHandle = WorkflowHandle<typeof agentTaskWorkflow>;

interface BreakerRow {
  state: string;
  failures: number;
  open_until: Date | null;
}

/**
 * Circuit breakers are shared by every agent worker: here an in-process worker and a worker process
 * (each runs one agent at a time, so two tasks at once run on both). breaker-a opens after two
 * breaker-class failures and stays open 3 s; its chain falls back to breaker-b.
 */
describe('circuit breakers across agent workers', { timeout: 90_000 }, () => {
  let cluster: TwoAgentWorkers;
  let h: Harness;
  let queues: TwoAgentWorkers['queues'];

  before(async () => {
    cluster = await startTwoAgentWorkers('breaker', 1);
    ({ h, queues } = cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  async function startTask(
    prompt: string,
    agents: string[],
    waitRecheckSeconds = 0.1,
  ): Promise<{ taskId: string; handle: TaskHandle }> {
    const taskId = await insertTask(h.pool, { prompt, agent: agents[0] });
    const input: AgentTaskInput = {
      taskId,
      agent: agents[0] as string,
      agents,
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

  const breaker = async (): Promise<BreakerRow | undefined> =>
    (await h.pool.query<BreakerRow>("SELECT state, failures, open_until FROM agent_breakers WHERE agent = 'breaker-a'"))
      .rows[0];
  const attempts = async (taskId: string) =>
    (
      await h.pool.query<{ agent: string; failure_class: string; worker: string }>(
        'SELECT agent, failure_class, worker FROM attempts WHERE task_id = $1 ORDER BY number',
        [taskId],
      )
    ).rows;

  it('opens on failures seen by two workers, skips the agent while open, probes after the cooldown and closes', async () => {
    // 1. Two tasks at once, on both workers: breaker-a is overloaded for each, and both fall back to b.
    const failing = '@when a @sleep 0.5\n@when a @fail overloaded\n@print done by b';
    const first = await Promise.all([
      startTask(failing, ['breaker-a', 'breaker-b']),
      startTask(failing, ['breaker-a', 'breaker-b']),
    ]);
    for (const { handle } of first) assert.equal((await handle.result()).agent, 'breaker-b');
    const failedOn = (await Promise.all(first.map(({ taskId }) => attempts(taskId)))).map((a) => a[0]);
    assert.deepEqual(
      failedOn.map((a) => [a?.agent, a?.failure_class]),
      [
        ['breaker-a', 'overloaded'],
        ['breaker-a', 'overloaded'],
      ],
    );
    assert.equal(new Set(failedOn.map((a) => a?.worker)).size, 2, 'the two failures happened on two workers');
    const opened = await breaker();
    assert.equal(opened?.state, 'open');
    assert.ok(opened?.open_until && opened.open_until.getTime() > Date.now(), 'open for the cooldown');

    // 2. While open, a task that breaker-a could do goes straight to breaker-b: no attempt on a.
    const skipped = await startTask('@print anyone can do this', ['breaker-a', 'breaker-b']);
    assert.equal((await skipped.handle.result()).agent, 'breaker-b');
    assert.deepEqual(
      (await attempts(skipped.taskId)).map((a) => [a.agent, a.failure_class]),
      [['breaker-b', 'succeeded']],
    );
    // Each attempt says whether its chain has another agent: only then does a worker's own queue keep
    // the slot of one held back by an open breaker (agent-slot-interceptor.ts).
    const asked = (await skipped.handle.fetchHistory()).events?.flatMap((e) => {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name !== 'runAgent') return [];
      const attempt = JSON.parse(Buffer.from(scheduled.input?.payloads?.[0]?.data ?? []).toString()) as RunAgentInput;
      return [[attempt.agent, attempt.moreInChain]];
    });
    assert.deepEqual(asked, [
      ['breaker-a', true],
      ['breaker-b', false],
    ]);

    // 3. A task whose whole chain is open waits, visibly, instead of failing...
    const waiting = await startTask('@print probed', ['breaker-a']);
    const reason = await waitFor('the task to wait for the open breaker', async () => {
      const row = (
        await h.pool.query<{ status: string; waiting_reason: { kind: string; agent: string; until: string } | null }>(
          'SELECT status, waiting_reason FROM tasks WHERE id = $1',
          [waiting.taskId],
        )
      ).rows[0];
      return row?.status === 'queued' && row.waiting_reason ? row.waiting_reason : undefined;
    });
    assert.equal(reason.kind, 'breaker_open');
    assert.equal(reason.agent, 'breaker-a');
    assert.equal(new Date(reason.until).getTime(), opened?.open_until?.getTime());
    assert.deepEqual(await attempts(waiting.taskId), []);

    // 4. ...and after the cooldown it is the probe: it succeeds, and the breaker closes.
    const result = await waiting.handle.result();
    assert.equal(result.agent, 'breaker-a');
    assert.ok(Date.now() >= (opened?.open_until?.getTime() ?? 0), 'the probe ran after the cooldown');
    assert.deepEqual(await breaker(), { state: 'closed', failures: 0, open_until: null });
  });

  it('wakes the tasks waiting for a half-open breaker as soon as its probe closes it', async () => {
    // breaker-a open, its cooldown over: the next attempt is the probe.
    await h.pool.query(
      `INSERT INTO agent_breakers (agent, state, failures, opened_at, open_until)
       VALUES ('breaker-a', 'open', 2, clock_timestamp(), clock_timestamp())
       ON CONFLICT (agent) DO UPDATE SET state = 'open', failures = 2, window_started_at = NULL,
         opened_at = clock_timestamp(), open_until = clock_timestamp(), probe = NULL`,
    );
    const go = join(tmpdir(), `atelier-probe-${randomUUID()}`);
    try {
      const probe = await startTask(`@wait-file ${go}\n@print probed`, ['breaker-a']);
      await waitFor('the probe to run', async () => (await breaker())?.state === 'half_open');
      // Held back while the probe runs, it would look again only after 30 s.
      const waiting = await startTask('@print after the probe', ['breaker-a'], 120);
      await waitFor('the task to wait for the half-open breaker', async () => {
        const row = (
          await h.pool.query<{ kind: string | null }>(
            "SELECT waiting_reason->>'kind' AS kind FROM tasks WHERE id = $1",
            [waiting.taskId],
          )
        ).rows[0];
        return row?.kind === 'breaker_open';
      });
      writeFileSync(go, '');
      assert.equal((await probe.handle.result()).agent, 'breaker-a');
      const [probed] = await h.pool
        .query<{ finished_at: Date }>('SELECT finished_at FROM attempts WHERE task_id = $1', [probe.taskId])
        .then((r) => r.rows);
      const started = await waitFor(
        'the waiting task to start',
        async () =>
          (
            await h.pool.query<{ started_at: Date }>('SELECT started_at FROM attempts WHERE task_id = $1', [
              waiting.taskId,
            ])
          ).rows[0]?.started_at,
        { timeoutMs: 20_000 },
      );
      const after = started.getTime() - (probed?.finished_at as Date).getTime();
      // Without the wake, its next look comes 30 s after its last.
      assert.ok(after < 15_000, `started ${after} ms after the probe closed the breaker`);
      assert.equal((await waiting.handle.result()).agent, 'breaker-a');
    } finally {
      // Left, the probe would wait on it until its timeout.
      rmSync(go, { force: true });
    }
  });
});
