import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SilentTargets } from '../../src/notifications/silent-targets';

describe('SilentTargets', () => {
  it('holds off a URL after a timeout, lets one try through once the hold-off ends, and forgets it once it answers', () => {
    let now = 1_000;
    const silent = new SilentTargets(10_000, 30_000, () => now);
    assert.equal(silent.heldOffMs('a'), undefined, 'never held off');
    assert.equal(silent.tried('a', false), true, 'a hold-off begins');
    assert.equal(silent.heldOffMs('a'), 30_000);
    assert.equal(silent.heldOffMs('b'), undefined, 'each URL on its own');
    now += 10_000;
    assert.equal(silent.heldOffMs('a'), 20_000);
    now += 20_000;
    assert.equal(silent.heldOffMs('a'), undefined, 'the hold-off has ended: this try goes through');
    assert.equal(silent.heldOffMs('a'), 10_000, 'one try at a time: the others wait for its end');
    now += 4_000;
    assert.equal(silent.heldOffMs('a'), 6_000);
    assert.equal(silent.tried('a', false), false, 'a timeout again renews it, as the same hold-off');
    assert.equal(silent.heldOffMs('a'), 30_000);
    now += 30_000;
    assert.equal(silent.heldOffMs('a'), undefined);
    assert.equal(silent.tried('a', true), false);
    assert.equal(silent.heldOffMs('a'), undefined, 'answered in time: no longer held off');
    assert.equal(silent.heldOffMs('a'), undefined);
  });
});
