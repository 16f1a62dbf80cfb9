import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Pool } from 'pg';
import { GitError, gitVia, type Git } from '../../activities/git/git';
import { removeTree } from '../../activities/git/remove-tree';
import { createWorktreeActivities, type WorktreeDeps } from '../../activities/git/worktree.activities';
import { EndedTaskStore } from '../../src/store/ended-task-store';
import { WorktreeStore } from '../../src/store/worktree-store';
import { WorktreeJanitor, type WorktreeJanitorOptions } from '../../src/workers/worktree-janitor';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';
import { git, initRepo } from '../support/git';

describe('worktree janitor', () => {
  let pool: Pool;
  let dir: string;
  let repo: string;
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

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

  /**
   * One worker's worktree activities and its janitor, which calls the sweep outside any activity, as
   * the agent worker does; `beforeSweep` runs between the janitor's look and its sweep. `kept` collects
   * what it logs of worktrees it had to keep, `logged` what it logs as info; `deps` adds to the activities'
   * dependencies, `options` to the janitor's.
   */
  const worker = (
    root: string,
    beforeSweep: () => Promise<void> = async () => undefined,
    deps: Partial<WorktreeDeps> = {},
    options: Partial<WorktreeJanitorOptions> = {},
  ) => {
    const kept: object[] = [];
    const logged: object[] = [];
    const endedTasks = new EndedTaskStore(pool);
    const activities = createWorktreeActivities({ worktreeRoot: root, workerQueue: 'q', endedTasks, ...deps });
    const janitor = new WorktreeJanitor({
      endedTasks,
      worktreeRoot: root,
      sweep: async (input) => {
        await beforeSweep();
        return activities.sweepWorktrees(input);
      },
      intervalMs: 60_000,
      logger: {
        info: (meta: object) => logged.push(meta),
        warn: () => undefined,
        error: (meta: object) => kept.push(meta),
      } as never,
      ...options,
    });
    /** A task in `status` on `repoPath` whose worktree is prepared on this worker, with work left uncommitted. */
    const task = async (status: string, repoPath = repo) => {
      const id = await insertTask(pool, { prompt: 'x' });
      await pool.query('UPDATE tasks SET status = $2, repo_path = $3 WHERE id = $1', [id, status, repoPath]);
      const wt = await run(activities.prepareWorktree, { taskId: id, repoPath });
      writeFileSync(join(wt.worktreePath, 'in-progress.txt'), 'not committed yet\n');
      return { id, path: wt.worktreePath, baseSha: wt.baseSha };
    };
    return { janitor, task, kept, logged, activities };
  };

  /** The subjects of the commits on the task's branch that its base does not have. */
  const branchCommits = (id: string): string =>
    git(repo, 'log', '--format=%s', `refs/atelier/base/${id}..atelier/${id}`);

  /** The janitor keeps the task's directory while the task ended 6 days ago, and removes it once 8 days ago. */
  const keptAWeekAfterItsEnd = async (janitor: WorktreeJanitor, ended: { id: string; path: string }) => {
    const endedAgo = (interval: string) =>
      pool.query(`UPDATE tasks SET finished_at = clock_timestamp() - $2::interval WHERE id = $1`, [ended.id, interval]);
    await endedAgo('6 days');
    assert.deepEqual(await janitor.sweepOnce(), [], 'kept for whoever wants what is in it');
    assert.ok(existsSync(join(ended.path, 'in-progress.txt')));
    await endedAgo('8 days');
    assert.deepEqual(await janitor.sweepOnce(), [ended.id]);
    assert.ok(!existsSync(ended.path));
  };

  it('removes the worktrees of tasks that ended and keeps those of running tasks and their branches', async () => {
    const root = join(dir, 'worktrees');
    const { janitor, task } = worker(root);
    const running = await task('running');
    const done = await task('succeeded');
    const cancelled = await task('cancelled');
    assert.deepEqual((await janitor.sweepOnce()).sort(), [done.id, cancelled.id].sort());
    assert.ok(existsSync(running.path));
    assert.ok(!existsSync(done.path) && !existsSync(cancelled.path));
    assert.equal(git(repo, 'show', `atelier/${done.id}:in-progress.txt`), 'not committed yet', 'its work is committed');
    assert.deepEqual(await janitor.sweepOnce(), []);
    assert.equal(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
  });

  it('keeps the worktree of a task that started after the janitor looked', async () => {
    let started: { id: string; path: string } | undefined;
    const { janitor, task } = worker(join(dir, 'worktrees-race'), async () => {
      started ??= await task('running');
    });
    const ended = await task('failed');
    assert.deepEqual(await janitor.sweepOnce(), [ended.id]);
    assert.ok(
      started !== undefined && existsSync(join(started.path, 'in-progress.txt')),
      'the new task keeps its work',
    );
    assert.equal(branchCommits(started.id), '', 'nothing was salvaged from it');
  });

  it('leaves a worktree alone while its workflow’s late commit runs there, and sweeps it once that is done', async () => {
    // The task's end was recorded long ago; its workflow's final commit comes only now, and its `git add`
    // is slow: the janitor sweeps meanwhile.
    const real = gitVia();
    let reachAdd = (): void => undefined;
    let releaseAdd = (): void => undefined;
    const atAdd = new Promise<void>((r) => (reachAdd = r));
    const released = new Promise<void>((r) => (releaseAdd = r));
    let paused = false;
    const slowAdd: Git = async (cwd, args, signal) => {
      if (args[0] === 'add' && !paused) {
        paused = true;
        reachAdd();
        await released;
      }
      return real(cwd, args, signal);
    };
    const { janitor, task, activities } = worker(join(dir, 'worktrees-late-commit'), undefined, { git: slowAdd });
    const ended = await task('failed');
    const committing = run(activities.commitWorktree, {
      taskId: ended.id,
      agent: 'claude',
      worktreePath: ended.path,
      baseSha: ended.baseSha,
    });
    await atAdd;
    assert.deepEqual(await janitor.sweepOnce(), [], 'the commit holds the worktree');
    assert.equal(branchCommits(ended.id), '', 'the janitor committed nothing beside it');
    releaseAdd();
    assert.equal((await committing).committed, true);
    assert.equal(branchCommits(ended.id), `atelier: task ${ended.id} (agent claude)`);
    assert.deepEqual(await janitor.sweepOnce(), [ended.id]);
    assert.ok(!existsSync(ended.path));
  });

  it('stops a git of its sweep that hangs, and keeps that worktree', { timeout: 30_000 }, async () => {
    const { janitor, task, kept } = worker(join(dir, 'worktrees-hung'), undefined, { sweepGitTimeoutMs: 1000 });
    const hung = await task('failed');
    // The worktree's index is a FIFO: git, reading it, waits for a writer that never comes.
    const index = resolve(hung.path, git(hung.path, 'rev-parse', '--git-path', 'index'));
    rmSync(index);
    execFileSync('mkfifo', [index]);
    assert.deepEqual(await janitor.sweepOnce(), [], 'the sweep ends, and the repository is free again');
    assert.deepEqual(
      kept.map((k) => (k as { taskId: string }).taskId),
      [hung.id],
    );
    assert.ok(existsSync(join(hung.path, 'in-progress.txt')), 'its work stays');
  });

  it('starts no sweep while the last one still runs', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const unused = () => assert.fail('sweepOnce is replaced');
    const janitor = new WorktreeJanitor({
      endedTasks: { ended: unused },
      worktreeRoot: dir,
      sweep: unused,
      intervalMs: 1000,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined } as never,
    });
    let finish = (): void => undefined;
    const sweepOnce = t.mock.method(janitor, 'sweepOnce', () => new Promise<string[]>((r) => (finish = () => r([]))));
    janitor.start();
    t.mock.timers.tick(3000);
    assert.equal(sweepOnce.mock.callCount(), 1, 'the ticks while it runs start none');
    finish();
    await nextTurn();
    t.mock.timers.tick(1000);
    assert.equal(sweepOnce.mock.callCount(), 2, 'the next tick after it starts one');
    finish();
    await janitor.stop();
  });

  it('keeps the worktree of a task that was retried after the janitor looked', async () => {
    // The retry runs once the janitor has read that the task ended, before its sweep.
    const { janitor, task } = worker(join(dir, 'worktrees-retry'), async () => {
      await pool.query(`UPDATE tasks SET status = 'running' WHERE id = $1`, [retried.id]);
    });
    const retried = await task('failed');
    assert.deepEqual(await janitor.sweepOnce(), []);
    assert.ok(existsSync(join(retried.path, 'in-progress.txt')));
    assert.equal(branchCommits(retried.id), '');
  });

  it('keeps a running task’s worktree when another path of the same repository is swept', async () => {
    // The user's own linked worktree of the repository: `git worktree list` there shows every worktree of it.
    const linked = join(dir, 'repo-feature');
    git(repo, 'worktree', 'add', '--quiet', '-b', 'feature', linked);
    const { janitor, task } = worker(join(dir, 'worktrees-paths'));
    const running = await task('running', repo);
    const ended = await task('failed', linked);
    assert.deepEqual(await janitor.sweepOnce(), [ended.id]);
    assert.ok(existsSync(join(running.path, 'in-progress.txt')), 'the running task keeps its work');
    assert.equal(branchCommits(running.id), '');
    assert.ok(existsSync(join(linked, 'README.md')), "the user's worktree stays");
  });

  it('keeps, and says so, a worktree whose work cannot be committed, and sweeps the rest', async () => {
    const { janitor, task, kept } = worker(join(dir, 'worktrees-stuck'));
    const stuck = await task('failed');
    const done = await task('succeeded');
    // The agent committed on its task branch, then left HEAD on a commit of its own beside it.
    git(stuck.path, 'commit', '--quiet', '-am', 'on the branch', '--allow-empty');
    git(stuck.path, 'switch', '--quiet', '--detach', 'HEAD~1');
    git(stuck.path, 'commit', '--quiet', '--allow-empty', '-m', 'beside it');
    assert.deepEqual(await janitor.sweepOnce(), [done.id]);
    assert.ok(existsSync(join(stuck.path, 'in-progress.txt')), 'the stuck worktree stays, with its work');
    assert.deepEqual(
      kept.map((k) => (k as { taskId: string }).taskId),
      [stuck.id],
    );
  });

  it('keeps, and says so, a worktree it cannot remove, and removes those listed after it', async () => {
    // Files the worker may not delete (a container's, written as root) make both git's removal and
    // removeTree fail; the tests run as root, so the failures are injected.
    const real = gitVia();
    let stuckPath = '';
    const failing: Git = (cwd, args, signal) =>
      args[0] === 'worktree' && args[1] === 'remove' && args.includes(stuckPath)
        ? Promise.reject(new GitError(args, 255, `error: failed to delete '${stuckPath}': Permission denied`))
        : real(cwd, args, signal);
    const { janitor, task, kept } = worker(join(dir, 'worktrees-undeletable'), undefined, {
      git: failing,
      removeTree: async (path) => {
        if (path === stuckPath)
          throw Object.assign(new Error(`EACCES: permission denied, unlink '${path}/out.txt'`), { code: 'EACCES' });
        await removeTree(path);
      },
    });
    // git lists worktrees by path: the one it cannot remove comes first.
    const [stuck, done] = [await task('failed'), await task('succeeded')].sort((a, b) => (a.id < b.id ? -1 : 1));
    assert.ok(stuck !== undefined && done !== undefined);
    stuckPath = stuck.path;
    assert.deepEqual(await janitor.sweepOnce(), [done.id]);
    assert.ok(!existsSync(done.path), 'the worktree after it is removed');
    assert.ok(existsSync(stuck.path), 'the one it cannot remove stays');
    assert.deepEqual(
      kept.map((k) => [(k as { taskId: string }).taskId, (k as { error: string }).error.includes('EACCES')]),
      [[stuck.id, true]],
      'the one it cannot remove is named, with why',
    );
    assert.ok(git(repo, 'worktree', 'list').includes(stuck.id), 'its registration stays, for the next sweep');
  });

  it('keeps, and says so, a set-aside copy it cannot remove, and sweeps the rest', async () => {
    const root = join(dir, 'worktrees-undeletable-copy');
    const weekOld = Date.now() - 8 * 86_400_000;
    const stuckCopy = join(root, `00000000-0000-4000-8000-000000000000.orphan-${weekOld}`);
    const otherCopy = join(root, `ffffffff-0000-4000-8000-000000000000.orphan-${weekOld}`);
    const { janitor, task, kept } = worker(root, undefined, undefined, {
      removeTree: async (path) => {
        if (path === stuckCopy)
          throw Object.assign(new Error(`EACCES: permission denied, rmdir '${path}'`), { code: 'EACCES' });
        await removeTree(path);
      },
    });
    const ended = await task('failed');
    for (const copy of [stuckCopy, otherCopy]) {
      mkdirSync(copy);
      writeFileSync(join(copy, 'work.txt'), 'kept a week\n');
    }
    assert.deepEqual(await janitor.sweepOnce(), [ended.id], 'the repository is swept all the same');
    assert.ok(!existsSync(ended.path));
    assert.ok(existsSync(stuckCopy), 'the copy it cannot remove stays');
    assert.ok(!existsSync(otherCopy), 'the other copy is removed');
    assert.deepEqual(
      kept.map((k) => (k as { worktree: string }).worktree),
      [stuckCopy],
      'it names the copy that stays',
    );
  });

  it('makes a tree it may not change writable and removes it', async () => {
    const tree = mkdtempSync(join(dir, 'read-only-'));
    const inner = join(tree, 'out');
    mkdirSync(inner);
    writeFileSync(join(inner, 'result.txt'), 'made by the agent\n');
    chmodSync(inner, 0o555);
    // Root deletes whatever it likes: the refusal a worker's user gets is injected, once.
    const modesSeen: number[] = [];
    let calls = 0;
    await removeTree(tree, (async (path: string, options: object) => {
      calls += 1;
      if (calls === 1)
        throw Object.assign(new Error(`EACCES: permission denied, unlink '${inner}/result.txt'`), { code: 'EACCES' });
      modesSeen.push(statSync(inner).mode & 0o777);
      await rm(path, options);
    }) as typeof rm);
    assert.deepEqual(modesSeen, [0o755], 'its directories were made writable by their owner before the retry');
    assert.ok(!existsSync(tree));
  });

  it('removes a directory git no longer knows a week after its task ended, not before', async () => {
    const { janitor, task } = worker(join(dir, 'worktrees-orphans'));
    const ended = await task('failed');
    // Another worker took the worktree over from a disk it did not see: git dropped its registration.
    renameSync(ended.path, `${ended.path}.away`);
    git(repo, 'worktree', 'prune');
    renameSync(`${ended.path}.away`, ended.path);
    assert.ok(!git(repo, 'worktree', 'list').includes(ended.id));
    await keptAWeekAfterItsEnd(janitor, ended);
  });

  it('sets aside, for a week, the copy a retried task finds of its worktree that git no longer knows', async () => {
    const root = join(dir, 'worktrees-set-aside');
    const { janitor, task, activities } = worker(root);
    const lost = await task('failed');
    // Another worker took the worktree over from a disk it did not see: git dropped its registration.
    renameSync(lost.path, `${lost.path}.away`);
    git(repo, 'worktree', 'prune');
    renameSync(`${lost.path}.away`, lost.path);
    // The task is retried, on this worker.
    await pool.query(`UPDATE tasks SET status = 'running' WHERE id = $1`, [lost.id]);
    const again = await run(activities.prepareWorktree, { taskId: lost.id, repoPath: repo });
    assert.equal(again.worktreePath, lost.path);
    assert.ok(!existsSync(join(again.worktreePath, 'in-progress.txt')), 'the new worktree is made from the branch');
    const setAside = readdirSync(root).filter((name) => name.startsWith(`${lost.id}.orphan-`));
    assert.equal(setAside.length, 1);
    const copy = join(root, setAside[0] ?? '');
    assert.equal(readFileSync(join(copy, 'in-progress.txt'), 'utf8'), 'not committed yet\n', 'the copy is kept');

    await janitor.sweepOnce();
    assert.ok(existsSync(copy), 'kept for whoever wants what is in it');
    // The same copy, set aside eight days ago.
    const weekOld = join(root, `${lost.id}.orphan-${Date.now() - 8 * 86_400_000}`);
    renameSync(copy, weekOld);
    await janitor.sweepOnce();
    assert.ok(!existsSync(weekOld));
    assert.ok(existsSync(join(again.worktreePath, '.git')), 'the task’s worktree stays');
  });

  it('removes the worktree of a task whose repository is gone a week after the task ended, not before', async () => {
    const gone = join(dir, 'repo-gone');
    initRepo(gone);
    const { janitor, task, logged } = worker(join(dir, 'worktrees-repo-gone'));
    const ended = await task('failed', gone);
    rmSync(gone, { recursive: true, force: true });
    await keptAWeekAfterItsEnd(janitor, ended);
    assert.deepEqual(logged, [{ repoPath: gone, removed: [ended.id] }], 'it says which, and of which repository');
  });

  it('records the work it salvages as the task’s commit and patch, against the task’s base', async () => {
    const store = new WorktreeStore(pool);
    const { janitor, task, activities } = worker(join(dir, 'worktrees-recorded'), undefined, { store });
    const ended = await task('failed');
    await pool.query('UPDATE tasks SET locks = $2 WHERE id = $1', [ended.id, ['src/**']]);
    // The workflow recorded its failed attempt's work; more was written before its worker died.
    const workflows = await run(activities.commitWorktree, {
      taskId: ended.id,
      agent: 'claude',
      worktreePath: ended.path,
      baseSha: ended.baseSha,
      locks: ['src/**'],
    });
    writeFileSync(join(ended.path, 'late.txt'), 'written after the last recorded commit\n');
    assert.deepEqual(await janitor.sweepOnce(), [ended.id]);
    const salvaged = git(repo, 'rev-parse', `atelier/${ended.id}`);
    assert.notEqual(salvaged, workflows.sha);
    const row = await pool.query(
      'SELECT base_sha, commit_sha, changed_files, lock_violations, diffstat FROM tasks WHERE id = $1',
      [ended.id],
    );
    assert.deepEqual(row.rows[0], {
      base_sha: ended.baseSha,
      commit_sha: salvaged,
      changed_files: ['in-progress.txt', 'late.txt'],
      lock_violations: ['in-progress.txt', 'late.txt'],
      diffstat: ` in-progress.txt | 1 +\n late.txt        | 1 +\n 2 files changed, 2 insertions(+)`,
    });
    assert.deepEqual(await store.diffInfo(ended.id).then((d) => d && [d.base_sha, d.sha]), [ended.baseSha, salvaged]);
    assert.match(String(await store.patch(ended.id)), /\+written after the last recorded commit/);
  });

  it('leaves a worktree alone while its task has only just ended: its workflow removes it', async () => {
    const { janitor, task } = worker(join(dir, 'worktrees-settling'));
    const ended = await task('succeeded');
    await pool.query('UPDATE tasks SET finished_at = clock_timestamp() WHERE id = $1', [ended.id]);
    assert.deepEqual(await janitor.sweepOnce(), []);
    assert.ok(existsSync(join(ended.path, 'in-progress.txt')));
    await pool.query(`UPDATE tasks SET finished_at = clock_timestamp() - interval '10 minutes' WHERE id = $1`, [
      ended.id,
    ]);
    assert.deepEqual(await janitor.sweepOnce(), [ended.id]);
  });
});
