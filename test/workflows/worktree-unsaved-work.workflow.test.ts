import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { AgentActivities } from '../../activities';
import { git } from '../support/git';
import { runAgentWorker, runWorkflowWorker } from '../support/in-process-workers';
import { openRepoTestBed, type RepoTestBed } from '../support/repo-test-bed';
import { startAgentTask } from '../support/start-agent-task';
import { taskRow, terminalEvents } from '../support/task-rows';
import { waitFor, within } from '../support/wait-for';

/**
 * An agent succeeds, its worker cannot commit the work on the task's branch (`work_unsaved`), answers,
 * and is lost before the workflow's commit there: that commit waits a minute for the worker's own
 * queue, then the worktree is made again on another worker. The success stands only if that worker
 * carried the work over.
 */
describe('a success whose work its lost worker could not save', { timeout: 180_000 }, () => {
  let bed: RepoTestBed;

  before(async () => {
    bed = await openRepoTestBed('unsaved');
    bed.workers.push(await runWorkflowWorker(bed.h, bed.queues.workflowQueue));
  });
  after(() => bed?.close());

  it('stands when the next worker carries the work over, and fails the task when it cannot', async () => {
    const { h, dir, repo, queues, workers } = bed;
    const rootA = join(dir, 'worktrees-a');
    // Both agents answer once both have run, and their worker then stops: neither commit is taken there.
    let ran = 0;
    let bothRan: () => void = () => undefined;
    const barrier = new Promise<void>((resolve) => (bothRan = resolve));
    let stoppedA: Promise<void> | undefined;
    const answerThenStop = (real: AgentActivities): AgentActivities => ({
      ...real,
      runAgent: async (input) => {
        const output = await real.runAgent(input);
        if (++ran === 2) bothRan();
        await barrier;
        stoppedA ??= workerA.stop();
        return output;
      },
    });
    const workerA = await runAgentWorker(h, queues.agentQueue, 'unsaved-a', {
      worktreeRoot: rootA,
      saveWork: async () => {
        throw new Error('fatal: Unable to create index.lock: File exists');
      },
      wrapAgents: answerThenStop,
    });
    const start = () => startAgentTask(h, queues, '@pidfile out.txt', { repo: { path: repo }, backoffSeconds: 0.1 });
    const [carried, lost] = await Promise.all([start(), start()]);
    await within('both agents to answer', 60_000, barrier);
    await waitFor('worker a to begin stopping', () => stoppedA !== undefined);
    await within('worker a to stop', 30_000, stoppedA as Promise<void>);
    const carriedPid = readFileSync(join(rootA, carried.taskId, 'out.txt'), 'utf8');
    // The second task's worktree is on a disk the next worker does not see.
    rmSync(join(rootA, lost.taskId), { recursive: true, force: true });
    workers.push(await runAgentWorker(h, queues.agentQueue, 'unsaved-b', { worktreeRoot: join(dir, 'worktrees-b') }));

    const result = await within('the carried task to end', 120_000, carried.handle.result());
    assert.equal(result.status, 'succeeded');
    assert.deepEqual(result.commit?.changedFiles, ['out.txt']);
    assert.equal(git(repo, 'show', `atelier/${carried.taskId}:out.txt`), carriedPid, 'the agent’s own work');

    const failure = await within('the other task to end', 120_000, lost.handle.result()).then(
      () => assert.fail('a success without its work'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError, String(failure));
    const row = await taskRow(h.pool, lost.taskId);
    assert.equal(row.status, 'failed');
    assert.equal(row.error_class, 'crash');
    assert.match(
      row.error_message ?? '',
      /its work could not be saved on atelier\/.* and the worker holding it was lost/,
    );
    assert.deepEqual(
      (await terminalEvents(h.pool, lost.taskId)).map((e) => e.kind),
      ['failed'],
      'one terminal record, and no success',
    );
    assert.ok(!existsSync(join(dir, 'worktrees-b', lost.taskId)), 'the worktree made again elsewhere is removed');
  });
});
