import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AtCapacityException, ConcurrencyCap } from '../../src/api/http/concurrency-cap';

describe('ConcurrencyCap', () => {
  it('refuses a call past its limit at once, with when to try again, and takes one once a call ends', async () => {
    const cap = new ConcurrencyCap(2, 'retries', 5);
    const releases: (() => void)[] = [];
    const held = (): Promise<string> => new Promise((resolve) => releases.push(() => resolve('done')));
    const first = cap.run(held);
    const second = cap.run(async () => {
      throw new Error('failed');
    });
    await assert.rejects(second, /failed/);
    const third = cap.run(held);
    const refused = await cap.run(held).catch((err: unknown) => err);
    assert.ok(refused instanceof AtCapacityException, String(refused));
    assert.equal(refused.getStatus(), 503);
    assert.equal(refused.retryAfterSeconds, 5);
    assert.match(refused.message, /too many retries under way/);
    releases.forEach((release) => release());
    assert.deepEqual(await Promise.all([first, third]), ['done', 'done']);
    assert.equal(await cap.run(async () => 'again'), 'again', 'room again once calls ended');
  });
});
