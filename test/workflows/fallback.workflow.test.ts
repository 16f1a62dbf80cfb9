import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { agentTaskWorkflow } from '../../workflows';
import { WAKE_SIGNAL, workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import {
  openHarness,
  runAgentWorker,
  runWorkflowWorker,
  type Harness,
  type RunningWorker,
} from '../support/in-process-workers';
import { insertTask, taskRow } from '../support/task-rows';
import { uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

type TaskHandle = WorkflowHandle<typeof agentTaskWorkflow>;

const CHAIN = ['chain-a', 'chain-b', 'chain-c'];

interface Hop {
  number: number;
  agent: string;
  failure_class: string | null;
  cost_usd: string | null;
}

/**
 * Fallback chains and per-class policies, through the real workflow, agent worker and stand-in agents
 * (chain-a prints like Claude Code, chain-b like Codex, chain-c like Gemini CLI; see agents.yaml).
 */
describe('fallback chains and policies', { timeout: 60_000 }, () => {
  let h: Harness;
  let dir: string;
  const workers: RunningWorker[] = [];
  const queues = { workflowQueue: uniqueQueue('wf-chain'), agentQueue: uniqueQueue('agents-chain') };

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-fallback-'));
    workers.push(
      ...(await Promise.all([runWorkflowWorker(h, queues.workflowQueue), runAgentWorker(h, queues.agentQueue)])),
    );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startTask(
    prompt: string,
    overrides: Partial<AgentTaskInput> = {},
    budgetUsd?: number,
  ): Promise<{ taskId: string; handle: TaskHandle }> {
    const taskId = await insertTask(h.pool, { prompt, agent: CHAIN[0], maxAttempts: 3 });
    if (budgetUsd !== undefined)
      await h.pool.query('UPDATE tasks SET budget_usd = $2 WHERE id = $1', [taskId, budgetUsd]);
    const input: AgentTaskInput = {
      taskId,
      agent: CHAIN[0] as string,
      agents: CHAIN,
      timeoutSeconds: 30,
      maxAttempts: 3,
      priority: 3,
      agentTaskQueue: queues.agentQueue,
      backoffSeconds: 0.1,
      waitRecheckSeconds: 0.1,
      ...overrides,
    };
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [input],
    });
    return { taskId, handle };
  }

  const hops = async (taskId: string): Promise<[string, string | null][]> =>
    (
      await h.pool.query<Hop>(
        'SELECT number, agent, failure_class, cost_usd FROM attempts WHERE task_id = $1 ORDER BY number',
        [taskId],
      )
    ).rows.map((r) => [r.agent, r.failure_class]);

  async function failureOf(handle: TaskHandle): Promise<ApplicationFailure> {
    const err = await handle.result().then(
      (r) => assert.fail(`expected a failure, got ${JSON.stringify(r)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    return err.cause;
  }

  it('moves to the next agent at once on auth, records the hop, and names the agent of the result', async () => {
    const { taskId, handle } = await startTask('@when a @fail auth\n@usage 2000 400\n@print done by b');
    const result = await handle.result();
    assert.equal(result.agent, 'chain-b');
    assert.equal(result.attempts, 2);
    // Codex reports tokens, not cost: the profile's prices make it 2000 × 1.25 + 400 × 10 per million.
    assert.equal(result.costUsd, 0.0065);
    assert.equal(result.inputTokens, 2000);
    assert.deepEqual(await hops(taskId), [
      ['chain-a', 'auth'],
      ['chain-b', 'succeeded'],
    ]);
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result_attempt, 2);
  });

  it('moves a prompt too long for one argument on to an agent that reads it on stdin', async () => {
    // chain-c passes the prompt as one argument, over the kernel's 128 KiB limit (E2BIG); chain-b reads stdin.
    const { taskId, handle } = await startTask(`@print done by b\n${'x'.repeat(200_000)}`, {
      agent: 'chain-c',
      agents: ['chain-c', 'chain-b'],
    });
    assert.equal((await handle.result()).agent, 'chain-b');
    assert.deepEqual(await hops(taskId), [
      ['chain-c', 'context_overflow'],
      ['chain-b', 'succeeded'],
    ]);
  });

  it("retries per the profile's policy, then falls through the chain to the agent that can do it", async () => {
    const { taskId, handle } = await startTask(
      '@when a @fail overloaded\n@when b @fail context-overflow\n@print done by c',
    );
    const result = await handle.result();
    assert.equal(result.agent, 'chain-c');
    // chain-a's policy retries overloaded once; context overflow moves on at once.
    assert.deepEqual(await hops(taskId), [
      ['chain-a', 'overloaded'],
      ['chain-a', 'overloaded'],
      ['chain-b', 'context_overflow'],
      ['chain-c', 'succeeded'],
    ]);
  });

  it('fails the task on max_turns without trying the rest of the chain', async () => {
    const { taskId, handle } = await startTask('@when a @fail max-turns\n@print never');
    const cause = await failureOf(handle);
    assert.equal(cause.type, 'max_turns');
    assert.deepEqual(await hops(taskId), [['chain-a', 'max_turns']]);
    const task = await taskRow(h.pool, taskId);
    assert.equal(task.status, 'failed');
    assert.equal(task.error_class, 'max_turns');
  });

  it('fails with the last class once the whole chain has failed', async () => {
    const { taskId, handle } = await startTask('@fail auth');
    const cause = await failureOf(handle);
    assert.equal(cause.type, 'auth');
    assert.match(cause.message, /fallback chain exhausted/);
    assert.deepEqual(await hops(taskId), [
      ['chain-a', 'auth'],
      ['chain-b', 'auth'],
      ['chain-c', 'auth'],
    ]);
  });

  it('waits for a rate limit that resets soon, on the same agent', async () => {
    const counter = join(dir, `runs-${randomUUID()}`);
    const started = Date.now();
    const { taskId, handle } = await startTask(`@when a @fail-until 2 ${counter} rate-limit 3\n@print done by a`);
    const result = await handle.result();
    assert.equal(result.agent, 'chain-a');
    assert.ok(Date.now() - started >= 1500, 'the retry waited for the reset time (whole seconds, 2 to 3 s away)');
    assert.deepEqual(await hops(taskId), [
      ['chain-a', 'rate_limited'],
      ['chain-a', 'succeeded'],
    ]);
  });

  it('moves on when the rate limit resets too far away', async () => {
    const { taskId, handle } = await startTask('@when a @fail rate-limit 7200\n@print done by b');
    assert.equal((await handle.result()).agent, 'chain-b');
    assert.deepEqual(await hops(taskId), [
      ['chain-a', 'rate_limited'],
      ['chain-b', 'succeeded'],
    ]);
  });

  it("stops starting attempts at the task's budget, shows why it waits, and resumes when it is raised", async () => {
    // A failed attempt of chain-a reports $0.02, over the budget of $0.01: its retry may not start.
    const { taskId, handle } = await startTask('@cost 0.02\n@fail overloaded', { agents: ['chain-a'] }, 0.01);
    const waiting = await waitFor('the task to wait for its budget', async () => {
      const row = (
        await h.pool.query<{ status: string; waiting_reason: { kind: string; message: string } | null }>(
          'SELECT status, waiting_reason FROM tasks WHERE id = $1',
          [taskId],
        )
      ).rows[0];
      return row?.status === 'queued' && row.waiting_reason ? row.waiting_reason : undefined;
    });
    assert.equal(waiting.kind, 'task_budget');
    assert.match(waiting.message, /spent \$0\.0200 of its budget of \$0\.01/);
    assert.deepEqual(await hops(taskId), [['chain-a', 'overloaded']]);

    await h.pool.query(`UPDATE tasks SET budget_usd = 1, prompt = '@print within budget' WHERE id = $1`, [taskId]);
    await handle.signal(WAKE_SIGNAL);
    const result = await handle.result();
    assert.equal(result.attempts, 2);
    const task = await h.pool.query<{ status: string; waiting_reason: unknown }>(
      'SELECT status, waiting_reason FROM tasks WHERE id = $1',
      [taskId],
    );
    assert.deepEqual(task.rows[0], { status: 'succeeded', waiting_reason: null });
  });
});
