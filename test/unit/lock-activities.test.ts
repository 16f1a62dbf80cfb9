import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { DefaultLogger } from '@temporalio/worker';
import { createLockActivities } from '../../activities/locks/lock.activities';

/** A client that describes each workflow as `answers` says: a status name, or an error to throw. */
const describing = (answers: Record<string, string | Error>): Client =>
  ({
    workflow: {
      getHandle: (workflowId: string) => ({
        describe: async () => {
          const answer = answers[workflowId];
          if (answer instanceof Error) throw answer;
          return { status: { name: answer } };
        },
      }),
    },
  }) as unknown as Client;

describe('endedWorkflows', () => {
  it('counts a run Temporal will not describe now as running, instead of failing the whole check', async () => {
    const activities = createLockActivities({
      client: describing({
        done: 'COMPLETED',
        running: 'RUNNING',
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
});
