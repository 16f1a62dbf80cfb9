import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  afterOutcome,
  breakerGate,
  breakerNow,
  closedBreaker,
  withProbe,
  type BreakerConfig,
} from '../../src/gate/breaker';

const config: BreakerConfig = { failureThreshold: 3, windowSeconds: 60, cooldownSeconds: 30 };
const at = (s: number): Date => new Date(1_000_000_000_000 + s * 1000);

describe('circuit breaker', () => {
  it('opens after the threshold of breaker-class failures within the window', () => {
    let b = closedBreaker();
    b = afterOutcome(b, 'rate_limited', 'k1', at(0), config);
    b = afterOutcome(b, 'overloaded', 'k2', at(10), config);
    assert.equal(b.state, 'closed');
    assert.equal(b.failures, 2);
    b = afterOutcome(b, 'auth', 'k3', at(20), config);
    assert.equal(b.state, 'open');
    assert.deepEqual(b.openUntil, at(50));
  });

  it('counts only failures within one window, and ignores other classes', () => {
    let b = closedBreaker();
    b = afterOutcome(b, 'rate_limited', 'k1', at(0), config);
    b = afterOutcome(b, 'nonzero_exit', 'k2', at(1), config);
    b = afterOutcome(b, 'timeout', 'k3', at(2), config);
    b = afterOutcome(b, 'rate_limited', 'k4', at(30), config);
    b = afterOutcome(b, 'rate_limited', 'k5', at(61), config); // the first one has left the window
    assert.equal(b.state, 'closed');
    assert.equal(b.failures, 1);
  });

  it('does not believe a reset time more than a month away: the cooldown stands', () => {
    const failing = { ...closedBreaker(), failures: 2, windowStartedAt: at(0) };
    // Epoch milliseconds read as seconds, say: a reset some 55,000 years away.
    const misread = afterOutcome(failing, 'rate_limited', 'k', at(1), config, new Date(1_753_441_200_000 * 1000));
    assert.deepEqual(misread.openUntil, at(31));
    const inAWeek = afterOutcome(failing, 'rate_limited', 'k', at(1), config, at(1 + 7 * 86_400));
    assert.deepEqual(inAWeek.openUntil, at(1 + 7 * 86_400));
  });

  it('refuses while open, lets one probe through after the cooldown, and closes on its success', () => {
    let b = afterOutcome({ ...closedBreaker(), failures: 2, windowStartedAt: at(0) }, 'overloaded', 'k', at(1), config);
    assert.deepEqual(breakerGate(b, at(10), 'p1', false), { kind: 'open', until: at(31) });
    assert.deepEqual(breakerGate(b, at(31), 'p1', false), { kind: 'probe' });
    b = withProbe(b, 'p1');
    assert.equal(b.state, 'half_open');
    // Everyone else waits while the probe runs, unless the probe's worker died (its lease expired).
    assert.deepEqual(breakerGate(b, at(32), 'p2', true), { kind: 'open', until: null });
    assert.deepEqual(breakerGate(b, at(32), 'p2', false), { kind: 'probe' });
    assert.deepEqual(breakerGate(b, at(32), 'p1', true), { kind: 'probe' });
    b = afterOutcome(b, 'succeeded', 'p1', at(33), config);
    assert.deepEqual(b, closedBreaker());
    assert.deepEqual(breakerGate(b, at(33), 'p3', false), { kind: 'pass' });
  });

  it("closes on the probe's success only: other successes change nothing", () => {
    // A run admitted before the breaker opened, succeeding while it is open, or beside the probe.
    const open = afterOutcome(
      { ...closedBreaker(), failures: 2, windowStartedAt: at(0) },
      'rate_limited',
      'k',
      at(1),
      config,
      at(600),
    );
    assert.equal(afterOutcome(open, 'succeeded', 'early', at(5), config), open);
    const half = withProbe(open, 'p1');
    assert.equal(afterOutcome(half, 'succeeded', 'early', at(601), config), half);
    // Closed, a success keeps the window's failures: the threshold counts failures in it, not in a row.
    let b = afterOutcome(closedBreaker(), 'overloaded', 'k1', at(0), config);
    b = afterOutcome(b, 'overloaded', 'k2', at(1), config);
    b = afterOutcome(b, 'succeeded', 'k3', at(2), config);
    assert.equal(b.failures, 2);
    assert.equal(afterOutcome(b, 'overloaded', 'k4', at(3), config).state, 'open');
  });

  it('reopens at once when the probe fails, until the reset time when it is later', () => {
    const half = withProbe({ ...closedBreaker(), state: 'open', openUntil: at(0) }, 'p1');
    const reopened = afterOutcome(half, 'rate_limited', 'p1', at(5), config, at(600));
    assert.equal(reopened.state, 'open');
    assert.deepEqual(reopened.openUntil, at(600));
    // A probe that fails for another reason frees the probe: the next attempt probes.
    const freed = afterOutcome(half, 'timeout', 'p1', at(5), config);
    assert.equal(freed.state, 'half_open');
    assert.equal(freed.probe, null);
  });

  it('reopens at once, too, at the failure of an attempt from before it opened, and then ignores the probe', () => {
    // The provider failed that attempt just now: the breaker decides on failures, whoever's.
    const half = withProbe({ ...closedBreaker(), state: 'open', openUntil: at(0) }, 'p1');
    const reopened = afterOutcome(half, 'overloaded', 'early', at(5), config);
    assert.deepEqual([reopened.state, reopened.probe, reopened.openUntil], ['open', null, at(35)]);
    assert.equal(afterOutcome(reopened, 'succeeded', 'p1', at(6), config), reopened);
  });

  it('reports the breaker as the next attempt would find it, without changing it', () => {
    const open = { state: 'open' as const, failures: 3, windowStartedAt: at(0), openUntil: at(30) };
    assert.deepEqual(breakerNow(open, at(10), config), { state: 'open', failures: 3 });
    assert.deepEqual(breakerNow(open, at(30), config), { state: 'half_open', failures: 3 });
    const closed = { state: 'closed' as const, failures: 2, windowStartedAt: at(0), openUntil: null };
    assert.deepEqual(breakerNow(closed, at(59), config), { state: 'closed', failures: 2 });
    assert.deepEqual(breakerNow(closed, at(61), config), { state: 'closed', failures: 0 });
  });
});
