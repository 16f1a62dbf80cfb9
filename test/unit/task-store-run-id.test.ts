import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { RunStore } from '../../src/store/run-store';
import { TaskStore } from '../../src/store/task-store';
import { newTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

describe('recording the run id of a submitted task', () => {
  let pool: Pool;
  let tasks: TaskStore;
  let runs: RunStore;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    tasks = new TaskStore(pool);
    runs = new RunStore(pool);
  });
  after(() => pool.end());

  /** The task's run id, and each run's, by number. */
  async function recorded(id: string): Promise<{ task: string | null; runs: (string | null)[] }> {
    const task = await tasks.get(id);
    const list = await runs.list(id);
    return { task: task?.run_id ?? null, runs: list.map((r) => r.run_id) };
  }

  it("records it as run 1's", async () => {
    const { task } = await tasks.create(newTask('p'));
    await tasks.setRunId(task.id, 'run-1');
    assert.deepEqual(await recorded(task.id), { task: 'run-1', runs: ['run-1'] });
  });

  it('leaves a newer run alone when the write comes late', async () => {
    const { task } = await tasks.create(newTask('p'));
    // The run's first write records it; it fails and is retried as run 2.
    assert.equal(await runs.runNumber(task.id, 'run-1'), 1);
    await pool.query(`UPDATE tasks SET status = 'failed', finished_at = now() WHERE id = $1`, [task.id]);
    await runs.startRun(
      task.id,
      'retry',
      () => undefined,
      async () => ({ runId: 'run-2' }),
    );
    // The submission's write of run 1's id, retried all this while, arrives now.
    await tasks.setRunId(task.id, 'run-1');
    assert.deepEqual(await recorded(task.id), { task: 'run-2', runs: ['run-1', 'run-2'] });
  });

  it('leaves a run started in Temporal alone, one the API never recorded', async () => {
    const { task } = await tasks.create(newTask('p'));
    assert.equal(await runs.runNumber(task.id, 'run-1'), 1);
    // A reset in the Web UI: its first write records it as run 2.
    assert.equal(await runs.runNumber(task.id, 'run-reset'), 2);
    await tasks.setRunId(task.id, 'run-1');
    assert.deepEqual(await recorded(task.id), { task: 'run-reset', runs: ['run-1', 'run-reset'] });
  });
});
