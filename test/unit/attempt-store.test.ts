import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { AttemptStore } from '../../src/store/attempt-store';
import { countingPool } from '../support/counting-pool';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

describe('AttemptStore.taskToRun', () => {
  let pool: Pool;
  const statements: string[] = [];
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  /** A queued task and its first run, as the API records them; `runId` null until the start returns. */
  async function submitted(runId: string | null): Promise<string> {
    const taskId = await insertTask(pool, { prompt: 'the prompt' });
    await pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 1, $2, 'submitted')`, [
      taskId,
      runId,
    ]);
    return taskId;
  }

  /** An attempt store whose statements are counted (a new pool object, so its run numbers are not known yet). */
  const countingStore = (): AttemptStore => new AttemptStore(countingPool(pool, statements));

  it("reads the task and its run's number in one statement, and the number is remembered", async () => {
    const runId = randomUUID();
    const taskId = await submitted(runId);
    const store = countingStore();
    statements.length = 0;
    const task = await store.taskToRun(taskId, 100, runId);
    assert.deepEqual(task, { prompt: 'the prompt', status: 'queued', result: null });
    assert.equal(statements.length, 1);
    // The attempt's writes that follow name the run by its id: its number comes from memory.
    await store.startAttempt({ taskId, runId, attempt: 1, agent: 'stand-in', worker: 'w' });
    assert.equal(statements.length, 2);
    const attempt = await pool.query<{ run: number }>('SELECT run FROM attempts WHERE task_id = $1', [taskId]);
    assert.deepEqual(
      attempt.rows.map((r) => r.run),
      [1],
    );
  });

  it('records a run whose start has not returned to the API yet, then reads the task', async () => {
    const runId = randomUUID();
    const taskId = await submitted(null);
    const task = await countingStore().taskToRun(taskId, 100, runId);
    assert.equal(task?.prompt, 'the prompt');
    const runs = await pool.query<{ number: number; run_id: string }>(
      'SELECT number, run_id FROM task_runs WHERE task_id = $1',
      [taskId],
    );
    assert.deepEqual(runs.rows, [{ number: 1, run_id: runId }]);
    const row = await pool.query<{ run_id: string }>('SELECT run_id FROM tasks WHERE id = $1', [taskId]);
    assert.equal(row.rows[0]?.run_id, runId);
  });

  it('answers nothing for a task that is not in the database', async () => {
    assert.equal(await countingStore().taskToRun(randomUUID(), 100, randomUUID()), undefined);
  });
});
