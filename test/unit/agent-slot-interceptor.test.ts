import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { AgentSlotPool } from '../../src/workers/agent-slot-pool';
import { agentProcessEnded, agentSlotInterceptor } from '../../src/workers/agent-slot-interceptor';
import { waitFor } from '../support/wait-for';

const SHARED = 'agents';
const OWN = 'agents/worker-1';

/** An activity environment whose activities go through the slot interceptor of `pool`. */
function environment(pool: AgentSlotPool, activityType: string) {
  const env = new MockActivityEnvironment(
    { activityType, taskQueue: OWN },
    { interceptors: [agentSlotInterceptor(pool, 20)], logger: new DefaultLogger('ERROR') },
  );
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  return { env, heartbeats };
}

describe('agent slot interceptor', () => {
  it('starts an agent attempt once it has a slot, heartbeating while it waits, and frees the slot after', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const release = await pool.take(SHARED, new AbortController().signal);
    const { env, heartbeats } = environment(pool, 'runAgent');
    let started = false;
    const run = env.run(async () => {
      started = true;
      return 'ran';
    });
    await waitFor('heartbeats while in line', () => heartbeats.length >= 2);
    assert.equal(started, false, 'the attempt waits for the slot');
    assert.deepEqual(heartbeats[0], { waitingForSlot: true });
    release();
    assert.equal(await run, 'ran');
    const count = heartbeats.length;
    await pool.take(SHARED, AbortSignal.timeout(1000));
    assert.equal(heartbeats.length, count, 'no heartbeats once it has the slot');
  });

  it('ends an attempt cancelled in line as cancelled, without ever starting it', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const release = await pool.take(SHARED, new AbortController().signal);
    const { env, heartbeats } = environment(pool, 'runAgent');
    let started = false;
    const run = env.run(async () => {
      started = true;
    });
    await waitFor('the attempt to be in line', () => heartbeats.length >= 1);
    env.cancel();
    await assert.rejects(run, CancelledFailure);
    release();
    await pool.take(OWN, AbortSignal.timeout(1000));
    assert.equal(started, false);
  });

  it('lets other activities (the git operations) through while every slot is taken', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    await pool.take(SHARED, new AbortController().signal);
    const { env } = environment(pool, 'commitWorktree');
    assert.equal(await env.run(async () => 'committed'), 'committed');
  });

  it('hands the slot on when the agent process has ended, before the attempt returns', async () => {
    const pool = new AgentSlotPool(1, SHARED);
    const { env } = environment(pool, 'runAgent');
    let next: Promise<unknown> | undefined;
    const run = env.run(async () => {
      agentProcessEnded(Context.current());
      // The records of the attempt are still being written: the next agent has the slot already.
      next = pool.take(OWN, AbortSignal.timeout(1000));
      await next;
      return 'recorded';
    });
    assert.equal(await run, 'recorded');
    assert.ok(next);
  });
});
