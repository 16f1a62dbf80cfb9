import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SlotPermit, SlotReserveContext } from '@temporalio/worker';
import { AgentSlotPool, RESERVATION_MS } from '../../src/workers/agent-slot-pool';

const SHARED = 'agents';
const OWN = 'agents/worker-1';

/** Settles pending promise callbacks, so a grant that is due has happened. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A promise whose outcome can be read without awaiting it. */
function watch<T>(promise: Promise<T>): {
  state: () => 'pending' | 'done' | 'failed';
  value: () => T;
  error: () => unknown;
} {
  let state: 'pending' | 'done' | 'failed' = 'pending';
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (v) => {
      state = 'done';
      value = v;
    },
    (e: unknown) => {
      state = 'failed';
      error = e;
    },
  );
  return { state: () => state, value: () => value as T, error: () => error };
}

const reserveContext = { slotType: 'activity', taskQueue: SHARED } as SlotReserveContext;
const poll = (pool: AgentSlotPool, signal = new AbortController().signal) =>
  watch(pool.sharedQueueSupplier.reserveSlot(reserveContext, signal));
const releasePoll = (pool: AgentSlotPool, permit: SlotPermit) => pool.sharedQueueSupplier.releaseSlot({ permit });
/** Temporal's release of a permit whose poll brought a task, once that task's activity has returned. */
const releaseTask = (pool: AgentSlotPool, permit: SlotPermit) =>
  pool.sharedQueueSupplier.releaseSlot({ permit, slotInfo: { type: 'activity', activityType: 'runAgent' } });
const agent = (pool: AgentSlotPool, queue: string, signal = new AbortController().signal, taskId?: string) =>
  watch(pool.take(queue, taskId, signal));

describe('AgentSlotPool', () => {
  it('runs at most `total` agents over both queues, the others in line first come first served', async () => {
    const pool = new AgentSlotPool(2, SHARED);
    const a = agent(pool, SHARED);
    const b = agent(pool, OWN);
    const c = agent(pool, OWN);
    const d = agent(pool, SHARED);
    await settle();
    assert.deepEqual([a.state(), b.state(), c.state(), d.state()], ['done', 'done', 'pending', 'pending']);
    b.value()();
    await settle();
    assert.deepEqual([c.state(), d.state()], ['done', 'pending'], 'the first in line goes first');
    a.value()();
    await settle();
    assert.equal(d.state(), 'done');
  });

  it("never lets the shared queue's idle polls keep the own queue's agents waiting", async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const idle = poll(pool);
    await settle();
    assert.equal(idle.state(), 'done', 'the shared queue polls while nothing runs');
    const own = agent(pool, OWN);
    await settle();
    assert.equal(own.state(), 'done', 'a poll holds no agent slot');
  });

  it('polls the shared queue only while its tasks and the own queue agents leave room', async () => {
    const pool = new AgentSlotPool(2, SHARED);
    const first = poll(pool);
    const own = agent(pool, OWN);
    await settle();
    assert.equal(first.state(), 'done');
    const second = poll(pool);
    await settle();
    assert.equal(second.state(), 'pending', 'one poll and one own agent fill two slots');
    assert.equal(pool.sharedQueueSupplier.tryReserveSlot(reserveContext), null, 'nor is an eager task taken');
    own.value()();
    await settle();
    assert.equal(second.state(), 'done', 'the own agent ended: room for another poll');
    releasePoll(pool, first.value());
    releasePoll(pool, second.value());
    assert.ok(pool.sharedQueueSupplier.tryReserveSlot(reserveContext), 'an eager task is taken when there is room');
  });

  it('counts an own queue agent in line against the shared queue too', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const running = agent(pool, OWN);
    const waiting = agent(pool, OWN);
    await settle();
    const p = poll(pool);
    running.value()();
    await settle();
    assert.equal(waiting.state(), 'done');
    assert.equal(p.state(), 'pending', 'the waiting agent had the slot before the shared queue');
    waiting.value()();
    await settle();
    assert.equal(p.state(), 'done');
  });

  it('takes a cancelled agent out of line, with the cancellation as its error', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const running = agent(pool, OWN);
    const cancel = new AbortController();
    const cancelled = agent(pool, OWN, cancel.signal);
    const next = agent(pool, SHARED);
    const p = poll(pool);
    await settle();
    const reason = new Error('cancelled');
    cancel.abort(reason);
    await settle();
    assert.equal(cancelled.state(), 'failed');
    assert.equal(cancelled.error(), reason);
    running.value()();
    await settle();
    assert.equal(next.state(), 'done', 'the next in line got the slot');
    assert.equal(p.state(), 'done', 'the cancelled own agent no longer holds the shared queue back');
  });

  it('ends a poll reservation the worker gives up with the abort reason', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const own = agent(pool, OWN);
    const stop = new AbortController();
    const p = poll(pool, stop.signal);
    await settle();
    stop.abort();
    await settle();
    assert.equal(p.state(), 'failed');
    assert.equal(p.error(), stop.signal.reason);
    own.value()();
    const later = poll(pool);
    await settle();
    assert.equal(later.state(), 'done', 'the given-up reservation holds no permit');
  });

  it("gives an ended agent's slot to the next one while its attempt still finishes, once", async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const ending = agent(pool, OWN);
    const next = agent(pool, OWN);
    const after = agent(pool, OWN);
    await settle();
    ending.value().agentEnded();
    await settle();
    assert.equal(next.state(), 'done', 'the slot went on when the agent ended');
    ending.value()();
    ending.value().agentEnded();
    await settle();
    assert.equal(after.state(), 'pending', 'the attempt returning later frees nothing more');
    next.value()();
    await settle();
    assert.equal(after.state(), 'done');
  });

  it("polls the shared queue for the next task while an ended agent's attempt finishes", async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const first = poll(pool);
    await settle();
    const ending = agent(pool, SHARED);
    await settle();
    const second = poll(pool);
    await settle();
    assert.equal(second.state(), 'pending', "the task's agent runs: no room");
    ending.value().agentEnded();
    await settle();
    assert.equal(second.state(), 'done', 'the agent ended: its permit holds no agent');
    ending.value()();
    releaseTask(pool, first.value());
    const third = poll(pool);
    await settle();
    assert.equal(third.state(), 'pending', 'the second poll holds the one slot');
    releasePoll(pool, second.value());
    await settle();
    assert.equal(third.state(), 'done');
  });

  it('never counts more room than there is when a task ends before an ended one is released', async () => {
    const pool = new AgentSlotPool(2, SHARED);
    const [p1, p2] = [poll(pool), poll(pool)];
    await settle();
    const [ended, plain] = [agent(pool, SHARED), agent(pool, SHARED)];
    await settle();
    ended.value().agentEnded();
    ended.value()();
    plain.value()();
    // Temporal releases the plain task's permit first; the pool cannot tell the two permits apart.
    releaseTask(pool, p2.value());
    const extra = [poll(pool), poll(pool)];
    await settle();
    assert.deepEqual(
      extra.map((p) => p.state()),
      ['done', 'pending'],
      "the ended task's permit still counts until it is released",
    );
    releaseTask(pool, p1.value());
    await settle();
    assert.deepEqual(
      extra.map((p) => p.state()),
      ['done', 'done'],
    );
  });

  describe('slots kept for prepared worktrees', () => {
    it("starts the task's first attempt at once, ahead of the line, and keeps the slot from the shared queue", async () => {
      const pool = new AgentSlotPool(2, SHARED);
      const running = agent(pool, OWN);
      await settle();
      pool.reserve('task-1');
      const shared = poll(pool);
      const inLine = agent(pool, SHARED);
      await settle();
      assert.equal(shared.state(), 'pending', 'one agent and one kept slot fill two');
      assert.equal(inLine.state(), 'pending', 'a kept slot is not free for the line');
      const first = agent(pool, OWN, undefined, 'task-1');
      await settle();
      assert.equal(first.state(), 'done', 'the kept slot is taken without waiting');
      first.value()();
      await settle();
      assert.equal(inLine.state(), 'done', 'once its attempt ends, the slot is an ordinary one');
      running.value()();
      await settle();
      assert.equal(shared.state(), 'done');
    });

    it('keeps a slot once per task, and none while every slot is taken or kept', async () => {
      const pool = new AgentSlotPool(2, SHARED);
      pool.reserve('task-1');
      pool.reserve('task-1');
      const free = poll(pool);
      await settle();
      assert.equal(free.state(), 'done', 'the same task keeps one slot');
      const running = agent(pool, SHARED);
      await settle();
      pool.reserve('task-2');
      const second = agent(pool, OWN, undefined, 'task-2');
      await settle();
      assert.equal(second.state(), 'pending', 'no slot was kept for task-2: its attempt waits in line');
      running.value()();
      await settle();
      assert.equal(second.state(), 'done');
    });

    it("keeps the slot of an own-queue attempt whose agent never ran for the task's next attempt", async () => {
      const pool = new AgentSlotPool(1, SHARED);
      const heldBack = agent(pool, OWN, undefined, 'task-1');
      await settle();
      const waiting = agent(pool, OWN, undefined, 'task-2');
      heldBack.value().keep();
      heldBack.value()();
      await settle();
      assert.equal(waiting.state(), 'pending', "the slot stays with task-1, not the line's first");
      const next = agent(pool, OWN, undefined, 'task-1');
      await settle();
      assert.equal(next.state(), 'done');
      next.value()();
      await settle();
      assert.equal(waiting.state(), 'done');

      const shared = agent(pool, SHARED, undefined, 'task-3');
      waiting.value()();
      await settle();
      shared.value().keep();
      const after = agent(pool, OWN, undefined, 'task-4');
      await settle();
      assert.equal(after.state(), 'done', 'a shared-queue attempt keeps nothing: its next may run anywhere');
    });

    it('gives the kept slot back when the attempt for it is cancelled before it takes it', async () => {
      const pool = new AgentSlotPool(1, SHARED);
      pool.reserve('task-1');
      const cancelled = new AbortController();
      cancelled.abort(new Error('cancelled'));
      const gone = agent(pool, OWN, cancelled.signal, 'task-1');
      const shared = poll(pool);
      await settle();
      assert.equal(gone.state(), 'failed');
      assert.equal(shared.state(), 'done', 'the slot went back at once, not after the lapse');
    });

    it('lets a kept slot go when no attempt comes for it in time', async (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const pool = new AgentSlotPool(1, SHARED);
      pool.reserve('task-1');
      const shared = poll(pool);
      await settle();
      assert.equal(shared.state(), 'pending');
      t.mock.timers.tick(RESERVATION_MS);
      await settle();
      assert.equal(shared.state(), 'done', 'the slot went back to the shared queue');
      releasePoll(pool, shared.value());
      const late = agent(pool, OWN, undefined, 'task-1');
      await settle();
      assert.equal(late.state(), 'done', 'a late attempt takes a free slot as any other');
    });
  });
});
