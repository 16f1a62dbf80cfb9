import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAgentWorkerProcess, type AgentWorkerProcess } from '../support/agent-worker-process';
import { openHarness, runWorkflowWorker, type Harness, type RunningWorker } from '../support/in-process-workers';
import { startAgentTask } from '../support/start-agent-task';
import { uniqueQueue } from '../support/test-env';
import { processAlive, waitFor } from '../support/wait-for';

/** The messages of the JSON log lines in `output`. */
const logMessages = (output: string): string[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');

describe('an agent worker told twice to stop', { timeout: 120_000 }, () => {
  let h: Harness;
  let dir: string;
  let workflows: RunningWorker;
  let agents: AgentWorkerProcess | undefined;
  const queues = { workflowQueue: uniqueQueue('wf-signals'), agentQueue: uniqueQueue('agents-signals') };

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-stop-signals-'));
    workflows = await runWorkflowWorker(h, queues.workflowQueue);
  });
  after(async () => {
    agents?.process.kill('SIGKILL');
    await workflows.stop();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a second SIGTERM during its drain as the same request: its agent finishes, it exits 0', async () => {
    agents = await startAgentWorkerProcess(h.client, queues.agentQueue, {
      ATELIER_SHUTDOWN_GRACE_SECONDS: '60',
      ATELIER_AGENT_WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'info',
    });
    const worker = agents.process;
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      worker.once('exit', (code, signal) => r([code, signal])),
    );
    const pidFile = join(dir, 'agent.pid');
    const doneFile = join(dir, 'done');
    const { handle } = await startAgentTask(
      h,
      queues,
      `@pidfile ${pidFile}\n@wait-file ${doneFile}\n@print finished while draining`,
    );
    const agentPid = await waitFor('the agent to start', () =>
      existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined,
    );
    const metricsUrl = await waitFor('the worker to serve metrics', () => {
      const line = agents?.output().match(/"metricsUrl":"([^"]+)"/);
      return line?.[1];
    });
    const stillRunning = (): void => {
      if (worker.exitCode !== null || worker.signalCode !== null) {
        throw new Error(`the worker exited (${worker.exitCode ?? worker.signalCode}): ${agents?.output()}`);
      }
    };

    worker.kill('SIGTERM');
    await waitFor('the worker to drain (/health/ready answers 503)', async () => {
      stillRunning();
      return (await fetch(metricsUrl.replace(/\/metrics$/, '/health/ready'))).status === 503;
    });
    worker.kill('SIGTERM');
    await waitFor('the worker to log the repeat', () => {
      stillRunning();
      return logMessages(agents?.output() ?? '').includes('already stopping; signal ignored');
    });

    assert.ok(processAlive(agentPid), 'the agent still runs');
    writeFileSync(doneFile, '');
    const result = await handle.result();
    assert.equal(result.outputTail, 'finished while draining\n');
    assert.deepEqual(await exited, [0, null], `the worker exits 0 once drained\n${agents.output()}`);
  });
});
