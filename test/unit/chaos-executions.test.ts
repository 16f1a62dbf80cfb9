import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countExecutions, type AttemptRow, type Execution, type TaskRow } from '../chaos/executions';

const task: TaskRow = { id: 't1', prompt: 'key-1\n@sleep 1', result: { run: 1, number: 1 } };
const attempt = (number: number, startedMs: number, finishedMs: number | null, worker: string | null): AttemptRow => ({
  taskId: 't1',
  run: 1,
  number,
  worker,
  startedMs,
  finishedMs,
});
/** A run of task t1, told its attempt by the worker: the tests' attempt 2 starts at 12 000 ms. */
const execution = (startedAt: number, prompt = task.prompt, number = startedAt < 12_000 ? 1 : 2): Execution => ({
  pid: startedAt,
  startedAt,
  prompt,
  taskId: task.id,
  attempt: number,
});
/** The task, its attempt 2 the one that succeeded. */
const secondSucceeded: TaskRow = { ...task, result: { run: 1, number: 2 } };
const WORKER = 'agent-worker:100-abc@host';
const OTHER = 'agent-worker:200-def@host';

/** The fault tests' count of agent executions against the attempts (test/chaos/executions.ts). */
describe('chaos: countExecutions', () => {
  const count = (
    attempts: AttemptRow[],
    executions: Execution[],
    kills: { pid: number; at: number }[] = [],
    t: TaskRow = task,
  ) => countExecutions([t], attempts, executions, new Set([task.prompt]), kills);

  it('passes a task run once in its one attempt', () => {
    const c = count([attempt(1, 1000, 2000, WORKER)], [execution(1050)]);
    assert.deepEqual(c, { executions: 1, lostWithKilledWorker: 0, problems: [] });
  });

  it('finds a second run within one attempt, and one outside the attempt (its start repeated)', () => {
    assert.deepEqual(count([attempt(1, 1000, 2000, WORKER)], [execution(1050), execution(1500)]).problems, [
      '1 attempts without exactly the agent executions they allow',
    ]);
    // The repeated start moved started_at past the first run.
    assert.deepEqual(count([attempt(1, 1400, 2000, WORKER)], [execution(1050), execution(1500)]).problems, [
      '1 agent executions while no attempt of their task was open',
    ]);
  });

  it('finds an attempt without a run, and a run with a prompt no task has', () => {
    assert.deepEqual(count([attempt(1, 1000, 2000, WORKER)], []).problems, [
      '1 attempts without exactly the agent executions they allow',
    ]);
    assert.deepEqual(count([attempt(1, 1000, 2000, WORKER)], [execution(1050), execution(1060, 'altered')]).problems, [
      '1 agent executions with a prompt no task has (altered on its way, or no task asked for it)',
    ]);
  });

  it('finds a run told another task id or attempt than the attempt it ran in', () => {
    const attempts = [attempt(1, 1000, 2000, WORKER)];
    const problem = ['1 agent executions told another task id or attempt than the attempt they ran in'];
    assert.deepEqual(count(attempts, [execution(1050, task.prompt, 2)]).problems, problem);
    assert.deepEqual(count(attempts, [{ ...execution(1050), taskId: 't2' }]).problems, problem);
    assert.deepEqual(count(attempts, [{ ...execution(1050), taskId: undefined }]).problems, problem);
  });

  it('allows one run more per attempt lost with a killed agent worker, and no more', () => {
    const kill = { pid: 100, at: 1500 };
    const attempts = [attempt(1, 1000, 11_500, WORKER), attempt(2, 12_000, 13_000, OTHER)];
    const both = count(attempts, [execution(1050), execution(12_050)], [kill], secondSucceeded);
    assert.deepEqual(both, { executions: 2, lostWithKilledWorker: 1, problems: [] });
    // Its agent killed before it logged its start.
    assert.deepEqual(count(attempts, [execution(12_050)], [kill], secondSucceeded).problems, []);
    assert.deepEqual(
      count(attempts, [execution(1050), execution(1100), execution(12_050)], [kill], secondSucceeded).problems,
      ['1 attempts without exactly the agent executions they allow'],
    );
  });

  it("gives a run to the latest attempt open when it started: a lost attempt left open takes none of the next one's", () => {
    const kill = { pid: 100, at: 1500 };
    // Attempt 1 was lost with its worker and its end never written: its window covers attempt 2's.
    const attempts = [attempt(1, 1000, null, WORKER), attempt(2, 12_000, 13_000, OTHER)];
    assert.deepEqual(count(attempts, [execution(1050), execution(12_050)], [kill], secondSucceeded).problems, []);
    // Attempt 2 ran twice: found, not hidden in attempt 1's open window.
    assert.deepEqual(count(attempts, [execution(12_050), execution(12_100)], [kill], secondSucceeded).problems, [
      '1 attempts without exactly the agent executions they allow',
    ]);
  });

  it('takes an attempt for lost only if its worker was killed while it was open', () => {
    const attempts = [attempt(1, 1000, 11_500, WORKER), attempt(2, 12_000, 13_000, OTHER)];
    const runs = [execution(1050), execution(12_050)];
    const problem = ['1 attempts that neither succeeded nor were lost with a killed agent worker'];
    assert.deepEqual(count(attempts, runs, [], secondSucceeded).problems, problem);
    assert.deepEqual(count(attempts, runs, [{ pid: 200, at: 1500 }], secondSucceeded).problems, problem);
    assert.deepEqual(count(attempts, runs, [{ pid: 100, at: 11_600 }], secondSucceeded).problems, problem);
  });

  it('wants no run in an attempt no worker opened, and such an attempt only after a kill', () => {
    const attempts = [attempt(1, 11_500, 11_500, null), attempt(2, 12_000, 13_000, OTHER)];
    assert.deepEqual(count(attempts, [execution(12_050)], [{ pid: 100, at: 1500 }], secondSucceeded).problems, []);
    assert.deepEqual(count(attempts, [execution(12_050)], [], secondSucceeded).problems, [
      '1 attempts that neither succeeded nor were lost with a killed agent worker',
    ]);
  });
});
