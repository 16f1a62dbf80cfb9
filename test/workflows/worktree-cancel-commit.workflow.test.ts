import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { WorktreeActivities } from '../../activities';
import { runAgentWorker, runWorkflowWorker } from '../support/in-process-workers';
import { openRepoTestBed, type RepoTestBed } from '../support/repo-test-bed';
import { startAgentTask } from '../support/start-agent-task';
import { waitFor } from '../support/wait-for';

/**
 * A cancel that arrives while a failed attempt's work is being committed waits for that commit: the
 * worktree's last commit, which the cancel leads to, must not run beside it in the same worktree.
 */
describe('a cancel during the commit of a failed attempt', { timeout: 90_000 }, () => {
  let bed: RepoTestBed;
  /** What the worktree activities did, in order. */
  const steps: string[] = [];
  let releaseFailedCommit = (): void => undefined;
  const failedCommitHeld = new Promise<void>((resolve) => (releaseFailedCommit = resolve));

  before(async () => {
    bed = await openRepoTestBed('wt-cancel');
    const { h, dir, queues } = bed;
    const wrapWorktrees = (real: WorktreeActivities): WorktreeActivities => ({
      ...real,
      commitWorktree: async (input) => {
        const failedWork = input.note?.startsWith('work of failed attempt') === true;
        steps.push(failedWork ? 'failed-work commit begins' : 'last commit begins');
        if (failedWork) await failedCommitHeld;
        const commit = await real.commitWorktree(input);
        steps.push(failedWork ? 'failed-work commit ends' : 'last commit ends');
        return commit;
      },
    });
    bed.workers.push(
      await runWorkflowWorker(h, queues.workflowQueue),
      await runAgentWorker(h, queues.agentQueue, 'agent-worker', {
        worktreeRoot: join(dir, 'worktrees'),
        wrapWorktrees,
      }),
    );
  });
  after(async () => {
    releaseFailedCommit();
    await bed?.close();
  });

  it('acts on the cancel once that commit is done, then commits the rest and removes the worktree', async () => {
    const { h, queues, repo } = bed;
    const { handle } = await startAgentTask(h, queues, '@pidfile out.txt\n@exit 3', {
      maxAttempts: 3,
      backoffSeconds: 0.1,
      repo: { path: repo },
    });
    await waitFor('the failed attempt’s commit to begin', () => steps.includes('failed-work commit begins'));
    await handle.cancel();
    // The cancel has reached the workflow, and a workflow task after it has completed.
    await waitFor('the workflow to take the cancel in', async () => {
      const events = (await handle.fetchHistory()).events ?? [];
      const requested = events.findIndex((e) => e.workflowExecutionCancelRequestedEventAttributes);
      return requested >= 0 && events.slice(requested).some((e) => e.workflowTaskCompletedEventAttributes);
    });
    const scheduled = async (): Promise<string[]> =>
      ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
        const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
        return type ? [type] : [];
      });
    assert.equal(
      (await scheduled()).filter((t) => t === 'commitWorktree').length,
      1,
      'nothing more is committed while the failed attempt’s commit runs',
    );
    assert.deepEqual(steps, ['failed-work commit begins']);
    releaseFailedCommit();
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError);
    assert.deepEqual(steps.slice(0, 2), ['failed-work commit begins', 'failed-work commit ends']);
    assert.ok((await scheduled()).includes('removeWorktree'), 'the worktree is removed in the end');
  });
});
