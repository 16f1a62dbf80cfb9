import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createWorktreeActivities } from '../../activities/git/worktree.activities';
import { git, initRepo } from '../support/git';

const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

describe('a worktree root reached through a symlink', () => {
  let dir: string;
  let repo: string;
  let realRoot: string;
  /** The root as configured: a symlink to `realRoot`, with a trailing slash. */
  let root: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktree-root-'));
    repo = join(dir, 'repo');
    initRepo(repo);
    realRoot = join(dir, 'real-root');
    mkdirSync(realRoot);
    symlinkSync(realRoot, join(dir, 'root'));
    root = `${join(dir, 'root')}/`;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const worker = (name: string) =>
    createWorktreeActivities({
      worktreeRoot: root,
      workerQueue: `agents@${name}`,
      endedTasks: { ended: async (ids) => ids.map((id) => ({ id, repoPath: repo, longEnded: false })) },
    });

  it('finds the task’s worktree again, with its uncommitted work, and the janitor finds it too', async () => {
    const first = await run(worker('a').prepareWorktree, { taskId: 'task-s', repoPath: repo });
    writeFileSync(join(first.worktreePath, 'unsaved.txt'), 'work in progress\n');
    // The task is prepared again on the same disk (its worker restarted).
    const b = worker('b');
    const again = await run(b.prepareWorktree, { taskId: 'task-s', repoPath: repo });
    assert.equal(readFileSync(join(again.worktreePath, 'unsaved.txt'), 'utf8'), 'work in progress\n');
    assert.equal(
      git(repo, 'rev-list', '--count', 'refs/atelier/base/task-s..atelier/task-s'),
      '0',
      'nothing taken over',
    );
    assert.deepEqual(await run(b.sweepWorktrees, { repoPath: repo, ended: ['task-s'] }), {
      removed: ['task-s'],
      kept: [],
    });
    assert.ok(!existsSync(join(realRoot, 'task-s')));
    assert.equal(git(repo, 'show', 'atelier/task-s:unsaved.txt'), 'work in progress', 'its work was committed first');
  });
});
