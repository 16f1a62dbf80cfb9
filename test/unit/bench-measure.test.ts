import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarize, type TaskTiming } from '../bench/measure';

/** A succeeded task submitted at `created`, whose one agent ran from `start` to `end`, written at `done`. */
const task = (created: number, start: number, end: number, done: number): TaskTiming => ({
  createdMs: created,
  finishedMs: done,
  status: 'succeeded',
  attempts: [{ startedMs: start, finishedMs: end }],
});

describe('benchmark measures', () => {
  // Two waves of two slots: tasks 1–2 start at once, 3–4 when a slot frees.
  const timings = [task(0, 30, 530, 531), task(2, 40, 545, 546), task(4, 535, 1040, 1042), task(6, 550, 1060, 1061)];

  it('measures makespan from the first submission to the last terminal write, and the phases', () => {
    const m = summarize(timings, 2);
    assert.equal(m.makespanS, 1.061);
    assert.equal(m.executions, 4);
    assert.equal(m.peakOpenAttempts, 2);
    assert.deepEqual(m.latencyMs, { p50: 38, p95: 544, p99: 544, max: 544 });
    assert.deepEqual(m.phasesMs.run, { p50: 505, max: 510 });
  });

  it('times how long the burst takes to fill every slot, when there are tasks for all of them', () => {
    assert.equal(summarize(timings, 2).allSlotsBusyMs, 40);
    assert.equal(summarize(timings, 3).allSlotsBusyMs, 535);
    assert.equal(summarize(timings, 5).allSlotsBusyMs, null);
  });
});
