import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentsFile, type AgentsFile } from '../../src/config/agents-file';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import { startAgentTask } from '../support/start-agent-task';
import { attemptRows } from '../support/task-rows';
import { TEST_AGENTS_FILE, uniqueQueue } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

/**
 * The slot waker finds the tasks waiting for a limited agent's slot by their stored reason, which the
 * workflow stores after the refusal: a slot freed in between wakes nobody. Here the holder of the only
 * slot of its agent ends just after the waiter was refused, and its wake has run before the waiter's
 * reason is stored.
 */
describe('a slot freed before its waiter stored why it waits', { timeout: 60_000 }, () => {
  const agent = `one-slot-${randomUUID().slice(0, 8)}`;
  const file = loadAgentsFile(TEST_AGENTS_FILE);
  const standIn = file.agents['stand-in'] as AgentsFile['agents'][string];
  const agents: AgentsFile = {
    ...file,
    agents: { ...file.agents, [agent]: { ...standIn, limits: { maxConcurrent: 1 } } },
  };
  let h: Harness;
  let dir: string;
  let queues: { workflowQueue: string; agentQueue: string };
  const stops: (() => Promise<void>)[] = [];
  let wakeRan: () => void = () => undefined;
  const woken = new Promise<void>((resolve) => (wakeRan = resolve));

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-slot-wake-'));
    queues = { workflowQueue: uniqueQueue('wf-slot-wake'), agentQueue: uniqueQueue('agents-slot-wake') };
    stops.push((await runWorkflowWorker(h, queues.workflowQueue)).stop);
    const worker = await runAgentWorker(h, queues.agentQueue, 'slot-wake', {
      agents,
      wrapSlotWaker: (real) => async (name, maxConcurrent) => {
        await real(name, maxConcurrent);
        wakeRan();
      },
      wrapAgents: (real) => {
        let refused = false;
        return {
          ...real,
          runAgent: async (input) => {
            const answer = await real.runAgent(input);
            if (answer.waiting?.kind !== 'concurrency' || refused) return answer;
            // The first refusal: the holder ends and its wake runs before the workflow hears of it.
            refused = true;
            writeFileSync(join(dir, 'end'), '');
            await within("the holder's release and wake", 30_000, woken);
            return answer;
          },
        };
      },
    });
    stops.push(worker.stop);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the only waiter at once, not at its look two minutes later', async () => {
    const holder = await startAgentTask(h, queues, { prompt: `@wait-file ${join(dir, 'end')}`, agent }, { agent });
    await waitFor('the holder to run', async () => (await attemptRows(h.pool, holder.taskId)).length === 1);
    // Its first look would come after two minutes: the slot's wake missed it.
    const waiter = await startAgentTask(
      h,
      queues,
      { prompt: '@print next', agent },
      { agent, waitRecheckSeconds: 120 },
    );
    const started = await waitFor(
      'the waiter to start',
      async () => (await attemptRows(h.pool, waiter.taskId))[0]?.started_at,
      { timeoutMs: 20_000 },
    );
    const freed = (await attemptRows(h.pool, holder.taskId))[0]?.finished_at as Date;
    const after = started.getTime() - freed.getTime();
    // Without the fix, its next look comes 120 s after its refusal.
    assert.ok(after < 15_000, `started ${after} ms after the slot freed`);
    assert.equal((await waiter.handle.result()).status, 'succeeded');
    assert.equal((await holder.handle.result()).status, 'succeeded');
  });
});
