import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { History } from '@temporalio/common/lib/proto-utils';
import { downloadHistory, type HistoryClient } from '../../src/cli/commands/replay-download';

/**
 * A workflow whose run `run-1` is the latest until it is described, when `run-2` starts (a retry, a
 * reset): the race of a download with a new run, made certain.
 */
function newRunOnDescribe(): HistoryClient {
  let latest = 'run-1';
  const historyOf = (runId: string): History => ({
    events: [{ workflowExecutionStartedEventAttributes: { originalExecutionRunId: runId } }],
  });
  return {
    getHandle: (_workflowId, runId) => ({
      describe: async () => {
        const answer = { runId: latest };
        latest = 'run-2';
        return answer;
      },
      // Read when the answer comes: a later tick than the call.
      fetchHistory: async () => {
        await new Promise((r) => setImmediate(r));
        return historyOf(runId ?? latest);
      },
    }),
  };
}

const runOf = (history: History): string | null | undefined =>
  history.events?.[0]?.workflowExecutionStartedEventAttributes?.originalExecutionRunId;

describe('downloading a workflow history for replay', () => {
  it('names the run whose history it downloaded, though a new run starts meanwhile', async () => {
    const { runId, history } = await downloadHistory(newRunOnDescribe(), 'task-x');
    assert.equal(runId, 'run-1');
    assert.equal(runOf(history), 'run-1', 'the history of the run it names');
  });

  it('downloads the run it is given, without asking for the latest', async () => {
    const { runId, history } = await downloadHistory(newRunOnDescribe(), 'task-x', 'run-0');
    assert.deepEqual([runId, runOf(history)], ['run-0', 'run-0']);
  });
});
