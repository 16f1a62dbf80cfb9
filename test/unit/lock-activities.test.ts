import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { DefaultLogger } from '@temporalio/worker';
import { createLockActivities } from '../../activities/locks/lock.activities';

/** A run's status name and, once it closed, how many seconds ago. */
type Described = { status: string; closedSecondsAgo?: number };

/** A client that describes each workflow as `answers` says, or throws the error it holds. */
const describing = (answers: Record<string, Described | Error>): Client =>
  ({
    workflow: {
      getHandle: (workflowId: string) => ({
        describe: async () => {
          const answer = answers[workflowId];
          if (answer instanceof Error) throw answer;
          const closeTime =
            answer?.closedSecondsAgo === undefined ? undefined : new Date(Date.now() - answer.closedSecondsAgo * 1000);
          return { status: { name: answer?.status }, closeTime };
        },
      }),
    },
  }) as unknown as Client;

describe('endedWorkflows', () => {
  it('counts a run Temporal will not describe now as running, instead of failing the whole check', async () => {
    const activities = createLockActivities({
      client: describing({
        done: { status: 'COMPLETED', closedSecondsAgo: 120 },
        running: { status: 'RUNNING' },
        gone: new WorkflowNotFoundError('not found', 'gone', 'r'),
        refused: new Error('14 UNAVAILABLE: connection refused'),
      }),
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
      }),
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
});
