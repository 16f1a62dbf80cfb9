import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness, type RunningWorker } from './in-process-workers';
import { ROOT, TEST_AGENTS_FILE, testEnv, uniqueQueue } from './test-env';
import { waitFor } from './wait-for';

export interface AgentWorkerProcess {
  process: ChildProcess;
  /** Its identity in Temporal and on the attempts it runs: `agent-worker:<pid>-<random>@<host>`. */
  identity: string;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * A second agent worker, as production runs it: `node dist/src/workers/agent-worker.js` in its own
 * process (one process cannot run two workers on one task queue). Resolves once it polls `taskQueue`.
 */
export async function startAgentWorkerProcess(
  client: Client,
  taskQueue: string,
  env: NodeJS.ProcessEnv = {},
): Promise<AgentWorkerProcess> {
  let output = '';
  const child = spawn(process.execPath, [resolve(ROOT, 'dist/src/workers/agent-worker.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      DATABASE_URL: testEnv.databaseUrl,
      ATELIER_AGENT_QUEUE: taskQueue,
      ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
      ATELIER_SHUTDOWN_GRACE_SECONDS: '1',
      ATELIER_AGENT_WORKER_METRICS_PORT: 'off',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pid = child.pid ?? 0;
  let identity = '';
  try {
    identity = await waitFor(
      `the agent worker process to poll ${taskQueue}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the agent worker exited ${child.exitCode}: ${output}`);
        const res = await client.workflowService.describeTaskQueue({
          namespace: testEnv.namespace,
          taskQueue: { name: taskQueue },
          taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        });
        return res.pollers?.find((p) => p.identity?.startsWith(`agent-worker:${pid}-`))?.identity ?? undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    process: child,
    identity,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface TwoAgentWorkers {
  h: Harness;
  queues: { workflowQueue: string; agentQueue: string };
  stop: () => Promise<void>;
}

/**
 * A workflow worker and two agent workers on fresh queues, `slots` slots each: one in this process
 * (named `name`), one a worker process. For what must hold across workers (breakers, limits).
 */
export async function startTwoAgentWorkers(name: string, slots: number): Promise<TwoAgentWorkers> {
  const h = await openHarness();
  const queues = { workflowQueue: uniqueQueue(`wf-${name}`), agentQueue: uniqueQueue(`agents-${name}`) };
  const workers: RunningWorker[] = await Promise.all([
    runWorkflowWorker(h, queues.workflowQueue),
    runAgentWorker(h, queues.agentQueue, `${name}-worker`, { slots }),
  ]);
  const second = await startAgentWorkerProcess(h.client, queues.agentQueue, { ATELIER_AGENT_SLOTS: String(slots) });
  return {
    h,
    queues,
    stop: async () => {
      await second.stop();
      await Promise.all(workers.map((w) => w.stop()));
      await h.close();
    },
  };
}
