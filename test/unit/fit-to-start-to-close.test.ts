import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitToStartToClose } from '../../activities/agent/fit-to-start-to-close';

describe('fitToStartToClose', () => {
  const wanted = { timeoutMs: 60_000, killGraceMs: 30_000 };

  it('leaves limits that fit as they are', () => {
    assert.deepEqual(fitToStartToClose(wanted, 90_000), wanted);
  });

  it('cuts the kill grace first, to what the time limit leaves', () => {
    assert.deepEqual(fitToStartToClose(wanted, 80_000), { timeoutMs: 60_000, killGraceMs: 20_000 });
    assert.deepEqual(fitToStartToClose(wanted, 60_000), { timeoutMs: 60_000, killGraceMs: 0 });
  });

  it('then the time limit, for an attempt that waited long before its agent started', () => {
    assert.deepEqual(fitToStartToClose(wanted, 45_000), { timeoutMs: 45_000, killGraceMs: 0 });
    assert.deepEqual(fitToStartToClose(wanted, -5_000), { timeoutMs: 0, killGraceMs: 0 });
  });
});
