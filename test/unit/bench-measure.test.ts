import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { executionsByTask, recordToSpawnMs, summarize, type TaskTiming } from '../bench/measure';
import type { Spawn } from '../bench/spawn-log';

/** A succeeded task `id` sent at `sent`, whose one attempt's record was open from `start` to `end`, written at `done`. */
const task = (id: string, sent: number, start: number, end: number, done: number): TaskTiming => ({
  id,
  submittedMs: sent,
  finishedMs: done,
  status: 'succeeded',
  attempts: [{ number: 1, startedMs: start, finishedMs: end, failed: false }],
});

/** An agent execution of `taskId`'s `attempt` the spawn log shows from `start` to `exit` (null: no exit logged). */
const spawn = (pid: number, taskId: string | null, start: number, exit: number | null, attempt = 1): Spawn => ({
  pid,
  taskId,
  attempt: taskId === null ? null : attempt,
  startMs: start,
  exitMs: exit,
  status: exit === null ? null : 0,
});

describe('benchmark measures', () => {
  // Two waves of two slots: tasks a–b start at once, c–d when a slot frees.
  const timings = [
    task('a', 0, 30, 530, 531),
    task('b', 2, 40, 545, 546),
    task('c', 4, 535, 1040, 1042),
    task('d', 6, 550, 1060, 1061),
  ];
  const spawns = [
    spawn(11, 'a', 32, 529),
    spawn(12, 'b', 43, 544),
    spawn(13, 'c', 537, 1039),
    spawn(14, 'd', 552, 1058),
  ];

  it("measures makespan from the client's sends, latency to each task's spawn, and runs and executions from the spawn log", () => {
    const m = summarize(timings, spawns, 2);
    assert.equal(m.makespanS, 1.061);
    assert.equal(m.executions, 4);
    assert.equal(m.attemptRows, 4);
    assert.equal(m.peakAgents, 2);
    assert.equal(m.peakOpenAttempts, 2);
    // To the spawns (32, 43, 537, 552), not to the records (30, 40, 535, 550).
    assert.deepEqual(m.latencyMs, { p50: 41, p95: 546, p99: 546, max: 546, n: 4 });
    assert.deepEqual(m.phasesMs.run, { p50: 501, max: 506 });
  });

  it("measures latency to the spawn of the task's attempt 1, leaving out a task the log has no such spawn of", () => {
    // Task d's only spawn is filed under its attempt 2; a's second spawn comes later than its first.
    const later = [
      spawn(11, 'a', 32, 529),
      spawn(15, 'a', 300, 400),
      spawn(12, 'b', 43, 544),
      spawn(13, 'c', 537, 1039),
    ];
    const m = summarize(timings, [...later, spawn(14, 'd', 552, 1058, 2)], 2);
    assert.deepEqual(m.latencyMs, { p50: 41, p95: 533, p99: 533, max: 533, n: 3 });
  });

  it('counts an attempt spawned twice as two executions, where its record shows one', () => {
    const twice = [...spawns, spawn(15, 'a', 40, 300)];
    const m = summarize(timings, twice, 2);
    assert.equal(m.attemptRows, 4);
    assert.equal(m.executions, 5);
    assert.equal(m.peakAgents, 3);
  });

  it('finds a task run twice by task, even where another ran one fewer time and the total matches', () => {
    assert.deepEqual(executionsByTask(timings, spawns), { wrong: [], unfiled: 0 });
    const swapped = [
      spawn(11, 'a', 32, 529),
      spawn(12, 'b', 43, 544),
      spawn(13, 'b', 537, 1039),
      spawn(14, 'd', 552, 1058),
    ];
    assert.equal(swapped.length, timings.length);
    assert.deepEqual(executionsByTask(timings, swapped), {
      wrong: ['b: 2 executions for 1 attempt(s)', 'c: 0 executions for 1 attempt(s)'],
      unfiled: 0,
    });
    // An execution filed under no task of the run (no id logged, or another's) is counted apart.
    const strays = [...spawns, spawn(15, null, 40, 300), spawn(16, 'z', 40, 300)];
    assert.deepEqual(executionsByTask(timings, strays), { wrong: [], unfiled: 2 });
  });

  it('allows one execution per attempt opened after a failure, and only one where no attempt failed', () => {
    const attempt = (number: number, failed: boolean) => ({ number, startedMs: 0, finishedMs: 1, failed });
    const retried = { ...task('r', 0, 0, 1, 2), attempts: [attempt(1, true), attempt(2, false)] };
    const twoOk = { ...task('t', 0, 0, 1, 2), attempts: [attempt(1, false), attempt(2, false)] };
    const both = (id: string) => [spawn(21, id, 0, 1, 1), spawn(22, id, 0, 1, 2)];
    assert.deepEqual(executionsByTask([retried], both('r')), { wrong: [], unfiled: 0 });
    assert.deepEqual(executionsByTask([retried], both('r').slice(0, 1)).wrong, ['r: 1 executions for 2 attempt(s)']);
    assert.deepEqual(executionsByTask([twoOk], both('t')).wrong, ['t: 2 executions for 2 attempt(s)']);
  });

  it('counts an agent with no exit logged as alive to the end', () => {
    const killed = [spawn(11, 'a', 32, null), ...spawns.slice(1)];
    assert.equal(summarize(timings, killed, 2).peakAgents, 3);
  });

  it('times how long the burst takes to fill every slot from the spawn log, when there are tasks for all of them', () => {
    assert.equal(summarize(timings, spawns, 2).allSlotsBusyMs, 43);
    assert.equal(summarize(timings, spawns, 3).allSlotsBusyMs, 537);
    assert.equal(summarize(timings, spawns, 5).allSlotsBusyMs, null);
  });

  it("pairs each attempt's record with its spawn by task id and attempt, overlapping tasks too", () => {
    // Tasks a and b overlap (each spawn lies in both records), and c and d: all four pair.
    assert.deepEqual(recordToSpawnMs(timings, spawns), { p50: 2, max: 3, n: 4 });
    // An attempt with no spawn filed under it (here, d's is filed under attempt 2) does not pair.
    const unfiled = [...spawns.slice(0, 3), spawn(14, 'd', 552, 1058, 2), spawn(15, null, 551, 600)];
    assert.deepEqual(recordToSpawnMs(timings, unfiled), { p50: 2, max: 3, n: 3 });
  });
});
