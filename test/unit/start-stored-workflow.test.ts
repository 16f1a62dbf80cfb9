import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceUnavailableException } from '@nestjs/common';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowStartOptions } from '@temporalio/client';
import { startStoredWorkflow, type StoredSubmission } from '../../src/api/http/start-stored-workflow';

/** A Temporal client whose start does what `start` does, and whose workflows all describe as `run-existing`. */
function fakeClient(start: (options: WorkflowStartOptions) => Promise<{ firstExecutionRunId: string }>): Client {
  return {
    workflow: {
      start: (_type: string, options: WorkflowStartOptions) => start(options),
      getHandle: () => ({ describe: async () => ({ runId: 'run-existing' }) }),
    },
  } as unknown as Client;
}

/** A `forget` that answers `answer` and tells whether it was called. */
function trackedForget(answer?: string): { forget: () => Promise<string | undefined>; called: () => boolean } {
  let called = false;
  return {
    forget: async () => {
      called = true;
      return answer;
    },
    called: () => called,
  };
}

const failingClient = (message: string): Client =>
  fakeClient(async () => {
    throw new Error(message);
  });

function submission(forget: () => Promise<string | undefined>, retryable = false): StoredSubmission {
  return {
    what: 'task',
    id: '1',
    workflowType: 'agentTaskWorkflow',
    options: { workflowId: 'task-1', taskQueue: 'q' },
    args: async () => [],
    created: true,
    retryable,
    forget,
  };
}

describe('starting a stored submission', () => {
  it('starts it once: Temporal is told to refuse a workflow id that ran before, even if it closed', async () => {
    let sent: WorkflowStartOptions | undefined;
    const client = fakeClient(async (options) => {
      sent = options;
      return { firstExecutionRunId: 'run-new' };
    });
    assert.equal(
      await startStoredWorkflow(
        client,
        submission(async () => undefined),
      ),
      'run-new',
    );
    assert.equal(sent?.workflowIdReusePolicy, 'REJECT_DUPLICATE');
  });

  it('answers the existing run when Temporal refuses the start, and keeps the rows', async () => {
    const client = fakeClient(async () => {
      throw new WorkflowExecutionAlreadyStartedError('already started', 'task-1', 'agentTaskWorkflow');
    });
    const rows = trackedForget();
    assert.equal(await startStoredWorkflow(client, submission(rows.forget)), 'run-existing');
    assert.equal(rows.called(), false);
  });

  it('removes the rows of a failed start without a key, and answers 503', async () => {
    const rows = trackedForget();
    await assert.rejects(startStoredWorkflow(failingClient('connection refused'), submission(rows.forget)), (err) => {
      assert.ok(err instanceof ServiceUnavailableException);
      assert.match(err.message, /could not start the task workflow now/);
      // Temporal's error text, which names its address and internals, goes to the log only.
      assert.doesNotMatch(err.message, /connection refused/);
      return true;
    });
    assert.equal(rows.called(), true);
  });

  it('answers the run of a start that came meanwhile (the sweeper) instead of a 503, when the rows stay', async () => {
    const rows = trackedForget('run-swept');
    assert.equal(await startStoredWorkflow(failingClient('deadline exceeded'), submission(rows.forget)), 'run-swept');
  });

  it('keeps the rows of a failed start with a key, for the retry', async () => {
    const rows = trackedForget();
    await assert.rejects(
      startStoredWorkflow(failingClient('connection refused'), submission(rows.forget, true)),
      ServiceUnavailableException,
    );
    assert.equal(rows.called(), false);
  });

  it('removes the rows of a submission whose input cannot be read, as of a failed start, and starts nothing', async () => {
    let starts = 0;
    const client = fakeClient(async () => {
      starts += 1;
      return { firstExecutionRunId: 'run-new' };
    });
    const rows = trackedForget();
    const unreadable = {
      ...submission(rows.forget),
      args: () => Promise.reject(new Error('Connection terminated unexpectedly')),
    };
    await assert.rejects(startStoredWorkflow(client, unreadable), ServiceUnavailableException);
    assert.equal(starts, 0);
    assert.equal(rows.called(), true, 'nothing is left for the sweeper to start a second time');
  });
});
