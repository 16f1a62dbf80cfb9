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

describe('AttemptStore.finishAttempt', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  const success = (taskId: string, runId: string) => ({
    taskId,
    runId,
    attempt: 1,
    exitCode: 0,
    failureClass: 'succeeded' as const,
    error: null,
    outputBytes: 2,
    output: 'ok',
  });

  /** A running task whose first attempt has started under run `runId`. */
  async function started(store: AttemptStore, runId: string): Promise<string> {
    const taskId = await insertTask(pool, { prompt: 'p' });
    await pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 1, $2, 'submitted')`, [
      taskId,
      runId,
    ]);
    await store.startAttempt({ taskId, runId, attempt: 1, agent: 'stand-in', worker: 'w' });
    return taskId;
  }

  const state = async (taskId: string) => {
    const task = await pool.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId]);
    const events = await pool.query<{ kind: string }>('SELECT kind FROM task_events WHERE task_id = $1 ORDER BY id', [
      taskId,
    ]);
    const attempt = await pool.query<{ failure_class: string }>(
      'SELECT failure_class FROM attempts WHERE task_id = $1',
      [taskId],
    );
    return {
      status: task.rows[0]?.status,
      events: events.rows.map((r) => r.kind),
      attempt: attempt.rows[0]?.failure_class,
    };
  };

  it('a success ends the task once, and a retried write changes nothing', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    await store.finishAttempt(success(taskId, runId));
    await store.finishAttempt(success(taskId, runId));
    assert.deepEqual(await state(taskId), {
      status: 'succeeded',
      events: ['attempt_started', 'attempt_finished', 'succeeded'],
      attempt: 'succeeded',
    });
  });

  it('a worker thought dead cannot end the task once the workflow has closed its attempt', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    // The workflow gave up on the silent worker: the attempt is closed, and the task goes on.
    await store.recordAttemptFailure(
      { taskId, attempt: 1, agent: 'stand-in', failureClass: 'timeout', message: 'heartbeat timeout' },
      runId,
    );
    await store.finishAttempt(success(taskId, runId));
    assert.deepEqual(await state(taskId), {
      status: 'running',
      events: ['attempt_started', 'attempt_finished'],
      attempt: 'timeout',
    });
    assert.equal((await store.taskToRun(taskId, 100, runId))?.result, null);
  });

  const crash = (taskId: string) => ({
    taskId,
    status: 'failed' as const,
    attempt: 1,
    error: { class: 'crash' as const, message: 'agent worker stopped heartbeating' },
  });

  it('a success left to the workflow answers a later attempt, and a failure the attempt loop decided, with its attempt', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    await store.finishAttempt({ ...success(taskId, runId), deferSuccess: true });
    assert.deepEqual((await store.taskToRun(taskId, 100, runId))?.result, {
      exitCode: 0,
      outputBytes: 2,
      outputTail: 'ok',
      attempt: 1,
      agent: 'stand-in',
    });
    // Its answer was lost, and the attempt counted as a crash: the workflow is to record the success.
    const answer = await store.recordTaskOutcome({ ...crash(taskId), unlessAttemptSucceeded: true }, runId);
    assert.deepEqual(answer, { status: 'succeeded', attempt: 1, exitCode: 0, agent: 'stand-in' });
    assert.deepEqual(await state(taskId), {
      status: 'running',
      events: ['attempt_started', 'attempt_finished'],
      attempt: 'succeeded',
    });
    // A failure the workflow decided after the success (its lock violations) is written as asked.
    const violation = { class: 'lock_violation' as const, message: 'changed files outside the declared locks' };
    assert.deepEqual(await store.recordTaskOutcome({ ...crash(taskId), error: violation }, runId), {
      status: 'failed',
      attempt: 1,
    });
    assert.deepEqual(await state(taskId), {
      status: 'failed',
      events: ['attempt_started', 'attempt_finished', 'failed'],
      attempt: 'succeeded',
    });
  });

  it('a success left to the workflow whose work could not be saved answers neither a later attempt nor a failure', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    await store.finishAttempt({ ...success(taskId, runId), deferSuccess: true, workUnsaved: true });
    // Its work is only in the lost worker's worktree: the agent must run again.
    assert.equal((await store.taskToRun(taskId, 100, runId))?.result, null);
    const answer = await store.recordTaskOutcome({ ...crash(taskId), unlessAttemptSucceeded: true }, runId);
    assert.deepEqual(answer, { status: 'failed', attempt: 1 });
  });

  it('closes an attempt its dead worker left open when the run ends: a cancel that met a dead worker', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    const answer = await store.recordTaskOutcome(
      { taskId, status: 'cancelled', attempt: 1, error: { class: 'cancelled', message: 'task cancelled' } },
      runId,
    );
    assert.deepEqual(answer, { status: 'cancelled', attempt: 1 });
    const attempt = await pool.query<{ finished: boolean; failure_class: string; error: string }>(
      'SELECT finished_at IS NOT NULL AS finished, failure_class, error FROM attempts WHERE task_id = $1',
      [taskId],
    );
    assert.deepEqual(attempt.rows, [
      {
        finished: true,
        failure_class: 'cancelled',
        error: 'its worker never recorded its end; closed as its run ended cancelled',
      },
    ]);
    assert.deepEqual((await state(taskId)).events, ['attempt_started', 'attempt_finished', 'cancelled']);
  });

  it('a cancel ends the run on the attempt it stopped, which the chain loop names as the one before', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    const cancel = {
      taskId,
      status: 'cancelled' as const,
      error: { class: 'cancelled' as const, message: 'task cancelled' },
    };
    assert.deepEqual(await store.recordTaskOutcome({ ...cancel, attempt: 0 }, runId), {
      status: 'cancelled',
      attempt: 1,
    });
    const terminal = await pool.query<{ attempt: number }>(
      'SELECT attempt FROM task_events WHERE task_id = $1 AND terminal',
      [taskId],
    );
    assert.deepEqual(terminal.rows, [{ attempt: 1 }]);
    // A failure keeps the attempt it names: a run closed in Temporal records its end at 0 (recordClosedRun).
    const failedRunId = randomUUID();
    const failed = await started(store, failedRunId);
    assert.deepEqual(await store.recordTaskOutcome({ ...crash(failed), attempt: 0 }, failedRunId), {
      status: 'failed',
      attempt: 0,
    });
  });

  it("writes a failure whose message holds NUL and half a character (an agent's text cut short)", async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    const message = 'quota\u0000 gone \uD83D';
    await store.recordAttemptFailure({ taskId, attempt: 1, agent: 'stand-in', failureClass: 'crash', message }, runId);
    const answer = await store.recordTaskOutcome({ ...crash(taskId), error: { class: 'crash', message } }, runId);
    assert.deepEqual(answer, { status: 'failed', attempt: 1 });
    const task = await pool.query<{ error_message: string }>('SELECT error_message FROM tasks WHERE id = $1', [taskId]);
    assert.equal(task.rows[0]?.error_message, 'quota gone \uFFFD');
    const event = await pool.query<{ detail: { error: { message: string } } }>(
      'SELECT detail FROM task_events WHERE task_id = $1 AND terminal',
      [taskId],
    );
    assert.equal(event.rows[0]?.detail.error.message, 'quota gone \uFFFD');
  });

  it('a failure the attempt loop decided is written when no attempt of the run succeeded', async () => {
    const store = new AttemptStore(pool);
    const runId = randomUUID();
    const taskId = await started(store, runId);
    await store.recordAttemptFailure(
      { taskId, attempt: 1, agent: 'stand-in', failureClass: 'crash', message: 'heartbeat timeout' },
      runId,
    );
    const answer = await store.recordTaskOutcome({ ...crash(taskId), unlessAttemptSucceeded: true }, runId);
    assert.deepEqual(answer, { status: 'failed', attempt: 1 });
    assert.equal((await state(taskId)).status, 'failed');
  });
});
