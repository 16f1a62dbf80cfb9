import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type SlotReserveContext } from '@temporalio/worker';
import { AgentSlotPool, WorkerDraining } from '../../src/workers/agent-slot-pool';
import { agentProcessEnded, agentSlotInterceptor, attemptArrivedAt } from '../../src/workers/agent-slot-interceptor';
import type { RunAgentInput, RunAgentOutput } from '../../workflows/definitions';
import { waitFor, within } from '../support/wait-for';

const SHARED = 'agents';
const OWN = 'agents/worker-1';
const SHARED_POLL = { slotType: 'activity', taskQueue: SHARED } as SlotReserveContext;
const TASK = '7d3c9a56-8a51-4a3e-9a59-2f3c0e0b6a11';
const OTHER_TASK = '5e2b8f0c-1d4a-4c3b-9e7f-8a6d5c4b3a29';
const FAILED_TASK = '0b0f6a35-64d1-4f7e-8f5e-6f1f3c2f4b22';

/** An activity environment, of `taskQueue`, whose activities go through the slot interceptor of `pool`. */
function environment(pool: AgentSlotPool, activityType: string, taskQueue = OWN) {
  const env = new MockActivityEnvironment(
    { activityType, taskQueue },
    { interceptors: [agentSlotInterceptor(pool, 20)], logger: new DefaultLogger('ERROR') },
  );
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  return { env, heartbeats };
}

describe('agent slot interceptor', () => {
  it('starts an agent attempt once it has a slot, heartbeating while it waits, and frees the slot after', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const release = await pool.take(SHARED, undefined, new AbortController().signal);
    const { env, heartbeats } = environment(pool, 'runAgent');
    let started = false;
    let arrivedAt: number | undefined;
    const beforeLine = performance.now();
    const run = env.run(async () => {
      started = true;
      arrivedAt = attemptArrivedAt(Context.current());
      return 'ran';
    });
    await waitFor('heartbeats while in line', () => heartbeats.length >= 2);
    assert.equal(started, false, 'the attempt waits for the slot');
    assert.deepEqual(heartbeats[0], { waitingForSlot: true });
    const released = performance.now();
    release();
    assert.equal(await run, 'ran');
    // Its start-to-close timeout ran while it waited: the attempt knows when it arrived, not when it started.
    assert.ok(
      arrivedAt !== undefined && arrivedAt >= beforeLine && arrivedAt < released,
      `arrived at ${arrivedAt}, in line from ${beforeLine} to ${released}`,
    );
    const count = heartbeats.length;
    await pool.take(SHARED, undefined, AbortSignal.timeout(1000));
    assert.equal(heartbeats.length, count, 'no heartbeats once it has the slot');
  });

  it('ends an attempt cancelled in line as cancelled, without ever starting it', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const release = await pool.take(SHARED, undefined, new AbortController().signal);
    const { env, heartbeats } = environment(pool, 'runAgent');
    let started = false;
    const run = env.run(async () => {
      started = true;
    });
    await waitFor('the attempt to be in line', () => heartbeats.length >= 1);
    env.cancel();
    await assert.rejects(run, CancelledFailure);
    release();
    await pool.take(OWN, undefined, AbortSignal.timeout(1000));
    assert.equal(started, false);
  });

  it('starts no agent in line once its worker drains: the attempt is answered held back, the running agent goes on', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const long = environment(pool, 'runAgent');
    let endLong: (() => void) | undefined;
    const longRun = long.env.run(() => new Promise<string>((resolve) => (endLong = () => resolve('long ran'))));
    await waitFor('the long agent to run', () => endLong !== undefined);
    const next = environment(pool, 'runAgent');
    let spawned = false;
    const nextRun = next.env.run(
      async (_attempt: Partial<RunAgentInput>) => {
        spawned = true;
      },
      { taskId: TASK, attempt: 1, agent: 'claude', gated: true },
    );
    await waitFor('the next attempt to be in line', () => next.heartbeats.length >= 1);

    pool.drain();
    endLong?.();
    assert.equal(await longRun, 'long ran');
    // Held back, as by the cluster-wide gate: the workflow asks again at once, of another worker, and
    // the task loses none of its attempts.
    const answer = (await nextRun) as unknown as RunAgentOutput;
    assert.equal(answer.waiting?.kind, 'worker_draining');
    assert.equal(answer.waiting?.agent, 'claude');
    assert.equal(spawned, false, 'the freed slot started no agent');
    await assert.rejects(pool.take(OWN, undefined, new AbortController().signal), WorkerDraining, 'and later ones');
  });

  it('hands a shared-queue attempt that finds no free slot back to the queue at once, and starts no agent', async () => {
    const pool = new AgentSlotPool(1, SHARED, true);
    // An own-queue agent took the last slot while the shared queue's poll was under way.
    const own = await pool.take(OWN, undefined, new AbortController().signal);
    const { env, heartbeats } = environment(pool, 'runAgent', SHARED);
    let spawned = false;
    const answer = (await env.run(
      async (_attempt: Partial<RunAgentInput>) => {
        spawned = true;
      },
      { taskId: TASK, attempt: 1, agent: 'claude', gated: true },
    )) as unknown as RunAgentOutput;
    // Held back and due at once: the workflow asks again, through the queue, costing no attempt, instead
    // of spending in line here a start-to-close timeout that has no room for it.
    assert.equal(answer.waiting?.kind, 'worker_busy');
    assert.equal(answer.waiting?.agent, 'claude');
    assert.equal(spawned, false);
    assert.deepEqual(heartbeats, [], 'it did not wait');
    own();
    // With a slot free, a shared-queue attempt runs.
    const next = environment(pool, 'runAgent', SHARED);
    assert.equal(
      await next.env.run(async (_attempt: Partial<RunAgentInput>) => 'ran', {
        taskId: OTHER_TASK,
        attempt: 1,
        agent: 'claude',
        gated: true,
      }),
      'ran',
    );
  });

  it('lets a shared-queue attempt wait in line where the pool hands nothing back (the resource-based tuner)', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const own = await pool.take(OWN, undefined, new AbortController().signal);
    const { env, heartbeats } = environment(pool, 'runAgent', SHARED);
    const run = env.run(async (_attempt: Partial<RunAgentInput>) => 'ran', {
      taskId: TASK,
      attempt: 1,
      agent: 'claude',
      gated: true,
    });
    await waitFor('the attempt to wait in line', () => heartbeats.length >= 1);
    own();
    assert.equal(await run, 'ran');
  });

  it('lets other activities (the git operations) through while every slot is taken', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    await pool.take(SHARED, undefined, new AbortController().signal);
    const { env } = environment(pool, 'commitWorktree');
    assert.equal(await env.run(async () => 'committed'), 'committed');
  });

  it('keeps a slot for a task whose worktree it prepared (none when the prepare fails), again when a breaker held it back', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const prepare = (taskId: string, fails: boolean) =>
      new MockActivityEnvironment(
        { activityType: 'prepareWorktree', taskQueue: SHARED },
        { interceptors: [agentSlotInterceptor(pool, 20)], logger: new DefaultLogger('ERROR') },
      ).run(
        async (_input: { taskId: string }) => {
          if (fails) throw new Error('not a repository');
          return 'prepared';
        },
        { taskId },
      );
    await assert.rejects(prepare(FAILED_TASK, true), /not a repository/);
    assert.ok(pool.sharedQueueSupplier.tryReserveSlot(SHARED_POLL), 'nothing kept');
    pool.sharedQueueSupplier.releaseSlot({ permit: {} });
    assert.equal(await prepare(TASK, false), 'prepared');
    assert.equal(
      pool.sharedQueueSupplier.tryReserveSlot(SHARED_POLL),
      null,
      "the prepared task's slot is kept from the shared queue",
    );
    const other = environment(pool, 'runAgent');
    const otherRun = other.env.run(async (_input: { taskId: string }) => 'other ran', { taskId: OTHER_TASK });
    await waitFor("another task's attempt in line", () => other.heartbeats.length >= 1);

    const heldBack = { exitCode: 0, outputBytes: 0, outputTail: '', waiting: { kind: 'breaker_open' } };
    const first = environment(pool, 'runAgent');
    assert.deepEqual(
      await first.env.run(async (_input: Partial<RunAgentInput>) => heldBack, { taskId: TASK, moreInChain: true }),
      heldBack,
    );
    assert.deepEqual(first.heartbeats, [], 'its first attempt took the kept slot, ahead of the line');
    const next = environment(pool, 'runAgent');
    assert.equal(await next.env.run(async (_input: { taskId: string }) => 'ran', { taskId: TASK }), 'ran');
    assert.deepEqual(next.heartbeats, [], "held back by an open breaker, it kept the slot for the chain's next agent");
    assert.equal(await otherRun, 'other ran', 'then the slot is free for the line');
  });

  it("gives the slot back when the chain's last agent is held back by an open breaker: the task waits, others run", async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const heldBack = { exitCode: 0, outputBytes: 0, outputTail: '', waiting: { kind: 'breaker_open' } };
    let answer: (() => void) | undefined;
    const last = environment(pool, 'runAgent');
    const lastRun = last.env.run(
      async (_input: Partial<RunAgentInput>) => {
        await new Promise<void>((resolve) => (answer = resolve));
        return heldBack;
      },
      { taskId: TASK, attempt: 1, agent: 'claude', gated: true, moreInChain: false },
    );
    await waitFor('the last agent to ask for admission', () => answer !== undefined);
    const other = environment(pool, 'runAgent');
    const otherRun = other.env.run(async (_input: { taskId: string }) => 'other ran', { taskId: OTHER_TASK });
    await waitFor("another task's attempt in line", () => other.heartbeats.length >= 1);
    answer?.();
    assert.deepEqual(await lastRun, heldBack);
    // Kept, the slot would go to the line only after RESERVATION_MS (60 s).
    assert.equal(await within('the attempt in line', 30_000, otherRun), 'other ran');
    assert.ok(pool.sharedQueueSupplier.tryReserveSlot(SHARED_POLL), 'no slot is kept from the shared queue');
  });

  it('hands the slot on when the agent process has ended, before the attempt returns', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const { env } = environment(pool, 'runAgent');
    let next: Promise<unknown> | undefined;
    const run = env.run(async () => {
      agentProcessEnded(Context.current());
      // The records of the attempt are still being written: the next agent has the slot already.
      next = pool.take(OWN, undefined, AbortSignal.timeout(1000));
      await next;
      return 'recorded';
    });
    assert.equal(await run, 'recorded');
    assert.ok(next);
  });
});
