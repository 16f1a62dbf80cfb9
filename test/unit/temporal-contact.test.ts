import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { CUT_OFF_AFTER_MS, CUT_OFF_KILL_BY_MS, TemporalContact } from '../../src/workers/temporal-contact';

/** Settles pending promise callbacks (the probe's answer). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** A contact whose probes Temporal answers while `up` is true; time moves only with `advance`. */
function contact(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const state: { up: boolean; answer?: () => Promise<unknown> } = { up: true };
  const events: string[] = [];
  const c = new TemporalContact(
    () => state.answer?.() ?? (state.up ? Promise.resolve() : Promise.reject(new Error('unreachable'))),
    (event) => events.push(event),
    () => Date.now(),
  );
  const advance = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 250) {
      t.mock.timers.tick(Math.min(250, left));
      await settle();
    }
  };
  c.start();
  t.after(() => c.stop());
  return { c, state, events, advance };
}

describe('TemporalContact', () => {
  it('never cuts off a worker that Temporal answers', async (t) => {
    const { c, advance } = contact(t);
    await advance(30_000);
    assert.equal(c.signal.aborted, false);
    assert.ok(c.killGraceMs() > CUT_OFF_KILL_BY_MS - 1500);
  });

  it('aborts its signal after CUT_OFF_AFTER_MS without an answer, not before, leaving the rest for the kill', async (t) => {
    const { c, state, events, advance } = contact(t);
    await advance(1000);
    state.up = false;
    const signal = c.signal;
    await advance(CUT_OFF_AFTER_MS - 1500);
    assert.equal(signal.aborted, false, 'a Temporal restart of a few seconds is not a cut');
    await advance(1500);
    assert.equal(signal.aborted, true);
    assert.deepEqual(events, ['cut_off']);
    assert.ok(c.killGraceMs() <= CUT_OFF_KILL_BY_MS - CUT_OFF_AFTER_MS, `grace ${c.killGraceMs()} ms`);
  });

  it('serves a fresh signal once Temporal answers again', async (t) => {
    const { c, state, events, advance } = contact(t);
    state.up = false;
    await advance(CUT_OFF_AFTER_MS + 1000);
    const cut = c.signal;
    state.up = true;
    await advance(1000);
    assert.equal(cut.aborted, true, 'attempts that were stopped stay stopped');
    assert.equal(c.signal.aborted, false);
    assert.deepEqual(events, ['cut_off', 'back']);
  });

  it('takes an error only a server sends for an answer, and a transport error for silence', async (t) => {
    const { c, state, advance } = contact(t);
    state.answer = () => Promise.reject(Object.assign(new Error('denied'), { code: 7 }));
    await advance(CUT_OFF_AFTER_MS + 2000);
    assert.equal(c.signal.aborted, false, 'PERMISSION_DENIED is an answer');
    state.answer = () => Promise.reject(Object.assign(new Error('unavailable'), { code: 14 }));
    await advance(CUT_OFF_AFTER_MS + 1000);
    assert.equal(c.signal.aborted, true, 'UNAVAILABLE is no answer');
  });

  it('counts a probe that hangs as unanswered, and a late answer to an old probe as no contact now', async (t) => {
    const { c, state, events, advance } = contact(t);
    let answer: () => void = () => undefined;
    state.answer = () => new Promise<void>((resolve) => (answer = resolve));
    await advance(CUT_OFF_AFTER_MS + 1000);
    assert.equal(c.signal.aborted, true, 'hanging probes are silence');
    answer();
    await advance(0);
    assert.deepEqual(events, ['cut_off'], 'the answer to a probe sent long ago is not contact back');
  });

  it('asks once more when an attempt arrives while cut off, and serves a fresh signal if answered', async (t) => {
    const { c, state, advance } = contact(t);
    state.up = false;
    await advance(CUT_OFF_AFTER_MS + 1000);
    state.up = true;
    await c.confirm();
    assert.equal(c.signal.aborted, false);
  });
});
