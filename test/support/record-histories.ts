/**
 * Records the workflow histories that test/workflows/replay.test.ts replays, one JSON file per scenario
 * in test/histories/. Without arguments it records only the scenarios that have no file yet, so the
 * committed histories are never overwritten: after a deliberate, patched workflow change, add scenarios
 * with new names (the old files stay as long as runs started by the old code may exist). Name
 * scenarios to record (and overwrite) just those, on purpose:
 *
 *   npm run build && node dist/test/support/record-histories.js [scenario …]
 *
 * It starts its own Temporal dev server and scratch database (as `npm test` does) and removes them after.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { agentTaskWorkflow } from '../../workflows';
import { WAKE_SIGNAL, workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from './in-process-workers';
import { insertTask } from './task-rows';
import { ROOT, uniqueQueue } from './test-env';
import { startTestServices } from './test-services';
import { waitFor } from './wait-for';
import { initRepo } from './git';

export const HISTORIES_DIR = resolve(ROOT, 'test/histories');

/** The git repository of a worktree scenario (made fresh each time it is recorded). */
const historyRepo = (scenario: string): string => join(tmpdir(), `atelier-history-${scenario}`);

function makeHistoryRepo(scenario: string): void {
  rmSync(historyRepo(scenario), { recursive: true, force: true });
  initRepo(historyRepo(scenario));
}

type Handle = WorkflowHandle<typeof agentTaskWorkflow>;

interface Scenario {
  /** The history's file name, without .json. */
  name: string;
  /** How the workflow must end for its history to be worth keeping. */
  expect: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  prompt: (scratch: string) => string;
  input?: Partial<AgentTaskInput>;
  /** The task's cost cap, in its row. */
  budgetUsd?: number;
  /** Prepares the database before the workflow starts (opens a breaker, say). */
  setup?: (h: Harness) => Promise<void>;
  /** Acts on the running workflow (cancels it, say). */
  whileRunning?: (handle: Handle, scratch: string, h: Harness, taskId: string) => Promise<void>;
}

/** Resolves once the task shows `queued` with a waiting reason. */
const taskWaits = (h: Harness, taskId: string): Promise<true> =>
  waitFor('the task to wait', async () => {
    const res = await h.pool.query<{ status: string; waiting: boolean }>(
      'SELECT status, waiting_reason IS NOT NULL AS waiting FROM tasks WHERE id = $1',
      [taskId],
    );
    return res.rows[0]?.status === 'queued' && res.rows[0].waiting ? true : undefined;
  });

/** Scenarios of the chain loop (patch agent-chains-and-policies). */
const chain = (agents: string[], input: Partial<AgentTaskInput> = {}): Partial<AgentTaskInput> => ({
  agent: agents[0],
  agents,
  maxAttempts: 3,
  waitRecheckSeconds: 0.1,
  ...input,
});

const agentStarted = (scratch: string): Promise<true> =>
  waitFor('the agent to start', () => existsSync(join(scratch, 'pid')));

/** At a code level: the paths of every patch up to it, taken without patch markers. */
const atLevel =
  (level: number) =>
  (scenario: Scenario): Scenario => ({
    ...scenario,
    name: `level${level}-${scenario.name}`,
    input: { ...scenario.input, codeLevel: level },
  });

/** A task whose agent writes outside its locks, in repository `name`, which fails it when it says so. */
const lockViolation = (name: string, input: Partial<AgentTaskInput> = {}): Scenario => ({
  name,
  expect: 'FAILED',
  prompt: () => '@pidfile out.txt',
  input: {
    repo: { path: historyRepo(name) },
    locks: { repo: historyRepo(name), globs: ['src/**'] },
    failOnLockViolations: true,
    ...input,
  },
  setup: async () => makeHistoryRepo(name),
});

/** A task whose first attempt fails after writing a file, in repository `name`; the second continues from it. */
const salvage = (name: string, input: Partial<AgentTaskInput> = {}): Scenario => ({
  name,
  expect: 'COMPLETED',
  prompt: (scratch) => `@pidfile out.txt\n@fail-until 2 ${join(scratch, 'count')}`,
  input: { repo: { path: historyRepo(name) }, maxAttempts: 2, ...input },
  setup: async () => makeHistoryRepo(name),
});

/** Held back by its budget until it is raised and the task woken (at level 2: patch wake-kept-across-asks). */
const chainBudgetWait: Scenario = {
  name: 'chain-budget-wait',
  expect: 'COMPLETED',
  prompt: () => '@print within budget',
  input: chain(['chain-b']),
  budgetUsd: 0,
  whileRunning: async (handle, _scratch, h, taskId) => {
    await taskWaits(h, taskId);
    await h.pool.query('UPDATE tasks SET budget_usd = 1 WHERE id = $1', [taskId]);
    await handle.signal(WAKE_SIGNAL);
  },
};
/**
 * Cancelled in its retry's backoff after its run's success was written (as a worker that wrote it and
 * was lost would have): it ends succeeded (patch cancel-follows-recorded-end).
 */
const cancelAfterSuccessRecorded: Scenario = {
  name: 'cancel-after-success-recorded',
  expect: 'COMPLETED',
  prompt: () => '@exit 1',
  input: { maxAttempts: 2, backoffSeconds: 60 },
  whileRunning: async (handle, _scratch, h, taskId) => {
    await waitFor('the retry to back off', async () =>
      ((await handle.fetchHistory()).events ?? []).some((e) => e.timerStartedEventAttributes),
    );
    await h.pool.query(
      `INSERT INTO task_events (task_id, run, kind, attempt, terminal) VALUES ($1, 1, 'succeeded', 1, true)`,
      [taskId],
    );
    await handle.cancel();
  },
};
const success: Scenario = { name: 'success', expect: 'COMPLETED', prompt: () => '@print done' };
const retriesThenSuccess: Scenario = {
  name: 'retries-then-success',
  expect: 'COMPLETED',
  prompt: (scratch) => `@fail-until 3 ${join(scratch, 'runs')}\n@print done`,
  input: { maxAttempts: 3 },
};
const cancelled: Scenario = {
  name: 'cancelled',
  expect: 'CANCELLED',
  prompt: (scratch) => `@pidfile ${join(scratch, 'pid')}\n@hang`,
  input: { maxAttempts: 3 },
  whileRunning: async (handle, scratch) => {
    await agentStarted(scratch);
    await handle.cancel();
  },
};
const invalidInput: Scenario = {
  name: 'invalid-input',
  expect: 'FAILED',
  prompt: () => '@print never runs',
  input: { maxAttempts: 0 },
};
const chainFallback: Scenario = {
  name: 'chain-fallback',
  expect: 'COMPLETED',
  prompt: () => '@when a @fail auth\n@print done by b',
  input: chain(['chain-a', 'chain-b']),
};

export const HISTORY_SCENARIOS: readonly Scenario[] = [
  success,
  retriesThenSuccess,
  { name: 'retries-exhausted', expect: 'FAILED', prompt: () => '@exit 1', input: { maxAttempts: 2 } },
  { name: 'timeout', expect: 'FAILED', prompt: () => '@hang', input: { timeoutSeconds: 1 } },
  cancelled,
  invalidInput,
  // Since the `invalid-input-recorded` patch the task row is failed too.
  { ...invalidInput, name: 'invalid-input-recorded' },
  { name: 'unknown-agent', expect: 'FAILED', prompt: () => 'hello', input: { agent: 'no-such-agent', maxAttempts: 3 } },
  chainFallback,
  {
    name: 'chain-retry-then-success',
    expect: 'COMPLETED',
    prompt: (scratch) => `@fail-until 2 ${join(scratch, 'runs')} overloaded\n@print done by a`,
    input: chain(['chain-a', 'chain-b']),
  },
  { name: 'chain-exhausted', expect: 'FAILED', prompt: () => '@fail auth', input: chain(['chain-a', 'chain-b']) },
  { name: 'chain-max-turns', expect: 'FAILED', prompt: () => '@fail max-turns', input: chain(['chain-a', 'chain-b']) },
  chainBudgetWait,
  {
    name: 'chain-breaker-wait',
    expect: 'COMPLETED',
    prompt: () => '@print probed',
    input: chain(['breaker-b']),
    setup: async (h) => {
      await h.pool.query(
        `INSERT INTO agent_breakers (agent, state, failures, opened_at, open_until)
         VALUES ('breaker-b', 'open', 5, clock_timestamp(), clock_timestamp() + interval '1 second')`,
      );
    },
  },
  {
    name: 'chain-cancelled-while-waiting',
    expect: 'CANCELLED',
    prompt: () => '@print never runs',
    input: chain(['chain-c']),
    budgetUsd: 0,
    whileRunning: async (handle, _scratch, h, taskId) => {
      await taskWaits(h, taskId);
      await handle.cancel();
    },
  },
  // Patch file-locks: the task takes its file locks from its repository's lock manager and releases them.
  {
    name: 'locked-task',
    expect: 'COMPLETED',
    prompt: () => '@print done',
    input: { locks: { repo: '/tmp/atelier-history-repo', globs: ['src/**', 'README.md'] } },
  },
  // Patch git-worktrees: the agent runs in a worktree of its own; its change is committed on its branch.
  {
    name: 'worktree-task',
    expect: 'COMPLETED',
    prompt: () => '@pidfile out.txt\n@print done',
    input: { repo: { path: historyRepo('worktree-task') } },
    setup: async () => makeHistoryRepo('worktree-task'),
  },
  // Patch worktree-salvage: a failed attempt's work is committed, the next continues from it, and the
  // success is recorded after the commit.
  salvage('worktree-salvage'),
  // Patch worktree-salvage: a change outside the task's locks fails it, when it says so.
  lockViolation('worktree-lock-violation'),
  ...[success, retriesThenSuccess, cancelled, invalidInput, chainFallback].map(atLevel(1)),
  salvage('level1-worktree-salvage', { codeLevel: 1 }),
  lockViolation('level1-worktree-lock-violation', { codeLevel: 1 }),
  atLevel(2)(chainBudgetWait),
  cancelAfterSuccessRecorded,
  atLevel(3)(cancelAfterSuccessRecorded),
];

/**
 * Runs every scenario at once on fresh queues with in-process workers and writes each history to
 * `outDir/<name>.json`. Throws if a scenario ends otherwise than expected, so no wrong history is kept.
 */
export async function recordHistories(h: Harness, outDir: string, only?: string[]): Promise<string[]> {
  const scenarios = HISTORY_SCENARIOS.filter((s) =>
    only && only.length > 0 ? only.includes(s.name) : !existsSync(join(outDir, `${s.name}.json`)),
  );
  const workflowQueue = uniqueQueue('record-wf');
  const agentQueue = uniqueQueue('record-agents');
  const workers = await Promise.all([runWorkflowWorker(h, workflowQueue), runAgentWorker(h, agentQueue)]);
  const scratchRoot = mkdtempSync(join(tmpdir(), 'atelier-record-'));
  mkdirSync(outDir, { recursive: true });
  try {
    return await Promise.all(
      scenarios.map(async (scenario) => {
        const scratch = mkdtempSync(join(scratchRoot, `${scenario.name}-`));
        const agent = scenario.input?.agent ?? 'stand-in';
        const taskId = await insertTask(h.pool, { prompt: scenario.prompt(scratch), agent });
        if (scenario.budgetUsd !== undefined) {
          await h.pool.query('UPDATE tasks SET budget_usd = $2 WHERE id = $1', [taskId, scenario.budgetUsd]);
        }
        await scenario.setup?.(h);
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
        await scenario.whileRunning?.(handle, scratch, h, taskId);
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
      const recorded = await recordHistories(h, HISTORIES_DIR, process.argv.slice(2));
      for (const file of recorded) process.stdout.write(`recorded ${file}\n`);
      if (recorded.length === 0) process.stdout.write('every scenario has its history already\n');
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
