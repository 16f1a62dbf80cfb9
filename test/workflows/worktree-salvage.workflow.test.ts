import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentTaskInput } from '../../workflows/definitions';
import { startAgentWorkerProcess, type AgentWorkerProcess } from '../support/agent-worker-process';
import { git, initRepo } from '../support/git';
import { startAgentTask } from '../support/start-agent-task';
import { openHarness, runWorkflowWorker, type Harness, type RunningWorker } from '../support/in-process-workers';
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

  const startTask = (prompt: string[], extra: Partial<AgentTaskInput>) =>
    startAgentTask(h, queues, prompt.join('\n'), {
      maxAttempts: 3,
      backoffSeconds: 0.1,
      repo: { path: repo },
      ...extra,
    });

  /** When a task's agent ran, from its attempt rows: the first start and the last end. */
  const span = async (taskId: string) => {
    const res = await h.pool.query<{ start: Date; end: Date }>(
      'SELECT min(started_at) AS start, max(finished_at) AS end FROM attempts WHERE task_id = $1',
      [taskId],
    );
    const row = res.rows[0];
    assert.ok(row?.start && row.end, `task ${taskId} ran`);
    return { start: row.start.getTime(), end: row.end.getTime() };
  };

  /** Waits until attempt 1 of the task runs past `mark`, then kills its worker with SIGKILL; returns the worker's identity. */
  const killWorkerOfAttempt1 = async (taskId: string, mark: string) => {
    const worker = await waitFor('attempt 1 to start and reach its hang', async () => {
      const res = await h.pool.query<{ worker: string }>(
        'SELECT worker FROM attempts WHERE task_id = $1 AND number = 1',
        [taskId],
      );
      return existsSync(mark) ? res.rows[0]?.worker : undefined;
    });
    const doomed = agentWorkers.find((w) => w.identity === worker && w.process.exitCode === null);
    assert.ok(doomed, `attempt 1 runs on a live worker (${worker})`);
    return { worker, doomed };
  };

  it('moves the task to another worker from the last state, in the same run, and loses no work', async () => {
    const marks = join(dir, 'marks');
    // The first run writes first.txt and hangs (until its worker is killed); the second writes second.txt.
    const { taskId, handle } = await startTask(
      [`@first-run ${marks}-1 @pidfile first.txt`, `@first-run ${marks}-2 @hang`, '@pidfile second.txt'],
      { locks: { repo, globs: ['**'] } },
    );
    const { worker: firstWorker, doomed } = await killWorkerOfAttempt1(taskId, `${marks}-2`);
    // Waits for the task's locks, which stay held while the task moves.
    const waiter = await startTask(['@print after'], { locks: { repo, globs: ['first.txt'] }, repo: undefined });
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

    await waiter.handle.result();
    assert.ok((await span(waiter.taskId)).start >= (await span(taskId)).end, 'the locks were held through the move');
  });

  it('releases the locks of a task that fails after its worker was killed', async () => {
    agentWorkers.push(
      await startAgentWorkerProcess(h.client, queues.agentQueue, {
        ATELIER_WORKTREE_ROOT: join(dir, 'worktrees-c'),
        ATELIER_AGENT_SLOTS: '2',
      }),
    );
    const mark = join(dir, 'hangs');
    const { taskId, handle } = await startTask([`@pidfile ${mark}`, '@hang'], {
      locks: { repo, globs: ['src/**'] },
      maxAttempts: 1,
    });
    const { doomed } = await killWorkerOfAttempt1(taskId, mark);
    const waiter = await startTask(['@print after'], { locks: { repo, globs: ['src/a.ts'] }, repo: undefined });
    doomed.process.kill('SIGKILL');
    await assert.rejects(handle.result());
    const row = await h.pool.query<{ status: string; error_class: string }>(
      'SELECT status, error_class FROM tasks WHERE id = $1',
      [taskId],
    );
    assert.deepEqual(row.rows[0], { status: 'failed', error_class: 'crash' });
    await waiter.handle.result();
    assert.ok(
      (await span(waiter.taskId)).start >= (await span(taskId)).end,
      'the waiter ran once the locks were freed',
    );
  });
});
