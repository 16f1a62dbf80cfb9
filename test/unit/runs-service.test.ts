import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConflictException, ServiceUnavailableException } from '@nestjs/common';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import type { temporal } from '@temporalio/proto';
import { Pool } from 'pg';
import { RunsService } from '../../src/api/runs/runs.service';
import { loadConfig } from '../../src/config/env';
import { AttemptStore } from '../../src/store/attempt-store';
import { PlanStore } from '../../src/store/plan-store';
import { RunStore } from '../../src/store/run-store';
import { TaskStore } from '../../src/store/task-store';
import { HISTORIES_DIR } from '../support/record-histories';
import { insertTask } from '../support/task-rows';
import { TEST_AGENTS_FILE, testEnv } from '../support/test-env';

type ResetRequest = temporal.api.workflowservice.v1.IResetWorkflowExecutionRequest;

/** A Temporal client that answers with `history` for every run and counts what it is asked to start. */
interface FakeTemporal {
  client: Client;
  starts: () => number;
  resets: ResetRequest[];
}

function fakeTemporal(opts: {
  history?: string;
  /** Runs while the service reads the run's history: between its first read of the task and its lock. */
  whileReadingHistory?: () => Promise<void>;
  /** Answers each reset request, by its index; default: a new run. */
  onReset?: (index: number) => void;
  /** Temporal makes the first start, but its answer is lost; the next start meets that run. */
  firstStartAnswerLost?: boolean;
}): FakeTemporal {
  let starts = 0;
  let running: string | undefined;
  const resets: ResetRequest[] = [];
  const events = opts.history
    ? historyFromJSON(JSON.parse(readFileSync(join(HISTORIES_DIR, `${opts.history}.json`), 'utf8'))).events
    : undefined;
  const client = {
    options: { loadedDataConverter: loadDataConverter() },
    withDeadline: <R>(_deadline: number, fn: () => Promise<R>) => fn(),
    workflow: {
      getHandle: (workflowId: string, runId?: string) => ({
        fetchHistory: async () => {
          await opts.whileReadingHistory?.();
          if (!events) throw new WorkflowNotFoundError('not found', workflowId, runId);
          return { events };
        },
        describe: async () => ({ runId: running, status: { name: 'RUNNING' } }),
      }),
      start: async (_type: string, o: { workflowId: string }) => {
        if (running !== undefined) {
          throw new WorkflowExecutionAlreadyStartedError('already started', o.workflowId, 'agentTaskWorkflow');
        }
        starts += 1;
        const runId = randomUUID();
        if (opts.firstStartAnswerLost) {
          running = runId;
          throw new Error('the answer was lost');
        }
        return { firstExecutionRunId: runId };
      },
    },
    workflowService: {
      resetWorkflowExecution: async (request: ResetRequest) => {
        resets.push(request);
        opts.onReset?.(resets.length - 1);
        return { runId: randomUUID() };
      },
    },
  } as unknown as Client;
  return { client, starts: () => starts, resets };
}

describe('RunsService', () => {
  let pool: Pool;
  const config = loadConfig({
    DATABASE_URL: testEnv.databaseUrl,
    TEMPORAL_ADDRESS: testEnv.temporalAddress,
    ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
  });
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  const service = (t: FakeTemporal): RunsService =>
    new RunsService(
      config,
      t.client,
      new TaskStore(pool),
      new RunStore(pool),
      new AttemptStore(pool),
      new PlanStore(pool),
    );

  /** A task whose first run (`runId`) failed, as the workflow records it. */
  async function failedTask(runId: string): Promise<string> {
    const id = await insertTask(pool, { prompt: '@exit 1' });
    await pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 1, $2, 'submitted')`, [
      id,
      runId,
    ]);
    await pool.query(`UPDATE tasks SET status = 'failed', run_id = $2, finished_at = now() WHERE id = $1`, [id, runId]);
    return id;
  }

  it('refuses a retry (409) when another retry started a run between its read and its lock, even one that failed', async () => {
    const taskId = await failedTask(randomUUID());
    const temporal = fakeTemporal({
      // The other retry: its run 2 started, and failed already.
      whileReadingHistory: async () => {
        const other = randomUUID();
        await pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 2, $2, 'retry')`, [
          taskId,
          other,
        ]);
        await pool.query('UPDATE tasks SET current_run = 2, run_id = $2 WHERE id = $1', [taskId, other]);
      },
    });
    await assert.rejects(service(temporal).retry(taskId), (err) => {
      assert.ok(err instanceof ConflictException, String(err));
      assert.match(err.message, /changed meanwhile \(now failed\)/);
      return true;
    });
    assert.equal(temporal.starts(), 0, 'no third run was started');
    const runs = await pool.query<{ number: number }>('SELECT number FROM task_runs WHERE task_id = $1', [taskId]);
    assert.deepEqual(
      runs.rows.map((r) => r.number),
      [1, 2],
    );
  });

  it("records the run a retry's lost answer started when the retry is sent again, starting no other", async () => {
    const taskId = await failedTask(randomUUID());
    const temporal = fakeTemporal({ history: 'retries-exhausted', firstStartAnswerLost: true });
    const runs = service(temporal);
    await assert.rejects(runs.retry(taskId), ServiceUnavailableException);
    const again = await runs.retry(taskId);
    assert.equal(temporal.starts(), 1, 'one run was started in Temporal');
    assert.equal(again.run, 2);
    const recorded = await pool.query<{ number: number; run_id: string; kind: string }>(
      'SELECT number, run_id, kind FROM task_runs WHERE task_id = $1 ORDER BY number',
      [taskId],
    );
    assert.deepEqual(
      recorded.rows.map((r) => [r.number, r.kind]),
      [
        [1, 'submitted'],
        [2, 'retry'],
      ],
    );
    assert.equal(recorded.rows[1]?.run_id, again.runId, 'the run Temporal made, recorded as the retry');
  });

  it('answers 409 to a retry sent again once the run its lost answer started has written, starting no other', async () => {
    const taskId = await failedTask(randomUUID());
    const temporal = fakeTemporal({ history: 'retries-exhausted', firstStartAnswerLost: true });
    const runs = service(temporal);
    await assert.rejects(runs.retry(taskId), ServiceUnavailableException);
    // That run's first write (its first attempt starting) records it: no run of the task awaits its id.
    const { runId } = await temporal.client.workflow.getHandle(`task-${taskId}`).describe();
    assert.equal(await new RunStore(pool).runNumber(taskId, runId), 2);
    await assert.rejects(runs.retry(taskId), (err) => {
      assert.ok(err instanceof ConflictException, String(err));
      assert.match(err.message, /is queued: only a finished task can be retried/);
      return true;
    });
    assert.equal(temporal.starts(), 1, 'one run was started in Temporal');
    const recorded = await pool.query<{ number: number; run_id: string; kind: string }>(
      'SELECT number, run_id, kind FROM task_runs WHERE task_id = $1 ORDER BY number',
      [taskId],
    );
    assert.deepEqual(
      recorded.rows.map((r) => [r.number, r.run_id === runId ? 'that run' : r.run_id, r.kind]),
      [
        [1, recorded.rows[0]?.run_id, 'submitted'],
        [2, 'that run', 'external'],
      ],
    );
  });

  it('sends every try of one reset with one request id, so that Temporal makes its run once', async () => {
    const runId = randomUUID();
    const taskId = await failedTask(runId);
    const temporal = fakeTemporal({
      history: 'retries-exhausted',
      // Temporal makes the first reset, but its answer is lost: the API answers 503 and keeps nothing.
      onReset: (index) => {
        if (index === 0) throw new Error('the answer was lost');
      },
    });
    const runs = service(temporal);
    await assert.rejects(runs.reset(taskId), ServiceUnavailableException);
    const again = await runs.reset(taskId);
    assert.equal(again.kind, 'reset');
    const [first, second] = temporal.resets;
    assert.ok(first?.requestId);
    assert.equal(second?.requestId, first.requestId, 'the try again is the same request to Temporal');
    assert.equal(second?.workflowExecution?.runId, runId);

    // The history gone between its read and the reset: Temporal answers NOT_FOUND, which no try again changes.
    const expired = fakeTemporal({
      history: 'retries-exhausted',
      onReset: () => {
        throw Object.assign(new Error('5 NOT_FOUND: workflow execution not found'), {
          code: 5,
          details: 'workflow execution not found',
          metadata: {},
        });
      },
    });
    await assert.rejects(service(expired).reset(await failedTask(randomUUID())), (err) => {
      assert.ok(err instanceof ConflictException, String(err));
      // Temporal's own words go to the log only.
      assert.equal(err.message, "Temporal refused the reset (NOT_FOUND); the API's log says why");
      return true;
    });

    // Another run's reset is another request.
    const other = fakeTemporal({ history: 'retries-exhausted' });
    await service(other).reset(await failedTask(randomUUID()));
    assert.notEqual(other.resets[0]?.requestId, first.requestId);
  });
});
