import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask } from '../../workflows/definitions';
import { startAgentWorkerProcess, type AgentWorkerProcess } from '../support/agent-worker-process';
import { git, initRepo } from '../support/git';
import { openHarness, runWorkflowWorker, type Harness, type RunningWorker } from '../support/in-process-workers';
import { insertTask } from '../support/task-rows';
import { uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

/**
 * Salvage: the agent worker holding a task's worktree is killed with SIGKILL mid-attempt. The task moves
 * to the other agent worker (its own worktree root on the same disk), which takes over the lost
 * worktree's uncommitted work, and the next attempt continues from it within the same run.
 */
describe('worktree salvage after a killed agent worker', { timeout: 120_000 }, () => {
  let h: Harness;
  let dir: string;
  let repo: string;
  let workflowWorker: RunningWorker;
  const agentWorkers: AgentWorkerProcess[] = [];
  const queues = { workflowQueue: uniqueQueue('wf-salvage'), agentQueue: uniqueQueue('agents-salvage') };

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-salvage-'));
    repo = join(dir, 'repo');
    initRepo(repo);
    workflowWorker = await runWorkflowWorker(h, queues.workflowQueue);
    for (const name of ['a', 'b']) {
      agentWorkers.push(
        await startAgentWorkerProcess(h.client, queues.agentQueue, {
          ATELIER_WORKTREE_ROOT: join(dir, `worktrees-${name}`),
          ATELIER_AGENT_SLOTS: '2',
        }),
      );
    }
  });
  after(async () => {
    await Promise.all(agentWorkers.map((w) => w.stop()));
    await workflowWorker.stop();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves the task to another worker from the last state, in the same run, and loses no work', async () => {
    const marks = join(dir, 'marks');
    // The first run writes first.txt and hangs (until its worker is killed); the second writes second.txt.
    const prompt = [`@first-run ${marks}-1 @pidfile first.txt`, `@first-run ${marks}-2 @hang`, '@pidfile second.txt'];
    const taskId = await insertTask(h.pool, { prompt: prompt.join('\n'), maxAttempts: 3 });
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [
        {
          taskId,
          agent: 'stand-in',
          timeoutSeconds: 60,
          maxAttempts: 3,
          priority: 3,
          agentTaskQueue: queues.agentQueue,
          backoffSeconds: 0.1,
          repo: { path: repo },
        },
      ],
    });
    const firstWorker = await waitFor('attempt 1 to start with its file written', async () => {
      const res = await h.pool.query<{ worker: string }>(
        'SELECT worker FROM attempts WHERE task_id = $1 AND number = 1',
        [taskId],
      );
      return existsSync(`${marks}-2`) ? res.rows[0]?.worker : undefined;
    });
    const doomed = agentWorkers.find((w) => w.identity === firstWorker);
    assert.ok(doomed, `attempt 1 runs on one of the two workers (${firstWorker})`);
    const doomedRoot = join(dir, `worktrees-${agentWorkers.indexOf(doomed) === 0 ? 'a' : 'b'}`);
    assert.ok(existsSync(join(doomedRoot, taskId, 'first.txt')), 'the work is uncommitted in the doomed worktree');
    doomed.process.kill('SIGKILL');

    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.attempts, 2);
    assert.deepEqual(result.commit?.changedFiles, ['first.txt', 'second.txt'], 'attempt 1’s work was not lost');
    const attempts = await h.pool.query<{ number: number; worker: string; failure_class: string }>(
      'SELECT number, worker, failure_class FROM attempts WHERE task_id = $1 ORDER BY number',
      [taskId],
    );
    assert.equal(attempts.rows[0]?.failure_class, 'crash');
    assert.equal(attempts.rows[1]?.failure_class, 'succeeded');
    assert.notEqual(attempts.rows[1]?.worker, firstWorker, 'attempt 2 ran on the other worker');
    const runs = await h.pool.query<{ n: string }>('SELECT count(*) AS n FROM task_runs WHERE task_id = $1', [taskId]);
    assert.equal(runs.rows[0]?.n, '1', 'within the same run');

    const subjects = git(repo, 'log', '--format=%s', `atelier/${taskId}`);
    assert.match(subjects, /salvaged from a lost worker's worktree/);
    const firstPid = readFileSync(`${marks}-1`, 'utf8');
    assert.equal(git(repo, 'show', `atelier/${taskId}:first.txt`), firstPid, 'first.txt is attempt 1’s own');
    assert.ok(!existsSync(join(doomedRoot, taskId)), 'the lost worktree is gone');
    await waitFor('the worktree to be removed', () => !git(repo, 'worktree', 'list').includes(taskId));
    assert.equal(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
    assert.equal(git(repo, 'status', '--porcelain'), '');
  });
});
