import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { taskWorkSaver } from '../../activities';
import { GitError, gitVia, type Git } from '../../activities/git/git';
import {
  AGENT_TIMEOUT_MARGIN_SECONDS,
  WORKER_QUEUE_LINE_SECONDS,
  type AgentTaskInput,
} from '../../workflows/definitions';
import { startAgentTask } from '../support/start-agent-task';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import type { RunningWorker } from '../support/in-process-workers';
import { uniqueQueue } from '../support/test-env';
import { git, initRepo } from '../support/git';
import { attemptRows, taskRow } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

describe('tasks in git worktrees', { timeout: 90_000 }, () => {
  let h: Harness;
  let dir: string;
  let repo: string;
  let queues: { workflowQueue: string; agentQueue: string };
  const workers: RunningWorker[] = [];

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktree-wf-'));
    repo = join(dir, 'repo');
    initRepo(repo);
    queues = { workflowQueue: uniqueQueue('wf-wt'), agentQueue: uniqueQueue('agents-wt') };
    workers.push(
      await runWorkflowWorker(h, queues.workflowQueue),
      await runAgentWorker(h, queues.agentQueue, 'agent-worker', { worktreeRoot: join(dir, 'worktrees') }),
    );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const userCheckoutUntouched = () => {
    assert.equal(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
    assert.equal(git(repo, 'status', '--porcelain'), '');
    assert.ok(!existsSync(join(repo, 'out.txt')));
  };

  const startTask = (prompt: string, extra: Partial<AgentTaskInput> = {}) =>
    startAgentTask(h, queues, prompt, { timeoutSeconds: 30, backoffSeconds: 0.1, repo: { path: repo }, ...extra });

  it('runs the agent in its own worktree, commits on atelier/<task>, records the commit and removes the worktree', async () => {
    const base = git(repo, 'rev-parse', 'HEAD');
    const { taskId, handle } = await startTask('@pidfile out.txt\n@print wrote it', {
      locks: { repo, globs: ['src/**'] },
    });
    const result = await handle.result();
    const commit = result.commit;
    assert.ok(commit, 'the result carries the commit');
    assert.equal(commit.branch, `atelier/${taskId}`);
    assert.equal(commit.baseSha, base);
    assert.deepEqual(commit.changedFiles, ['out.txt']);
    assert.match(commit.diffstat, /1 file changed, 1 insertion/);
    assert.deepEqual(commit.lockViolations, ['out.txt'], 'out.txt is outside the declared src/**');
    assert.equal(git(repo, 'rev-parse', `atelier/${taskId}`), commit.sha);
    assert.match(git(repo, 'log', '-1', '--format=%s', commit.sha), new RegExp(`task ${taskId} \\(agent stand-in\\)`));
    const row = await h.pool.query<{ commit_sha: string; changed_files: string[]; lock_violations: string[] }>(
      'SELECT commit_sha, changed_files, lock_violations FROM tasks WHERE id = $1',
      [taskId],
    );
    assert.deepEqual(row.rows[0], { commit_sha: commit.sha, changed_files: ['out.txt'], lock_violations: ['out.txt'] });
    const diff = await h.pool.query<{ patch: string }>('SELECT patch FROM task_diffs WHERE task_id = $1', [taskId]);
    assert.match(diff.rows[0]?.patch ?? '', /\+\+\+ b\/out\.txt/);
    assert.ok(!git(repo, 'worktree', 'list').includes(taskId), 'the worktree is gone');
    assert.ok(!existsSync(join(dir, 'worktrees', taskId)));
    userCheckoutUntouched();
  });

  it("gives an attempt on the worktree's worker room to wait there for a slot, beyond its agent's time limit", async () => {
    const { handle } = await startTask('@print done', { timeoutSeconds: 30 });
    await handle.result();
    const scheduled = (await handle.fetchHistory()).events
      ?.map((e) => e.activityTaskScheduledEventAttributes)
      .find((a) => a?.activityType?.name === 'runAgent');
    assert.notEqual(scheduled?.taskQueue?.name, queues.agentQueue, "on the worker's own queue");
    assert.equal(
      Number(scheduled?.startToCloseTimeout?.seconds),
      30 + AGENT_TIMEOUT_MARGIN_SECONDS + WORKER_QUEUE_LINE_SECONDS,
    );
  });

  it('records the success only once the work is committed', async () => {
    const { taskId, handle } = await startTask('@pidfile out.txt');
    const result = await handle.result();
    const row = await h.pool.query<{ status: string; result_attempt: number; commit_sha: string }>(
      'SELECT status, result_attempt, commit_sha FROM tasks WHERE id = $1',
      [taskId],
    );
    assert.deepEqual(row.rows[0], { status: 'succeeded', result_attempt: 1, commit_sha: result.commit?.sha });
    const events = await h.pool.query<{ kind: string }>(
      'SELECT kind FROM task_events WHERE task_id = $1 AND terminal ORDER BY id',
      [taskId],
    );
    assert.deepEqual(
      events.rows.map((e) => e.kind),
      ['succeeded'],
    );
  });

  it('commits the work after the attempt when the attempt could not, without running the agent again', async () => {
    const own = { workflowQueue: uniqueQueue('wf-wt-save'), agentQueue: uniqueQueue('agents-wt-save') };
    // The attempt's own commit gets as far as `git commit` (the work is staged), which fails.
    const real = gitVia();
    const failingCommit: Git = (cwd, args, signal) =>
      args[0] === 'commit'
        ? Promise.reject(new GitError(args, 128, 'fatal: No space left on device'))
        : real(cwd, args, signal);
    workers.push(
      await runWorkflowWorker(h, own.workflowQueue),
      await runAgentWorker(h, own.agentQueue, 'agent-worker', {
        worktreeRoot: join(dir, 'worktrees-save'),
        saveWork: taskWorkSaver(failingCommit),
      }),
    );
    const { taskId, handle } = await startAgentTask(h, own, '@pidfile out.txt', {
      maxAttempts: 2,
      backoffSeconds: 0.1,
      repo: { path: repo },
    });
    const result = await handle.result();
    assert.equal(result.attempts, 1);
    assert.deepEqual(result.commit?.changedFiles, ['out.txt']);
    assert.deepEqual(
      (await attemptRows(h.pool, taskId)).map((a) => [a.number, a.failure_class]),
      [[1, 'succeeded']],
      'the agent ran once',
    );
    const row = await taskRow(h.pool, taskId);
    assert.deepEqual([row.status, row.result_attempt], ['succeeded', 1]);
    assert.equal(git(repo, 'show', '--name-only', '--format=', `atelier/${taskId}`), 'out.txt');
    assert.equal(git(repo, 'rev-parse', `atelier/${taskId}`), result.commit?.sha);
    userCheckoutUntouched();
  });

  it('fails a task that changed files outside its locks when told to, keeping its work on the branch', async () => {
    const { taskId, handle } = await startTask('@pidfile out.txt', {
      locks: { repo, globs: ['src/**'] },
      failOnLockViolations: true,
    });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'lock_violation');
    assert.match(err.cause.message, /outside the declared locks: out\.txt/);
    const row = await h.pool.query<{ status: string; error_class: string; lock_violations: string[] }>(
      'SELECT status, error_class, lock_violations FROM tasks WHERE id = $1',
      [taskId],
    );
    assert.deepEqual(row.rows[0], { status: 'failed', error_class: 'lock_violation', lock_violations: ['out.txt'] });
    const attempt = await h.pool.query<{ failure_class: string }>(
      'SELECT failure_class FROM attempts WHERE task_id = $1',
      [taskId],
    );
    assert.deepEqual(attempt.rows, [{ failure_class: 'succeeded' }], 'the agent itself succeeded');
    assert.equal(git(repo, 'show', '--name-only', '--format=', `atelier/${taskId}`), 'out.txt');
    assert.ok(!git(repo, 'worktree', 'list').includes(taskId));
    userCheckoutUntouched();
  });

  it('commits a failed attempt’s work, and the next attempt continues from it', async () => {
    const counter = join(dir, `counter-${Date.now()}`);
    const { taskId, handle } = await startTask(
      `@first-run ${counter}.first @pidfile first.txt\n@fail-until 2 ${counter}`,
      {
        maxAttempts: 2,
      },
    );
    const result = await handle.result();
    assert.equal(result.attempts, 2);
    const log = git(repo, 'log', '--format=%s', `atelier/${taskId}`).split('\n');
    assert.match(log[0] ?? '', new RegExp(`task ${taskId} \\(agent stand-in\\): work of failed attempt 1`));
    assert.deepEqual(result.commit?.changedFiles, ['first.txt'], 'the work of attempt 1 is in the result');
    userCheckoutUntouched();
  });

  it('keeps the work of a failed task on its branch', async () => {
    const { taskId, handle } = await startTask('@pidfile out.txt\n@exit 3');
    await assert.rejects(handle.result());
    const files = git(repo, 'show', '--name-only', '--format=', `atelier/${taskId}`);
    assert.equal(files, 'out.txt');
    assert.match(readFileSync(join(repo, '.git', 'refs', 'heads', 'atelier', taskId), 'utf8'), /^[0-9a-f]{40}/);
    assert.ok(!git(repo, 'worktree', 'list').includes(taskId));
    userCheckoutUntouched();
  });

  it('removes the registration of a worktree whose directory was deleted while its task ran', async () => {
    const started = join(dir, `started-${Date.now()}`);
    const { taskId, handle } = await startTask(`@pidfile ${started}\n@wait-file ${started}.go\n@exit 3`, {
      maxAttempts: 1,
    });
    await waitFor('the agent to start', () => existsSync(started));
    rmSync(join(dir, 'worktrees', taskId), { recursive: true, force: true });
    writeFileSync(`${started}.go`, '');
    await assert.rejects(handle.result());
    // Nothing was left to commit or remove there, but the registration went: the branch is the user's.
    assert.ok(!git(repo, 'worktree', 'list').includes(taskId), 'no registration holds the branch');
    git(repo, 'checkout', '--quiet', `atelier/${taskId}`);
    git(repo, 'checkout', '--quiet', 'main');
    userCheckoutUntouched();
  });
});
