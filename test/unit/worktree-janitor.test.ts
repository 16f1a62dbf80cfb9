import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Pool } from 'pg';
import { createWorktreeActivities } from '../../activities/git/worktree.activities';
import { WorktreeJanitor } from '../../src/workers/worktree-janitor';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';
import { git, initRepo } from '../support/git';

describe('worktree janitor', () => {
  let pool: Pool;
  let dir: string;
  let repo: string;
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    dir = mkdtempSync(join(tmpdir(), 'atelier-janitor-'));
    repo = join(dir, 'repo');
    initRepo(repo);
  });
  after(async () => {
    await pool.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes the worktrees of tasks that ended and keeps those of running tasks and their branches', async () => {
    const root = join(dir, 'worktrees');
    const activities = createWorktreeActivities({ worktreeRoot: root, workerQueue: 'q' });
    const task = async (status: string) => {
      const id = await insertTask(pool, { prompt: 'x' });
      await pool.query('UPDATE tasks SET status = $2, repo_path = $3 WHERE id = $1', [id, status, repo]);
      await env.run(activities.prepareWorktree, { taskId: id, repoPath: repo });
      return id;
    };
    const running = await task('running');
    const done = await task('succeeded');
    const cancelled = await task('cancelled');
    const logs: unknown[] = [];
    const janitor = new WorktreeJanitor({
      pool,
      worktreeRoot: root,
      sweep: (input) => env.run(activities.sweepWorktrees, input),
      intervalMs: 60_000,
      logger: { info: (o: unknown) => logs.push(o), warn: (o: unknown) => logs.push(o) } as never,
    });
    assert.deepEqual((await janitor.sweepOnce()).sort(), [done, cancelled].sort());
    assert.ok(existsSync(join(root, running)));
    assert.ok(!existsSync(join(root, done)) && !existsSync(join(root, cancelled)));
    assert.ok(git(repo, 'branch', '--list', `atelier/${done}`).includes(done), 'the branch stays');
    assert.deepEqual(await janitor.sweepOnce(), []);
    assert.equal(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
  });
});
