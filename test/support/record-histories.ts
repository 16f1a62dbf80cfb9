/**
 * Records the workflow histories that test/workflows/replay.test.ts replays, one JSON file per scenario
 * in test/histories/. Re-record only on purpose (a deliberate, patched workflow change; the old files
 * stay as long as runs started by the old code may exist):
 *
 *   npm run build && node dist/test/support/record-histories.js
 *
 * It starts its own Temporal dev server and scratch database (as `npm test` does) and removes them after.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from './in-process-workers';
import { insertTask } from './task-rows';
import { ROOT, uniqueQueue } from './test-env';
import { startTestServices } from './test-services';
import { waitFor } from './wait-for';

export const HISTORIES_DIR = resolve(ROOT, 'test/histories');

type Handle = WorkflowHandle<typeof agentTaskWorkflow>;

interface Scenario {
  /** The history's file name, without .json. */
  name: string;
  /** How the workflow must end for its history to be worth keeping. */
  expect: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  prompt: (scratch: string) => string;
  input?: Partial<AgentTaskInput>;
  /** Acts on the running workflow (cancels it, say). */
  whileRunning?: (handle: Handle, scratch: string) => Promise<void>;
}

const agentStarted = (scratch: string): Promise<true> =>
  waitFor('the agent to start', () => existsSync(join(scratch, 'pid')));

export const HISTORY_SCENARIOS: readonly Scenario[] = [
  { name: 'success', expect: 'COMPLETED', prompt: () => '@print done' },
  {
    name: 'retries-then-success',
    expect: 'COMPLETED',
    prompt: (scratch) => `@fail-until 3 ${join(scratch, 'runs')}\n@print done`,
    input: { maxAttempts: 3 },
  },
  { name: 'retries-exhausted', expect: 'FAILED', prompt: () => '@exit 1', input: { maxAttempts: 2 } },
  { name: 'timeout', expect: 'FAILED', prompt: () => '@hang', input: { timeoutSeconds: 1 } },
  {
    name: 'cancelled',
    expect: 'CANCELLED',
    prompt: (scratch) => `@pidfile ${join(scratch, 'pid')}\n@hang`,
    input: { maxAttempts: 3 },
    whileRunning: async (handle, scratch) => {
      await agentStarted(scratch);
      await handle.cancel();
    },
  },
  { name: 'invalid-input', expect: 'FAILED', prompt: () => '@print never runs', input: { maxAttempts: 0 } },
  { name: 'unknown-agent', expect: 'FAILED', prompt: () => 'hello', input: { agent: 'no-such-agent', maxAttempts: 3 } },
];

/**
 * Runs every scenario at once on fresh queues with in-process workers and writes each history to
 * `outDir/<name>.json`. Throws if a scenario ends otherwise than expected, so no wrong history is kept.
 */
export async function recordHistories(h: Harness, outDir: string): Promise<string[]> {
  const workflowQueue = uniqueQueue('record-wf');
  const agentQueue = uniqueQueue('record-agents');
  const workers = await Promise.all([runWorkflowWorker(h, workflowQueue), runAgentWorker(h, agentQueue)]);
  const scratchRoot = mkdtempSync(join(tmpdir(), 'atelier-record-'));
  mkdirSync(outDir, { recursive: true });
  try {
    return await Promise.all(
      HISTORY_SCENARIOS.map(async (scenario) => {
        const scratch = mkdtempSync(join(scratchRoot, `${scenario.name}-`));
        const agent = scenario.input?.agent ?? 'stand-in';
        const taskId = await insertTask(h.pool, { prompt: scenario.prompt(scratch), agent });
        const input: AgentTaskInput = {
          taskId,
          agent,
          timeoutSeconds: 30,
          maxAttempts: 1,
          priority: 3,
          agentTaskQueue: agentQueue,
          backoffSeconds: 0.1,
          ...scenario.input,
        };
        const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
          taskQueue: workflowQueue,
          workflowId: workflowIdForTask(taskId),
          args: [input],
        });
        await scenario.whileRunning?.(handle, scratch);
        await handle.result().catch(() => undefined);
        const status = (await handle.describe()).status.name;
        if (status !== scenario.expect)
          throw new Error(`scenario ${scenario.name} ended ${status}, not ${scenario.expect}`);
        const file = join(outDir, `${scenario.name}.json`);
        writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
        return file;
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    rmSync(scratchRoot, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const services = await startTestServices(`atelier_record_${process.pid}`);
  process.env.TEMPORAL_ADDRESS = services.temporalAddress;
  process.env.DATABASE_URL = services.databaseUrl;
  try {
    const h = await openHarness();
    try {
      for (const file of await recordHistories(h, HISTORIES_DIR)) process.stdout.write(`recorded ${file}\n`);
    } finally {
      await h.close();
    }
  } finally {
    await services.stop();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`recording histories failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
