import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { Pool } from 'pg';
import { recordRunClosedInTemporal } from '../../src/api/runs/closed-run';
import { AttemptStore } from '../../src/store/attempt-store';
import { FAILURE_CLASSES, workflowIdForTask } from '../../workflows/definitions';
import { attemptRows, eventRows, insertTask, taskRow } from '../support/task-rows';
import { testEnv } from '../support/test-env';

/** A Temporal client whose every run of the workflow has ended as `status` (TERMINATED, TIMED_OUT). */
const temporalWhereRunsEnded = (status: string): Client =>
  ({
    workflow: {
      getHandle: (_workflowId: string, runId?: string) => ({
        describe: async () => ({ runId: runId ?? 'latest', status: { name: status } }),
      }),
    },
  }) as unknown as Client;

describe('recordRunClosedInTemporal', () => {
  let pool: Pool;
  let attempts: AttemptStore;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    attempts = new AttemptStore(pool);
  });
  after(() => pool.end());

  /** A task running its first run (`runId`): attempt 1 failed and ended, attempt 2 still open. */
  async function taskWithOpenAttempt(runId: string): Promise<string> {
    const id = await insertTask(pool, { prompt: '@sleep 60', maxAttempts: 2 });
    await pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 1, $2, 'submitted')`, [
      id,
      runId,
    ]);
    await pool.query('UPDATE tasks SET run_id = $2 WHERE id = $1', [id, runId]);
    for (const attempt of [1, 2]) {
      assert.ok(await attempts.startAttempt({ taskId: id, runId, attempt, agent: 'stand-in', worker: 'gone-worker' }));
    }
    await attempts.finishAttempt({
      taskId: id,
      runId,
      attempt: 1,
      exitCode: 2,
      failureClass: FAILURE_CLASSES.nonzeroExit,
      error: 'exit 2',
      outputBytes: 0,
      output: '',
    });
    return id;
  }

  it('closes the attempt a terminated run left open as a crash, before the run’s failure', async () => {
    const runId = randomUUID();
    const id = await taskWithOpenAttempt(runId);

    const task = { id, workflow_id: workflowIdForTask(id), run_id: runId };
    const ended = await recordRunClosedInTemporal(temporalWhereRunsEnded('TERMINATED'), attempts, task);

    assert.deepEqual(ended, { status: 'failed', written: true });
    // Another API process that records it next finds the end written: not its own.
    assert.deepEqual(await recordRunClosedInTemporal(temporalWhereRunsEnded('TERMINATED'), attempts, task), {
      status: 'failed',
      written: false,
    });
    const row = await taskRow(pool, id);
    assert.deepEqual([row.status, row.error_class], ['failed', 'crash']);
    const [first, second] = await attemptRows(pool, id);
    assert.deepEqual([first?.failure_class, first?.error], ['nonzero_exit', 'exit 2'], 'an ended attempt stays');
    assert.ok(second?.finished_at, 'the open attempt is closed');
    assert.equal(second?.failure_class, 'crash');
    assert.match(second?.error ?? '', new RegExp(`workflow run ${runId} ended in Temporal \\(terminated\\)`));
    assert.deepEqual(
      (await eventRows(pool, id)).map((e) => [e.kind, e.attempt, e.terminal]),
      [
        ['attempt_started', 1, false],
        ['attempt_started', 2, false],
        ['attempt_finished', 1, false],
        ['attempt_finished', 2, false],
        ['failed', 0, true],
      ],
    );

    // Its worker's late write finds the attempt closed, and changes nothing.
    await attempts.finishAttempt({
      taskId: id,
      runId,
      attempt: 2,
      exitCode: 0,
      failureClass: FAILURE_CLASSES.succeeded,
      error: null,
      outputBytes: 3,
      output: 'ok\n',
    });
    assert.equal((await attemptRows(pool, id))[1]?.failure_class, 'crash');
    assert.equal((await taskRow(pool, id)).status, 'failed');
  });

  it("names the run's last attempt in its task.failed notification", async () => {
    const runId = randomUUID();
    const id = await taskWithOpenAttempt(runId);
    await recordRunClosedInTemporal(temporalWhereRunsEnded('TERMINATED'), new AttemptStore(pool, { notify: true }), {
      id,
      workflow_id: workflowIdForTask(id),
      run_id: runId,
    });
    const sent = await pool.query<{ payload: { attempt: number; agent: string; error: { class: string } } }>(
      'SELECT payload FROM notifications WHERE dedupe_key = $1',
      [`task.failed:${id}:1`],
    );
    assert.deepEqual(
      sent.rows.map((r) => [r.payload.attempt, r.payload.agent, r.payload.error.class]),
      [[2, 'stand-in', 'crash']],
    );
    await pool.query('DELETE FROM notifications WHERE dedupe_key = $1', [`task.failed:${id}:1`]);
  });

  it('leaves the run alone while its workflow runs', async () => {
    const runId = randomUUID();
    const id = await taskWithOpenAttempt(runId);
    const status = await recordRunClosedInTemporal(temporalWhereRunsEnded('RUNNING'), attempts, {
      id,
      workflow_id: workflowIdForTask(id),
      run_id: runId,
    });
    assert.equal(status, undefined);
    assert.equal((await attemptRows(pool, id))[1]?.finished_at, null);
    assert.equal((await taskRow(pool, id)).status, 'running');
  });
});
