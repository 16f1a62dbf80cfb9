import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { Logger } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { ClosedRunsSweeper } from '../../src/api/closed-runs/closed-runs.sweeper';
import type { LogStreamService } from '../../src/api/logs/log-stream.service';
import { ApiMetrics } from '../../src/api/observability/api-metrics.service';
import type { QueueStatsService } from '../../src/api/workers/queue-stats.service';
import { loadAgentsFile } from '../../src/config/agents-file';
import { loadConfig } from '../../src/config/env';
import type { AttemptStore } from '../../src/store/attempt-store';
import type { PlanStore } from '../../src/store/plan-store';
import type { TaskStore } from '../../src/store/task-store';
import { TEST_AGENTS_FILE } from '../support/test-env';

afterEach(() => mock.restoreAll());

const config = loadConfig({ ATELIER_AGENTS_FILE: TEST_AGENTS_FILE });
const apiMetrics = (): ApiMetrics =>
  new ApiMetrics(
    {} as Pool,
    loadAgentsFile(TEST_AGENTS_FILE),
    { configuredQueues: () => [] } as unknown as QueueStatsService,
    { active: 0 } as LogStreamService,
  );

/**
 * A plan terminated in Temporal whose one running task Temporal has not terminated yet: the plan
 * cannot be recorded until it has. The sweep that finds the plan moves its window on all the same; the
 * next one, which lists nothing new, records the plan it kept aside.
 */
describe('ClosedRunsSweeper', () => {
  it('keeps aside a run it could not record yet, and records it at a later sweep that lists nothing new', async () => {
    mock.method(Logger.prototype, 'warn', () => undefined);
    const queries: string[] = [];
    let taskTerminated = false;
    const status = (workflowId: string) => (workflowId === 'task-t1' && !taskTerminated ? 'RUNNING' : 'TERMINATED');
    const temporal = {
      workflow: {
        list: ({ query }: { query: string }) => {
          queries.push(query);
          // Temporal's visibility store lists the plan's close to the first sweep only (its window moves on).
          const planLists = queries.filter((q) => q.includes("'planWorkflow'")).length;
          const found = query.includes("'planWorkflow'") && planLists === 1 ? [{ workflowId: 'plan-1' }] : [];
          return (async function* () {
            yield* found;
          })();
        },
        getHandle: (workflowId: string, runId?: string) => ({
          describe: async () => ({ status: { name: status(workflowId) }, runId: runId ?? `${workflowId}-run` }),
        }),
      },
    } as unknown as Client;
    const outcomes: string[] = [];
    const plans = {
      unendedRunsOf: async (ids: string[]) =>
        ids.includes('plan-1') && outcomes.length === 0
          ? [{ id: 'p1', workflow_id: 'plan-1', run_id: 'plan-1-run' }]
          : [],
      get: async () => ({ tasks: [{ key: 'a', task_id: 't1', status: 'running' }] }),
      recordSkips: async () => undefined,
      writeOutcome: async () => {
        outcomes.push('plan failed');
        return { status: 'failed', written: true };
      },
    } as unknown as PlanStore;
    const tasks = {
      unendedRunsOf: async () => [],
      get: async () => ({ id: 't1', workflow_id: 'task-t1', run_id: 'task-t1-run' }),
    } as unknown as TaskStore;
    const attempts = {
      closeOpenAttempts: async () => undefined,
      writeTaskOutcome: async () => ({ outcome: { status: 'failed', attempt: 0 }, written: true }),
    } as unknown as AttemptStore;
    const metrics = apiMetrics();
    const sweeper = new ClosedRunsSweeper(config, temporal, metrics, tasks, plans, attempts);

    await sweeper.sweep();
    assert.deepEqual(outcomes, [], 'its task still runs in Temporal: the plan waits');
    taskTerminated = true;
    await sweeper.sweep();
    assert.deepEqual(outcomes, ['plan failed']);
    // The second sweep looked only at closes since shortly before the first one began.
    const since = (q: string | undefined) => Date.parse(/CloseTime >= '([^']+)'/.exec(q ?? '')?.[1] ?? '');
    assert.ok(since(queries[2]) - since(queries[0]) > 24 * 3600_000, queries.join('\n'));
    const recorded = await metrics.closedRunsRecorded.get();
    assert.deepEqual(
      recorded.values.map((v) => [v.labels.kind, v.value]),
      [['plan', 1]],
    );
  });

  it('counts and logs only the ends it wrote, not one the workflow or another API process wrote first', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const temporal = {
      workflow: {
        list: ({ query }: { query: string }) =>
          (async function* () {
            if (query.includes("'agentTaskWorkflow'")) yield { workflowId: 'task-t1' };
          })(),
        getHandle: (workflowId: string, runId?: string) => ({
          describe: async () => ({ status: { name: 'TERMINATED' }, runId: runId ?? `${workflowId}-run` }),
        }),
      },
    } as unknown as Client;
    const tasks = {
      unendedRunsOf: async () => [{ id: 't1', workflow_id: 'task-t1', run_id: 'task-t1-run' }],
    } as unknown as TaskStore;
    const plans = { unendedRunsOf: async () => [] } as unknown as PlanStore;
    let written = false;
    const attempts = {
      closeOpenAttempts: async () => undefined,
      writeTaskOutcome: async () => ({ outcome: { status: 'failed', attempt: 0 }, written }),
    } as unknown as AttemptStore;
    const metrics = apiMetrics();
    const sweeper = new ClosedRunsSweeper(config, temporal, metrics, tasks, plans, attempts);
    const counted = async () => (await metrics.closedRunsRecorded.get()).values.map((v) => [v.labels.kind, v.value]);

    await sweeper.sweep();
    assert.deepEqual(await counted(), []);
    assert.ok(!warnings.mock.calls.some((c) => /recorded task t1/.test(String(c.arguments[0]))));
    written = true;
    await sweeper.sweep();
    assert.deepEqual(await counted(), [['task', 1]]);
    assert.ok(warnings.mock.calls.some((c) => /recorded task t1 failed/.test(String(c.arguments[0]))));
  });

  it('keeps aside a closed workflow whose row has no run id yet, and records its end once a run id shows', async () => {
    mock.method(Logger.prototype, 'warn', () => undefined);
    // Temporal lists the terminated task's close to the first sweep only: the window moves past it.
    let lists = 0;
    const temporal = {
      workflow: {
        list: ({ query }: { query: string }) =>
          (async function* () {
            if (query.includes("'agentTaskWorkflow'") && ++lists === 1) yield { workflowId: 'task-t1' };
          })(),
        getHandle: (workflowId: string, runId?: string) => ({
          describe: async () => ({ status: { name: 'TERMINATED' }, runId: runId ?? `${workflowId}-run` }),
        }),
      },
    } as unknown as Client;
    // The stranded-submission sweeper records the run id between the first sweep and the second.
    let runId: string | null = null;
    const written: string[] = [];
    const tasks = {
      unendedRunsOf: async (ids: string[]) =>
        ids.includes('task-t1') && written.length === 0 ? [{ id: 't1', workflow_id: 'task-t1', run_id: runId }] : [],
    } as unknown as TaskStore;
    const plans = { unendedRunsOf: async () => [] } as unknown as PlanStore;
    const attempts = {
      closeOpenAttempts: async () => undefined,
      writeTaskOutcome: async (_: unknown, run: string) => {
        written.push(run);
        return { outcome: { status: 'failed', attempt: 0 }, written: true };
      },
    } as unknown as AttemptStore;
    const sweeper = new ClosedRunsSweeper(config, temporal, apiMetrics(), tasks, plans, attempts);

    await sweeper.sweep();
    assert.deepEqual(written, [], 'no run id: nothing to record yet');
    runId = 'task-t1-run';
    await sweeper.sweep();
    assert.deepEqual(written, ['task-t1-run']);
    await sweeper.sweep();
    assert.deepEqual(written, ['task-t1-run'], 'recorded, it is no longer kept aside');
  });

  it('reads a week of closes page by page, and keeps aside what a listing that failed midway had not read', async () => {
    mock.method(Logger.prototype, 'warn', () => undefined);
    const closes = Array.from({ length: 1201 }, (_, i) => `task-${i}`);
    let failAfter: number | undefined;
    const temporal = {
      workflow: {
        list: ({ query }: { query: string }) =>
          (async function* () {
            if (!query.includes("'agentTaskWorkflow'")) return;
            for (const [i, id] of closes.entries()) {
              if (i === failAfter) throw new Error('Temporal went away');
              yield { workflowId: id };
            }
          })(),
      },
    } as unknown as Client;
    const reads: string[][] = [];
    const tasks = {
      // task-0's row has no run id yet: kept aside until one shows.
      unendedRunsOf: async (ids: string[]) => {
        reads.push(ids);
        return ids.includes('task-0') ? [{ id: 't0', workflow_id: 'task-0', run_id: null }] : [];
      },
    } as unknown as TaskStore;
    const plans = { unendedRunsOf: async () => [] } as unknown as PlanStore;
    const sweeper = new ClosedRunsSweeper(config, temporal, apiMetrics(), tasks, plans, {} as AttemptStore);

    await sweeper.sweep();
    assert.deepEqual(
      reads.map((r) => r.length),
      [500, 500, 201],
    );
    assert.deepEqual(new Set(reads.flat()), new Set(closes));

    // A read that fails keeps its page aside; the next sweep reads what was kept aside page by page too.
    reads.length = 0;
    const read = tasks.unendedRunsOf;
    tasks.unendedRunsOf = async () => {
      throw new Error('Query read timeout');
    };
    await sweeper.sweep();
    tasks.unendedRunsOf = read;
    closes.length = 0;
    await sweeper.sweep();
    assert.deepEqual(
      reads.map((r) => r.length),
      [500, 500, 201],
    );
    closes.push('task-0', 'task-1', 'task-2', 'task-3');

    // The next listing fails before its first page is full: what it had listed, and task-0, stay aside.
    reads.length = 0;
    failAfter = 3;
    await assert.rejects(sweeper.sweep(), /Temporal went away/);
    assert.deepEqual(reads, []);
    failAfter = 0;
    await assert.rejects(sweeper.sweep(), /Temporal went away/);
    failAfter = undefined;
    closes.length = 0;
    await sweeper.sweep();
    assert.deepEqual(
      reads.map((r) => [...r].sort()),
      [['task-0', 'task-1', 'task-2']],
    );
  });
});
