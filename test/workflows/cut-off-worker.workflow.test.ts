import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CUT_OFF_KILL_BY_MS } from '../../src/workers/temporal-contact';
import { startAgentWorkerProcess, type AgentWorkerProcess } from '../support/agent-worker-process';
import { startCuttableProxy, type CuttableProxy } from '../support/cuttable-proxy';
import { startAgentTask } from '../support/start-agent-task';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import type { RunningWorker } from '../support/in-process-workers';
import { attemptRows } from '../support/task-rows';
import { testEnv, uniqueQueue } from '../support/test-env';
import { processAlive, waitFor } from '../support/wait-for';

describe('an agent worker cut off from Temporal', { timeout: 120_000 }, () => {
  let h: Harness;
  let dir: string;
  let proxy: CuttableProxy;
  let cutOff: AgentWorkerProcess | undefined;
  const workers: RunningWorker[] = [];
  const queues = { workflowQueue: uniqueQueue('wf-cut'), agentQueue: uniqueQueue('agents-cut') };

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-cut-off-'));
    proxy = await startCuttableProxy(testEnv.temporalAddress);
    workers.push(await runWorkflowWorker(h, queues.workflowQueue));
  });
  after(async () => {
    // Cut off, it could not drain: it goes the hard way.
    cutOff?.process.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stop()));
    await proxy?.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops its agent before Temporal runs the next attempt elsewhere: never two agents on one task', async () => {
    // The only agent worker at first, behind the proxy, so the first attempt runs there. With its one
    // slot taken it has no poll waiting in Temporal when the line is cut, which would take the next
    // attempt into the void.
    cutOff = await startAgentWorkerProcess(h.client, queues.agentQueue, {
      TEMPORAL_ADDRESS: proxy.address,
      ATELIER_AGENT_SLOTS: '1',
    });
    const pidFile = join(dir, 'agent.pid');
    const { taskId, handle } = await startAgentTask(h, queues, `@ignore-term\n@pidfile ${pidFile}\n@hang`, {
      maxAttempts: 2,
      backoffSeconds: 0.1,
    });
    const pid = await waitFor('the agent to start', () =>
      existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined,
    );
    // The agent ignores SIGTERM: only the SIGKILL at the deadline stops it. It reads its prompt at each
    // attempt: the next one finishes instead of hanging.
    await h.pool.query('UPDATE tasks SET prompt = $2 WHERE id = $1', [taskId, '@print finished elsewhere']);
    const other = await runAgentWorker(h, queues.agentQueue, 'in-contact');
    workers.push(other);

    const cutAt = Date.now();
    proxy.cut();
    await waitFor('the cut-off worker to stop its agent', () => !processAlive(pid), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const stoppedAt = Date.now();
    assert.ok(
      stoppedAt - cutAt <= CUT_OFF_KILL_BY_MS + 500,
      `the agent ran ${stoppedAt - cutAt} ms after the cut, more than the ${CUT_OFF_KILL_BY_MS} ms allowed`,
    );

    const result = await handle.result();
    assert.equal(result.outputTail, 'finished elsewhere\n');
    const attempts = await attemptRows(h.pool, taskId);
    assert.deepEqual(
      attempts.map((a) => [a.number, a.failure_class, a.worker]),
      [
        [1, 'crash', cutOff.identity],
        [2, 'succeeded', other.identity],
      ],
    );
    assert.match(attempts[0]?.error ?? '', /lost contact with Temporal/);
    const secondStart = attempts[1]?.started_at.getTime() ?? 0;
    assert.ok(
      secondStart > stoppedAt,
      `the next attempt started ${stoppedAt - secondStart} ms before the agent stopped`,
    );
  });
});
