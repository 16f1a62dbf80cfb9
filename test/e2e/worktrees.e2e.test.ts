import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { call, getTask, submit, type ErrorBody } from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { startStack, type Stack } from '../support/stack';
import { testEnv } from '../support/test-env';
import { waitFor } from '../support/wait-for';
import { git, initRepo } from '../support/git';

interface CommitView {
  branch: string;
  baseSha: string;
  sha: string;
  changedFiles: string[];
  diffstat: string;
  lockViolations: string[];
  diff: string;
}

describe('tasks in git worktrees over HTTP against the whole service', () => {
  let stack: Stack;
  let dir: string;
  let repo: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktrees-e2e-'));
    repo = join(dir, 'repo');
    initRepo(repo);
    stack = await startStack({ ATELIER_WORKTREE_ROOT: join(dir, 'worktrees') });
  });
  after(async () => {
    try {
      if (stack) await stopStackCleanly(stack);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const succeededWithCommit = (id: string) =>
    waitFor(
      'the task to succeed with its commit',
      async () => {
        const t = (await getTask(stack.baseUrl, id)) as unknown as { status: string; commit: CommitView | null };
        return t.status === 'succeeded' && t.commit !== null && t;
      },
      { timeoutMs: 60_000 },
    );

  it('rejects a repo that is not a directory, or given with a workdir', async () => {
    const missing = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', repo: { path: join(dir, 'nope') } },
    });
    assert.equal(missing.status, 400);
    assert.equal((missing.json as ErrorBody).fields?.[0]?.field, 'repo');
    const both = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', repo: { path: repo }, workdir: dir },
    });
    assert.equal(both.status, 400);
    assert.match((both.json as ErrorBody).message, /exclude each other/);
    const badRef = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', repo: { path: repo, ref: '--upload-pack=x' } },
    });
    assert.equal(badRef.status, 400);
    assert.equal((badRef.json as ErrorBody).fields?.[0]?.field, 'repo.ref');
    const nothingToJudge = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', repo: { path: repo }, failOnLockViolations: true },
    });
    assert.equal(nothingToJudge.status, 400);
    assert.equal((nothingToJudge.json as ErrorBody).fields?.[0]?.field, 'failOnLockViolations');
    const notBoolean = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', repo: { path: repo }, locks: ['src/**'], failOnLockViolations: 'yes' },
    });
    assert.equal(notBoolean.status, 400);
    assert.equal((notBoolean.json as ErrorBody).fields?.[0]?.field, 'failOnLockViolations');
  });

  it('fails a task that changed files outside its locks when it asks to, and shows why', async () => {
    const task = await submit(stack.baseUrl, {
      prompt: '@pidfile outside.txt',
      repo: { path: repo },
      locks: ['src/**'],
      failOnLockViolations: true,
    });
    const view = await waitFor(
      'the task to fail',
      async () => {
        const t = (await getTask(stack.baseUrl, task.id)) as unknown as {
          status: string;
          error: { class: string; message: string } | null;
          failOnLockViolations: boolean;
          commit: CommitView | null;
        };
        return t.status === 'failed' && t;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(view.failOnLockViolations, true);
    assert.equal(view.error?.class, 'lock_violation');
    assert.match(view.error?.message ?? '', /outside the declared locks: outside\.txt/);
    assert.deepEqual(view.commit?.lockViolations, ['outside.txt']);
    assert.equal(git(repo, 'show', '--name-only', '--format=', `atelier/${task.id}`), 'outside.txt');
  });

  it('serves a patch byte for byte, one in another encoding than UTF-8 too, and one an earlier release kept as text', async () => {
    const task = await submit(stack.baseUrl, { prompt: '@pidfile latin1.txt', repo: { path: repo } });
    const commit = (await succeededWithCommit(task.id)).commit as CommitView;
    const bytesOf = async (path: string): Promise<Buffer> => {
      const res = await fetch(`${stack.baseUrl}${path}`);
      assert.equal(res.status, 200);
      return Buffer.from(await res.arrayBuffer());
    };
    // A patch as git prints it for a Latin-1 file: its bytes are no UTF-8.
    const latin1 = Buffer.concat([Buffer.from('+caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
    const pool = new Pool({ connectionString: testEnv.databaseUrl, max: 1 });
    try {
      await pool.query('UPDATE task_diffs SET patch = NULL, patch_bytes = $2 WHERE task_id = $1', [task.id, latin1]);
      assert.deepEqual(await bytesOf(commit.diff), latin1);
      // A patch that is UTF-8 is kept as text, as the release before 0012 kept every patch.
      await pool.query(`UPDATE task_diffs SET patch = 'café in text', patch_bytes = NULL WHERE task_id = $1`, [
        task.id,
      ]);
      assert.deepEqual(await bytesOf(commit.diff), Buffer.from('café in text'));
    } finally {
      await pool.end();
    }
  });

  it('takes two spellings of one repository as one: a plan task builds on its dependency’s commit', async () => {
    const link = join(dir, 'repo-link');
    symlinkSync(repo, link);
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'first', prompt: '@pidfile first.txt', repo: { path: repo } },
          { key: 'second', prompt: '@pidfile second.txt', repo: { path: `${link}/` }, dependsOn: ['first'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const [first, second] = (res.json as { tasks: { taskId: string }[] }).tasks;
    const firstCommit = (await succeededWithCommit(first?.taskId ?? '')).commit as CommitView;
    const secondView = (await succeededWithCommit(second?.taskId ?? '')) as unknown as {
      repo: { path: string };
      commit: CommitView;
    };
    assert.equal(secondView.repo.path, repo, 'stored by its real path');
    assert.equal(secondView.commit.baseSha, firstCommit.sha, 'built on the first task’s work');
    assert.deepEqual(secondView.commit.changedFiles, ['second.txt']);

    // The plan's history holds each task's short result: its commit's sha, not its lists.
    const plan = res.json as { workflowId: string };
    const connection = await Connection.connect({ address: testEnv.temporalAddress });
    try {
      const handle = new Client({ connection, namespace: testEnv.namespace }).workflow.getHandle(plan.workflowId);
      await waitFor('the plan workflow to complete', async () => (await handle.describe()).status.name === 'COMPLETED');
      const results = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
        const data = e.childWorkflowExecutionCompletedEventAttributes?.result?.payloads?.[0]?.data;
        return data ? [JSON.parse(Buffer.from(data).toString()) as { outputTail: string; commit: CommitView }] : [];
      });
      assert.deepEqual(
        results.map((r) => [r.commit.sha, r.commit.changedFiles, r.commit.lockViolations, r.outputTail]),
        [
          [firstCommit.sha, [], [], ''],
          [secondView.commit.sha, [], [], ''],
        ],
      );
      assert.deepEqual(
        results.map((r) => (r.commit as CommitView & { omitted: unknown }).omitted),
        [
          { changedFiles: 1, lockViolations: 0 },
          { changedFiles: 1, lockViolations: 0 },
        ],
      );
    } finally {
      await connection.close();
    }
  });

  it('answers 413 for a patch too large to keep, naming the range to diff on the branch', async () => {
    const task = await submit(stack.baseUrl, { prompt: '@pidfile big.txt', repo: { path: repo } });
    const view = await succeededWithCommit(task.id);
    const commit = view.commit as CommitView;
    // As the agent worker records a patch over 64 MB.
    const pool = new Pool({ connectionString: testEnv.databaseUrl, max: 1 });
    try {
      await pool.query('UPDATE task_diffs SET patch = NULL, patch_bytes = NULL WHERE task_id = $1', [task.id]);
    } finally {
      await pool.end();
    }
    const diff = await call(stack.baseUrl, 'GET', commit.diff);
    assert.equal(diff.status, 413, diff.text);
    assert.match(
      (diff.json as ErrorBody).message,
      new RegExp(`too large to keep: .*git diff ${commit.baseSha}\\.\\.${commit.sha}`),
    );
  });

  it('commits the agent’s work on atelier/<task>, shows it on the task and serves the patch', async () => {
    const base = git(repo, 'rev-parse', 'HEAD');
    const task = await submit(stack.baseUrl, {
      prompt: '@pidfile out.txt\n@print done',
      repo: { path: repo },
      locks: ['README.md'],
    });
    const view = await succeededWithCommit(task.id);
    const commit = view.commit as CommitView;
    assert.equal(commit.branch, `atelier/${task.id}`);
    assert.equal(commit.baseSha, base);
    assert.deepEqual(commit.changedFiles, ['out.txt']);
    assert.deepEqual(commit.lockViolations, ['out.txt']);
    assert.equal(git(repo, 'rev-parse', commit.branch), commit.sha);
    const diff = await call(stack.baseUrl, 'GET', commit.diff);
    assert.equal(diff.status, 200);
    assert.equal(diff.headers.get('content-type'), 'text/x-diff');
    assert.match(diff.text, /^diff --git a\/out\.txt b\/out\.txt/);
    assert.equal((await call(stack.baseUrl, 'GET', `/v1/tasks/${base.slice(0, 8)}/diff`)).status, 404);
    // The user's checkout is untouched, and the worktree is gone once the task has ended.
    assert.equal(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
    assert.equal(git(repo, 'status', '--porcelain'), '');
    assert.ok(!existsSync(join(repo, 'out.txt')));
    await waitFor('the worktree to be removed', () => !git(repo, 'worktree', 'list').includes(task.id));
  });
});
