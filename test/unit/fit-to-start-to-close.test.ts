import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitToStartToClose } from '../../activities/agent/fit-to-start-to-close';

describe('fitToStartToClose', () => {
  const wanted = { timeoutMs: 60_000, killGraceMs: 30_000 };

  it('leaves limits that fit as they are, with 10 s left for the final writes', () => {
    assert.deepEqual(fitToStartToClose(wanted, 100_000), wanted);
  });

  it('cuts the kill grace first, to what the time limit leaves', () => {
    assert.deepEqual(fitToStartToClose(wanted, 90_000), { timeoutMs: 60_000, killGraceMs: 20_000 });
    assert.deepEqual(fitToStartToClose(wanted, 72_000), { timeoutMs: 60_000, killGraceMs: 2_000 });
  });

  it('then the time limit, keeping 2 s of grace, for an attempt that waited long before its agent started', () => {
    assert.deepEqual(fitToStartToClose(wanted, 55_000), { timeoutMs: 43_000, killGraceMs: 2_000 });
    assert.deepEqual(fitToStartToClose({ timeoutMs: 60_000, killGraceMs: 500 }, 55_000), {
      timeoutMs: 44_500,
      killGraceMs: 500,
    });
    assert.deepEqual(fitToStartToClose(wanted, -5_000), { timeoutMs: 0, killGraceMs: 0 });
  });

  it('keeps a quarter for the final writes of a short start-to-close (cut to the workflow run timeout)', () => {
    assert.deepEqual(fitToStartToClose(wanted, 4_000), { timeoutMs: 1_000, killGraceMs: 2_000 });
    assert.deepEqual(fitToStartToClose({ timeoutMs: 1_000, killGraceMs: 2_000 }, 8_000), {
      timeoutMs: 1_000,
      killGraceMs: 2_000,
    });
  });
});
