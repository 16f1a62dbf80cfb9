import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import type { RunningWorker } from '../support/in-process-workers';
import { insertTask } from '../support/task-rows';
import { uniqueQueue } from '../support/test-env';
import { git, initRepo } from '../support/git';

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

  async function startTask(prompt: string, extra: Partial<AgentTaskInput> = {}) {
    const taskId = await insertTask(h.pool, { prompt });
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [
        {
          taskId,
          agent: 'stand-in',
          timeoutSeconds: 30,
          maxAttempts: 1,
          priority: 3,
          agentTaskQueue: queues.agentQueue,
          backoffSeconds: 0.1,
          repo: { path: repo },
          ...extra,
        },
      ],
    });
    return { taskId, handle };
  }

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

  it('keeps the work of a failed task on its branch', async () => {
    const { taskId, handle } = await startTask('@pidfile out.txt\n@exit 3');
    await assert.rejects(handle.result());
    const files = git(repo, 'show', '--name-only', '--format=', `atelier/${taskId}`);
    assert.equal(files, 'out.txt');
    assert.match(readFileSync(join(repo, '.git', 'refs', 'heads', 'atelier', taskId), 'utf8'), /^[0-9a-f]{40}/);
    assert.ok(!git(repo, 'worktree', 'list').includes(taskId));
    userCheckoutUntouched();
  });
});
