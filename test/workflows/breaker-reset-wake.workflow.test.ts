import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import { loadAgentsFile, type AgentsFile } from '../../src/config/agents-file';
import { BreakerResetStore } from '../../src/store/breaker-reset-store';
import { wakeWaitingTasks } from '../../src/temporal/wake-waiting-tasks';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import { startAgentTask } from '../support/start-agent-task';
import { attemptRows } from '../support/task-rows';
import { TEST_AGENTS_FILE, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

/**
 * A breaker's reset wakes the tasks waiting for it by their stored reason, which the workflow stores
 * after the refusal: a reset in between wakes nobody. Here an agent's breaker, open for an hour, is reset
 * (as POST /v1/agents/:name/breaker/reset does it) just after a task's first refusal, before the workflow
 * hears of it. The same holds for a daily budget raised then (a wait with an `until` too, midnight UTC).
 */
describe('a breaker reset before its waiter stored why it waits', { timeout: 60_000 }, () => {
  const agent = `reset-${randomUUID().slice(0, 8)}`;
  const file = loadAgentsFile(TEST_AGENTS_FILE);
  const agents: AgentsFile = {
    ...file,
    agents: { ...file.agents, [agent]: file.agents['stand-in'] as AgentsFile['agents'][string] },
  };
  let h: Harness;
  let queues: { workflowQueue: string; agentQueue: string };
  const stops: (() => Promise<void>)[] = [];
  let resetAt: Date | undefined;

  before(async () => {
    h = await openHarness();
    queues = { workflowQueue: uniqueQueue('wf-reset-wake'), agentQueue: uniqueQueue('agents-reset-wake') };
    stops.push((await runWorkflowWorker(h, queues.workflowQueue)).stop);
    const worker = await runAgentWorker(h, queues.agentQueue, 'reset-wake', {
      agents,
      wrapAgents: (real) => ({
        ...real,
        runAgent: async (input) => {
          const answer = await real.runAgent(input);
          if (answer.waiting?.kind !== 'breaker_open' || resetAt) return answer;
          // The first refusal: the reset and its wake run before the workflow hears of it.
          resetAt = new Date();
          const waiting = await new BreakerResetStore(h.pool).reset(agent);
          await wakeWaitingTasks(h.client, waiting, { what: 'the breaker', logger: new DefaultLogger('ERROR') });
          return answer;
        },
      }),
    });
    stops.push(worker.stop);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await h?.close();
  });

  it('starts the waiter at once, not at its next look five minutes later', async () => {
    await h.pool.query(
      `INSERT INTO agent_breakers (agent, state, failures, opened_at, open_until)
       VALUES ($1, 'open', 5, clock_timestamp(), clock_timestamp() + interval '1 hour')`,
      [agent],
    );
    const waiter = await startAgentTask(
      h,
      queues,
      { prompt: '@print after the reset', agent },
      { agent, agents: [agent] },
    );
    const started = await waitFor(
      'the waiter to start',
      async () => (await attemptRows(h.pool, waiter.taskId))[0]?.started_at,
      { timeoutMs: 20_000 },
    );
    const after = started.getTime() - (resetAt as Date).getTime();
    // Without the fix, its next look comes 5 minutes after its refusal (the breaker's until, an hour, capped).
    assert.ok(after < 15_000, `started ${after} ms after the reset`);
    assert.equal((await waiter.handle.result()).status, 'succeeded');
  });
});
