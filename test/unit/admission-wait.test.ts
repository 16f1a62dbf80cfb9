import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextLook } from '../../workflows/admission-wait';
import type { AdmissionWait } from '../../workflows/definitions';

const NOW = 1_000_000;
const wait = (until: number | null, kind: AdmissionWait['kind'] = 'start_rate'): AdmissionWait => ({
  kind,
  agent: 'a',
  message: 'held back',
  until,
});

describe('nextLook', () => {
  it('looks again when the earliest wait lifts by itself, else after the growing recheck interval', () => {
    assert.deepEqual(nextLook([wait(NOW + 700), wait(NOW + 2_000)], 5_000, 0, 0, NOW), {
      delayMs: 700,
      overdue: false,
    });
    assert.deepEqual(nextLook([wait(null, 'concurrency')], 5_000, 2, 0, NOW), { delayMs: 11_250, overdue: false });
    assert.equal(nextLook([wait(null, 'concurrency')], 5_000, 40, 0, NOW).delayMs, 5 * 60_000);
  });

  it('looks hourly at most at a wait that has gone on for a day of looks, so its history stays small', () => {
    assert.equal(nextLook([wait(null, 'task_budget')], 5_000, 299, 0, NOW).delayMs, 5 * 60_000);
    assert.equal(nextLook([wait(null, 'task_budget')], 5_000, 300, 0, NOW).delayMs, 60 * 60_000);
    // A wait that lifts by itself later (the day's budget, tomorrow) is looked at hourly meanwhile.
    assert.equal(nextLook([wait(NOW + 20 * 3_600_000, 'daily_budget')], 5_000, 300, 0, NOW).delayMs, 60 * 60_000);
    // A half-open breaker, which nothing wakes, is looked at every 30 s, then every 5 minutes.
    assert.equal(nextLook([wait(null, 'breaker_open')], 5_000, 299, 0, NOW).delayMs, 30_000);
    assert.equal(nextLook([wait(null, 'breaker_open')], 5_000, 400, 0, NOW).delayMs, 5 * 60_000);
  });

  it('looks every 5 minutes at most often after those looks, however soon a wait lifts (a breaker that keeps reopening)', () => {
    // A breaker whose probes keep failing reopens for its 60 s cooldown, round after round.
    assert.equal(nextLook([wait(NOW + 60_000, 'breaker_open')], 5_000, 299, 0, NOW).delayMs, 60_000);
    assert.equal(nextLook([wait(NOW + 60_000, 'breaker_open')], 5_000, 300, 0, NOW).delayMs, 5 * 60_000);
    assert.equal(nextLook([wait(NOW - 1_000)], 5_000, 300, 0, NOW).delayMs, 5 * 60_000);
    // A draining worker's answer is asked again at once, elsewhere, however long the task has waited.
    assert.equal(nextLook([wait(NOW, 'worker_draining')], 5_000, 400, 0, NOW).delayMs, 50);
    // So is a busy worker's, which hands a shared-queue attempt back to the queue.
    assert.equal(nextLook([wait(NOW, 'worker_busy')], 5_000, 400, 0, NOW).delayMs, 50);
  });

  it('looks again at once after storing a wait a wake may lift, however long the task has waited', () => {
    // A wake sent between the answer and the store found no reason to find the task by.
    const slot = wait(null, 'concurrency');
    assert.equal(nextLook([slot], 120_000, 0, 0, NOW, slot).delayMs, 50);
    assert.equal(nextLook([slot], 5_000, 400, 0, NOW, slot).delayMs, 50);
    const halfOpen = wait(null, 'breaker_open');
    assert.equal(nextLook([halfOpen], 5_000, 40, 0, NOW, halfOpen).delayMs, 50);
    // Waits that lift by themselves, but earlier when woken: a budget raised before midnight, a breaker
    // reset before its cooldown ends.
    const day = wait(NOW + 20 * 3_600_000, 'daily_budget');
    assert.equal(nextLook([day], 5_000, 0, 0, NOW, day).delayMs, 50);
    assert.equal(nextLook([day], 5_000, 400, 0, NOW, day).delayMs, 50);
    const open = wait(NOW + 60_000, 'breaker_open');
    assert.equal(nextLook([open], 5_000, 0, 0, NOW, open).delayMs, 50);
    // Stored before, it is looked at as any wait; one that only lifts by itself is looked at then.
    assert.equal(nextLook([slot], 5_000, 40, 0, NOW).delayMs, 5 * 60_000);
    assert.equal(nextLook([open], 5_000, 0, 0, NOW).delayMs, 60_000);
    const window = wait(NOW + 40_000);
    assert.equal(nextLook([window], 5_000, 0, 0, NOW, window).delayMs, 40_000);
  });

  it('looks again soon at a wait that is due already, then less and less often while it stays due', () => {
    // The database's clock runs a second behind: its `until` keeps being past by the workflow's.
    const delays = [0, 1, 2, 3, 4].map((overdueRounds) => nextLook([wait(NOW - 1_000)], 5_000, 9, overdueRounds, NOW));
    assert.deepEqual(
      delays.map((d) => d.delayMs),
      [50, 100, 200, 400, 800],
    );
    assert.ok(delays.every((d) => d.overdue));
    // Never longer than the recheck interval would be.
    assert.equal(nextLook([wait(NOW - 1_000)], 100, 0, 10, NOW).delayMs, 100);
  });
});
