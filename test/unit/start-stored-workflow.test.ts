import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InternalServerErrorException, ServiceUnavailableException } from '@nestjs/common';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowStartOptions,
} from '@temporalio/client';
import {
  startOrFindStoredWorkflow,
  startStoredWorkflow,
  type StoredSubmission,
} from '../../src/api/http/start-stored-workflow';

/** What describing the workflow finds: it exists (`run-existing`), it does not, or Temporal does not answer. */
type Found = 'exists' | 'not-found' | 'unreachable';

/** A Temporal client whose start does what `start` does, and whose workflow describes as `found` says. */
function fakeClient(
  start: (options: WorkflowStartOptions) => Promise<{ firstExecutionRunId: string }>,
  found: Found = 'exists',
): Client {
  const describe = async (): Promise<{ runId: string }> => {
    if (found === 'exists') return { runId: 'run-existing' };
    if (found === 'not-found') throw new WorkflowNotFoundError('not found', 'task-1', undefined);
    throw new Error('deadline exceeded');
  };
  return {
    workflow: {
      start: (_type: string, options: WorkflowStartOptions) => start(options),
      getHandle: () => ({ describe }),
    },
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
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

const failingClient = (message: string, found: Found = 'not-found'): Client =>
  fakeClient(async () => {
    throw new Error(message);
  }, found);

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
    assert.deepEqual(
      await startOrFindStoredWorkflow(
        client,
        submission(async () => undefined),
      ),
      {
        runId: 'run-new',
        found: false,
      },
    );
  });

  it('answers the existing run when Temporal refuses the start, and keeps the rows', async () => {
    const client = fakeClient(async () => {
      throw new WorkflowExecutionAlreadyStartedError('already started', 'task-1', 'agentTaskWorkflow');
    });
    const rows = trackedForget();
    assert.equal(await startStoredWorkflow(client, submission(rows.forget)), 'run-existing');
    assert.equal(rows.called(), false);
    assert.deepEqual(await startOrFindStoredWorkflow(client, submission(rows.forget)), {
      runId: 'run-existing',
      found: true,
    });
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

  it('answers the run of a start that reached Temporal though its answer did not, and keeps the rows', async () => {
    const rows = trackedForget();
    assert.equal(
      await startStoredWorkflow(failingClient('deadline exceeded', 'exists'), submission(rows.forget)),
      'run-existing',
    );
    assert.equal(rows.called(), false, 'the running workflow keeps its rows');
  });

  it('keeps the rows when Temporal cannot say whether the start got through, and says not to submit again', async () => {
    const rows = trackedForget();
    await assert.rejects(
      startStoredWorkflow(failingClient('deadline exceeded', 'unreachable'), submission(rows.forget)),
      (err) => {
        assert.ok(err instanceof InternalServerErrorException);
        assert.match(err.message, /task 1 is stored and its workflow may have started.*do not submit it again/);
        // Unlike an unexpected 500's, its body has `error` (docs/api.md#errors).
        assert.deepEqual(err.getResponse(), {
          statusCode: 500,
          error: 'Internal Server Error',
          message: err.message,
        });
        return true;
      },
    );
    assert.equal(rows.called(), false, 'the sweeper starts it, or finds it started');
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
