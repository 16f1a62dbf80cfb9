import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedRead } from '../../src/api/observability/cached-read';

/** A read that counts its calls and ends when the test says. */
function controlledRead() {
  let calls = 0;
  let finish: ((value: number) => void) | undefined;
  let fail: ((err: Error) => void) | undefined;
  const read = () =>
    new Promise<number>((resolve, reject) => {
      calls += 1;
      finish = resolve;
      fail = reject;
    });
  return { read, calls: () => calls, finish: (v: number) => finish?.(v), fail: (e: Error) => fail?.(e) };
}

describe('CachedRead', () => {
  it('shares a read under way with every caller, however long it takes, then for its ttl', async () => {
    const r = controlledRead();
    const cache = new CachedRead(r.read, 60_000);
    const first = cache.get();
    const second = cache.get();
    assert.equal(r.calls(), 1, 'a scrape during a slow read waits for it');
    r.finish(7);
    assert.deepEqual(await first, { ok: true, value: 7 });
    assert.deepEqual(await second, { ok: true, value: 7 });
    assert.deepEqual(await cache.get(), { ok: true, value: 7 });
    assert.equal(r.calls(), 1);
  });

  it('reads again once the ttl after the end has passed, and after a failure', async () => {
    const r = controlledRead();
    const expired = new CachedRead(r.read, -1);
    const first = expired.get();
    assert.equal(expired.get(), first, 'shared while it runs, whatever the ttl');
    r.finish(1);
    await first;
    const again = expired.get();
    assert.equal(r.calls(), 2);
    r.fail(new Error('database gone'));
    assert.equal((await again).ok, false);
    void expired.get();
    assert.equal(r.calls(), 3, 'a failed read is not kept');
  });
});
