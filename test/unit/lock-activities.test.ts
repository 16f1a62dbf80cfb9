import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { DefaultLogger } from '@temporalio/worker';
import { createLockActivities } from '../../activities/locks/lock.activities';

/** A run's status name and, once it closed, how many seconds ago; `afterMs`: how long describing it takes. */
type Described = { status: string; closedSecondsAgo?: number; afterMs?: number };

/** A describe that never answers. */
const HANGS = 'hangs';

/**
 * A client that describes each workflow as `answers` says, throws the error it holds, or never answers;
 * `described` counts the describes asked for, `deadlines` holds the deadline each was asked within.
 */
const describing = (answers: Record<string, Described | Error | typeof HANGS>) => {
  let described = 0;
  const deadlines: number[] = [];
  let deadline: number | undefined;
  const client = {
    withDeadline: async <T>(at: number, fn: () => Promise<T>): Promise<T> => {
      deadline = at;
      return fn();
    },
    workflow: {
      getHandle: (workflowId: string) => ({
        describe: async () => {
          described += 1;
          if (deadline !== undefined) deadlines.push(deadline);
          const answer = answers[workflowId];
          if (answer === HANGS) return new Promise<never>(() => undefined);
          if (answer instanceof Error) throw answer;
          if (answer?.afterMs !== undefined) await new Promise((resolve) => setTimeout(resolve, answer.afterMs));
          const closeTime =
            answer?.closedSecondsAgo === undefined ? undefined : new Date(Date.now() - answer.closedSecondsAgo * 1000);
          return { status: { name: answer?.status }, closeTime };
        },
      }),
    },
  } as unknown as Client;
  return { client, described: () => described, deadlines };
};

describe('endedWorkflows', () => {
  it('counts a run Temporal will not describe now as running, instead of failing the whole check', async () => {
    const activities = createLockActivities({
      client: describing({
        done: { status: 'COMPLETED', closedSecondsAgo: 120 },
        running: { status: 'RUNNING' },
        gone: new WorkflowNotFoundError('not found', 'gone', 'r'),
        refused: new Error('14 UNAVAILABLE: connection refused'),
      }).client,
    });
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const ended = await env.run(activities.endedWorkflows, {
      runs: ['done', 'running', 'gone', 'refused'].map((workflowId) => ({ workflowId, runId: 'r' })),
    });
    assert.deepEqual(ended, ['done/r', 'gone/r']);
  });

  it('counts a paused run, or one of a status it does not know, as running, and an ended one only after the grace', async () => {
    const activities = createLockActivities({
      endedGraceSeconds: 60,
      client: describing({
        paused: { status: 'PAUSED' },
        unknown: { status: 'UNKNOWN' },
        justTerminated: { status: 'TERMINATED', closedSecondsAgo: 5 },
        terminatedLongAgo: { status: 'TERMINATED', closedSecondsAgo: 61 },
        timedOut: { status: 'TIMED_OUT', closedSecondsAgo: 300 },
      }).client,
    });
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const ended = await env.run(activities.endedWorkflows, {
      runs: ['paused', 'unknown', 'justTerminated', 'terminatedLongAgo', 'timedOut'].map((workflowId) => ({
        workflowId,
        runId: 'r',
      })),
    });
    assert.deepEqual(ended, ['terminatedLongAgo/r', 'timedOut/r']);
  });

  // Without a deadline one run Temporal never answers for held the whole check, past its activity's
  // time limit, and the manager granted nothing while the check was retried.
  it('gives each describe a deadline, past which its run counts as running', { timeout: 10_000 }, async () => {
    const temporal = describing({
      done: { status: 'COMPLETED', closedSecondsAgo: 120 },
      hung: HANGS,
      gone: new WorkflowNotFoundError('not found', 'gone', 'r'),
    });
    const activities = createLockActivities({ client: temporal.client, describeDeadlineMs: 300 });
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const began = Date.now();
    const ended = await env.run(activities.endedWorkflows, {
      runs: ['done', 'hung', 'gone'].map((workflowId) => ({ workflowId, runId: 'r' })),
    });
    const took = Date.now() - began;
    assert.deepEqual(ended, ['done/r', 'gone/r']);
    assert.ok(took >= 300 && took < 2_000, `answered after ${took} ms`);
    assert.equal(temporal.deadlines.length, 3, 'each describe was asked within a deadline');
    for (const deadline of temporal.deadlines) {
      assert.ok(deadline - began >= 300 && deadline - began < 400, `asked within ${deadline - began} ms`);
    }
  });

  it('starts no batch once its time is spent, the runs not asked about counting as running until a later check asks', async () => {
    const runs = Array.from({ length: 60 }, (_, i) => ({ workflowId: `w${i}`, runId: 'r' }));
    const temporal = describing(
      Object.fromEntries(runs.map((r) => [r.workflowId, { status: 'COMPLETED', closedSecondsAgo: 120, afterMs: 100 }])),
    );
    const activities = createLockActivities({ client: temporal.client, checkBudgetMs: 150 });
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const everEnded = new Set<string>();
    for (let check = 0; check < 12; check++) {
      const before = temporal.described();
      const ended: string[] = await env.run(activities.endedWorkflows, { runs });
      // Two batches of 20 began within the 150 ms (at 0 and 100 ms), the third not (at 200 ms).
      assert.equal(temporal.described() - before, 40);
      assert.equal(ended.length, 40);
      for (const run of ended) everEnded.add(run);
    }
    // Each check leaves out a batch picked at random: one left out by all 12 has odds of 3 × (1/3)^12.
    assert.equal(everEnded.size, 60, 'every run was asked about by some check');
  });

  it('stops at once when cancelled', { timeout: 10_000 }, async () => {
    const activities = createLockActivities({ client: describing({ hung: HANGS }).client, describeDeadlineMs: 1_000 });
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const began = Date.now();
    const checking = env.run(activities.endedWorkflows, { runs: [{ workflowId: 'hung', runId: 'r' }] });
    setTimeout(() => env.cancel(), 100);
    await assert.rejects(checking, CancelledFailure);
    assert.ok(Date.now() - began < 500, 'it did not wait for the describe');
  });
});
