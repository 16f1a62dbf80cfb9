import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import type { AgentActivities } from '../../activities';
import type { AgentTaskInput } from '../../workflows/definitions';
import { startAgentWorkerProcess, type AgentWorkerProcess } from '../support/agent-worker-process';
import { git, initRepo } from '../support/git';
import { startAgentTask } from '../support/start-agent-task';
import {
  openHarness,
  runAgentWorker,
  runWorkflowWorker,
  type Harness,
  type RunningWorker,
} from '../support/in-process-workers';
import { attemptRows, eventRows, taskRow } from '../support/task-rows';
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

  it('releases the locks and the worktree of a task that fails after its worker was killed with its disk', async () => {
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
    // Its disk goes with it (a pod's emptyDir, a container's /tmp): no janitor will ever see the worktree.
    const doomedRoot = join(dir, `worktrees-${'abc'[agentWorkers.indexOf(doomed)] ?? '?'}`);
    assert.ok(existsSync(join(doomedRoot, taskId)), 'the worktree was on the killed worker’s disk');
    rmSync(doomedRoot, { recursive: true, force: true });
    await assert.rejects(handle.result());
    // The task's end removed the registration left behind: the branch, with its work, is the user's.
    assert.ok(!git(repo, 'worktree', 'list').includes(taskId), 'no registration holds the branch');
    git(repo, 'checkout', '--quiet', `atelier/${taskId}`);
    git(repo, 'checkout', '--quiet', 'main');
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

/**
 * A task with a repository whose first attempt succeeded (its work committed, the attempt closed) but
 * whose worker never answered: Temporal takes the worker for lost. The run ends succeeded with that
 * attempt, its work committed and recorded by the workflow, once.
 */
describe('a worktree task whose successful attempt never answered', { timeout: 120_000 }, () => {
  let h: Harness;
  let dir: string;
  let repo: string;
  const workers: RunningWorker[] = [];
  const queues = { workflowQueue: uniqueQueue('wf-lost-answer'), agentQueue: uniqueQueue('agents-lost-answer') };

  /** Runs attempt 1 for real, then neither answers nor heartbeats until its worker stops. */
  const answerOfAttempt1Lost = (real: AgentActivities): AgentActivities => ({
    runAgent: async (attempt) => {
      const result = await real.runAgent(attempt);
      if (attempt.attempt !== 1) return result;
      const { cancellationSignal } = Context.current();
      return new Promise((_, reject) =>
        cancellationSignal.addEventListener('abort', () => reject(cancellationSignal.reason), { once: true }),
      );
    },
  });

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-lost-answer-'));
    repo = join(dir, 'repo');
    initRepo(repo);
    workers.push(
      await runWorkflowWorker(h, queues.workflowQueue),
      await runAgentWorker(h, queues.agentQueue, 'agent-worker', {
        worktreeRoot: join(dir, 'worktrees'),
        wrapAgents: answerOfAttempt1Lost,
      }),
    );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const startTask = (extra: Partial<AgentTaskInput>) =>
    startAgentTask(h, queues, '@pidfile out.txt', { backoffSeconds: 0.1, repo: { path: repo }, ...extra });

  /** Asserts the task succeeded once, with attempt 1 (the only one), and its work on its branch. */
  const succeededWithAttempt1 = async (taskId: string, result: { attempts: number; commit?: { sha: string } }) => {
    assert.equal(result.attempts, 1);
    const row = await taskRow(h.pool, taskId);
    assert.deepEqual([row.status, row.result_attempt, row.result_exit_code], ['succeeded', 1, 0]);
    assert.deepEqual(
      (await attemptRows(h.pool, taskId)).map((a) => [a.number, a.failure_class]),
      [[1, 'succeeded']],
      'the agent ran once',
    );
    assert.deepEqual(
      (await eventRows(h.pool, taskId)).filter((e) => e.terminal).map((e) => [e.kind, e.attempt]),
      [['succeeded', 1]],
    );
    assert.equal(git(repo, 'rev-parse', `atelier/${taskId}`), result.commit?.sha);
    assert.equal(git(repo, 'show', '--name-only', '--format=', `atelier/${taskId}`), 'out.txt');
    const commit = await h.pool.query<{ commit_sha: string }>('SELECT commit_sha FROM tasks WHERE id = $1', [taskId]);
    assert.equal(commit.rows[0]?.commit_sha, result.commit?.sha, 'the commit is recorded');
  };

  it('ends succeeded when it was the last attempt', async () => {
    const { taskId, handle } = await startTask({ maxAttempts: 1 });
    await succeededWithAttempt1(taskId, await handle.result());
  });

  it('ends succeeded with that attempt when attempts remain, without running the agent again', async () => {
    const { taskId, handle } = await startTask({ maxAttempts: 2 });
    await succeededWithAttempt1(taskId, await handle.result());
  });

  it('ends succeeded, not cancelled, when a cancel comes while it backs off to retry', async () => {
    const { taskId, handle } = await startTask({ maxAttempts: 2, backoffSeconds: 600 });
    await waitFor('the attempt to count as lost and the workflow to back off', async () => {
      const events = (await handle.fetchHistory()).events ?? [];
      return events.some((e) => e.timerStartedEventAttributes);
    });
    await handle.cancel();
    await succeededWithAttempt1(taskId, await handle.result());
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
  });
});
