import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it, mock } from 'node:test';
import { Logger } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { createSweepPool } from '../../src/api/closed-runs/closed-runs.module';
import { ClosedRunsSweeper } from '../../src/api/closed-runs/closed-runs.sweeper';
import type { ApiMetrics } from '../../src/api/observability/api-metrics.service';
import type { PlansService } from '../../src/api/plans/plans.service';
import { StrandedSubmissionsSweeper } from '../../src/api/stranded/stranded-submissions.sweeper';
import type { TasksService } from '../../src/api/tasks/tasks.service';
import type { AtelierConfig } from '../../src/config/env';
import { createPool } from '../../src/db/pool';
import { AttemptStore } from '../../src/store/attempt-store';
import { EndedTaskStore } from '../../src/store/ended-task-store';
import { PlanStore } from '../../src/store/plan-store';
import { STATEMENT_TIMEOUT_MS } from '../../src/db/bounded-query';
import { TaskStore } from '../../src/store/task-store';
import { startCuttableProxy, type CuttableProxy } from '../support/cuttable-proxy';
import { newTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';
import { within } from '../support/wait-for';

afterEach(() => mock.restoreAll());

const metrics = {
  strandedStarts: { inc: () => undefined },
  closedRunSweeps: { inc: () => undefined },
  closedRunsRecorded: { inc: () => undefined },
} as unknown as ApiMetrics;

/** How long a sweep whose statement PostgreSQL never answers may take: its deadline, and some slack. */
const BOUND_MS = STATEMENT_TIMEOUT_MS + 3000;

/**
 * PostgreSQL behind a proxy, and a pool to it (by default of one connection) whose connection `silence`
 * leaves open but silent, as a failover does: the next statement on it gets no answer, while new
 * connections still pass.
 */
async function silenceablePool(
  create = (url: string) => createPool(url, () => undefined, 1),
): Promise<{ pool: Pool; silence: () => Promise<void>; proxy: CuttableProxy }> {
  const proxy = await startCuttableProxy(new URL(testEnv.databaseUrl).host);
  const url = new URL(testEnv.databaseUrl);
  url.host = proxy.address;
  const pool = create(url.toString());
  const silence = async () => {
    const marker = `silence-${Date.now()}`;
    await pool.query(`SELECT '${marker}'`);
    proxy.cutWhere(marker);
  };
  return { pool, silence, proxy };
}

/**
 * A closed-runs sweeper on `pool` (a plan store on it, `tasks` and `attempts` as given) whose Temporal
 * lists one closed task workflow, `workflowId`, whose run `run-1` was terminated.
 */
function closedRunsSweeper(
  workflowId: string,
  pool: Pool,
  tasks: TaskStore,
  attempts: AttemptStore,
): ClosedRunsSweeper {
  const temporal = {
    workflow: {
      list: ({ query }: { query: string }) =>
        (async function* () {
          if (query.includes("'agentTaskWorkflow'")) yield { workflowId };
        })(),
      getHandle: () => ({ describe: async () => ({ status: { name: 'TERMINATED' }, runId: 'run-1' }) }),
    },
  } as unknown as Client;
  return new ClosedRunsSweeper(
    { ATELIER_CLOSED_RUN_SWEEP_SECONDS: 3600 } as AtelierConfig,
    temporal,
    metrics,
    tasks,
    new PlanStore(pool),
    attempts,
  );
}

describe('background sweeps on a PostgreSQL gone silent', { timeout: 5 * BOUND_MS }, () => {
  it('the stranded-submission sweep fails within its deadline, the next works on a new connection, and stop waits no longer', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const { pool, silence, proxy } = await silenceablePool();
    const start = async () => false;
    const sweeper = new StrandedSubmissionsSweeper(
      { ATELIER_STRANDED_AFTER_SECONDS: 1 } as AtelierConfig,
      metrics,
      new TaskStore(pool),
      new PlanStore(pool),
      { startStranded: start } as unknown as TasksService,
      { startStranded: start } as unknown as PlansService,
    );
    try {
      await silence();
      const began = Date.now();
      await assert.rejects(within('the sweep', BOUND_MS, sweeper.sweep()), /Query read timeout/);
      assert.ok(Date.now() - began >= STATEMENT_TIMEOUT_MS - 100, 'failed at its deadline');
      await within('the next sweep', 5000, sweeper.sweep());

      // A periodic sweep hangs on a silent connection as the API is asked to stop.
      await silence();
      sweeper.onApplicationBootstrap();
      await new Promise((r) => setTimeout(r, 1000));
      sweeper.beforeApplicationShutdown();
      await within('the shutdown hook', BOUND_MS, sweeper.onApplicationShutdown());
      assert.ok(warnings.mock.calls.some((c) => /Query read timeout/.test(String(c.arguments[0]))));
    } finally {
      sweeper.beforeApplicationShutdown();
      await sweeper.onApplicationShutdown();
      await proxy.close();
      await pool.end();
    }
  });

  it('the closed-runs sweep keeps aside what it could not read within the deadline, and reads it next time', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const { pool, silence, proxy } = await silenceablePool();
    const tasks = new TaskStore(pool);
    const read = mock.method(tasks, 'unendedRunsOf');
    const sweeper = closedRunsSweeper('task-gone-silent', pool, tasks, {} as AttemptStore);
    try {
      await silence();
      await within('the sweep', BOUND_MS, sweeper.sweep());
      assert.ok(warnings.mock.calls.some((c) => /Query read timeout/.test(String(c.arguments[0]))));
      await within('the next sweep', 5000, sweeper.sweep());
      assert.equal(read.mock.callCount(), 2);
      assert.equal((await read.mock.calls[1]?.result)?.length, 0, 'read on a new connection');
    } finally {
      await proxy.close();
      await pool.end();
    }
  });

  it('the closed-runs sweep fails to record an end within the deadline on its own pool, keeps the run aside, and records it next time', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const direct = createPool(testEnv.databaseUrl, () => undefined, 1);
    const { task } = await new TaskStore(direct).create(newTask('p'));
    await new TaskStore(direct).setRunId(task.id, 'run-1');
    const { pool, silence, proxy } = await silenceablePool(createSweepPool);
    const tasks = new TaskStore(pool);
    // Its row is found (the read's bound is tested above): the end's first write meets the silent connection.
    mock.method(tasks, 'unendedRunsOf', async () => [{ id: task.id, workflow_id: task.workflow_id, run_id: 'run-1' }]);
    const sweeper = closedRunsSweeper(task.workflow_id, pool, tasks, new AttemptStore(pool));
    try {
      await silence();
      const began = Date.now();
      await within('the sweep', BOUND_MS, sweeper.sweep());
      assert.ok(Date.now() - began >= STATEMENT_TIMEOUT_MS - 100, 'failed at its deadline');
      assert.ok(
        warnings.mock.calls.some((c) =>
          /could not record the end of task .*Query read timeout/.test(String(c.arguments[0])),
        ),
      );
      assert.equal((await new TaskStore(direct).get(task.id))?.status, task.status, 'not recorded yet');

      await within('the next sweep', 5000, sweeper.sweep());
      const recorded = await new TaskStore(direct).get(task.id);
      assert.equal(recorded?.status, 'failed', 'recorded from the run kept aside, on a new connection');
      assert.equal(recorded?.error_class, 'crash');
    } finally {
      await proxy.close();
      await pool.end();
      await direct.end();
    }
  });

  it("the worktree janitor's read of ended tasks fails within its deadline", async () => {
    const { pool, silence, proxy } = await silenceablePool();
    try {
      await silence();
      const ended = new EndedTaskStore(pool).ended([randomUUID()]);
      await assert.rejects(within('the read', BOUND_MS, ended), /Query read timeout/);
    } finally {
      await proxy.close();
      await pool.end();
    }
  });
});
