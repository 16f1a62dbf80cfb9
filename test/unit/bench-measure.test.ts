import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordToSpawnMs, summarize, type TaskTiming } from '../bench/measure';
import type { Spawn } from '../bench/spawn-log';

/** A succeeded task sent at `sent`, whose one attempt's record was open from `start` to `end`, written at `done`. */
const task = (sent: number, start: number, end: number, done: number): TaskTiming => ({
  submittedMs: sent,
  finishedMs: done,
  status: 'succeeded',
  attempts: [{ startedMs: start, finishedMs: end }],
});

/** An agent execution the spawn log shows from `start` to `exit` (null: no exit logged). */
const spawn = (pid: number, start: number, exit: number | null): Spawn => ({
  pid,
  startMs: start,
  exitMs: exit,
  status: exit === null ? null : 0,
});

describe('benchmark measures', () => {
  // Two waves of two slots: tasks 1–2 start at once, 3–4 when a slot frees.
  const timings = [task(0, 30, 530, 531), task(2, 40, 545, 546), task(4, 535, 1040, 1042), task(6, 550, 1060, 1061)];
  const spawns = [spawn(11, 32, 529), spawn(12, 43, 544), spawn(13, 537, 1039), spawn(14, 552, 1058)];

  it("measures makespan and latency from the client's sends, and runs and executions from the spawn log", () => {
    const m = summarize(timings, spawns, 2);
    assert.equal(m.makespanS, 1.061);
    assert.equal(m.executions, 4);
    assert.equal(m.attemptRows, 4);
    assert.equal(m.peakAgents, 2);
    assert.equal(m.peakOpenAttempts, 2);
    assert.deepEqual(m.latencyMs, { p50: 38, p95: 544, p99: 544, max: 544, n: 4 });
    assert.deepEqual(m.phasesMs.run, { p50: 501, max: 506 });
  });

  it('counts an attempt spawned twice as two executions, where its record shows one', () => {
    const twice = [...spawns, spawn(15, 40, 300)];
    const m = summarize(timings, twice, 2);
    assert.equal(m.attemptRows, 4);
    assert.equal(m.executions, 5);
    assert.equal(m.peakAgents, 3);
  });

  it('counts an agent with no exit logged as alive to the end', () => {
    const killed = [spawn(11, 32, null), ...spawns.slice(1)];
    assert.equal(summarize(timings, killed, 2).peakAgents, 3);
  });

  it('times how long the burst takes to fill every slot from the spawn log, when there are tasks for all of them', () => {
    assert.equal(summarize(timings, spawns, 2).allSlotsBusyMs, 43);
    assert.equal(summarize(timings, spawns, 3).allSlotsBusyMs, 537);
    assert.equal(summarize(timings, spawns, 5).allSlotsBusyMs, null);
  });

  it("pairs an attempt's record with its spawn only where no other open record holds that spawn", () => {
    // Tasks 1 and 2 overlap (each spawn lies in both records); 3 and 4 too. Alone, a task pairs.
    assert.deepEqual(recordToSpawnMs(timings, spawns), { p50: NaN, max: NaN, n: 0 });
    const apart = [task(0, 30, 530, 531), task(1000, 1020, 1525, 1526)];
    const theirs = [spawn(21, 33, 529), spawn(22, 1025, 1524)];
    assert.deepEqual(recordToSpawnMs(apart, theirs), { p50: 3, max: 5, n: 2 });
    // Two spawns in one record: which is the attempt's own is not known, so neither pairs.
    assert.equal(recordToSpawnMs(apart, [...theirs, spawn(23, 100, 200)]).n, 1);
  });
});
