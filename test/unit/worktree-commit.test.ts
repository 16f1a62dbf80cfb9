import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { gitVia, type Git } from '../../activities/git/git';
import { branchForTask, createWorktreeActivities, taskWorkSaver } from '../../activities/git/worktree.activities';
import { git as sh, initRepo } from '../support/git';
import { waitFor } from '../support/wait-for';

const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

/** What the agent's (or a killed git's) commands leave behind: git's index lock, as a SIGKILL leaves it. */
const leaveIndexLock = (worktree: string): void =>
  writeFileSync(resolve(worktree, sh(worktree, 'rev-parse', '--git-path', 'index.lock')), '');

/** The paths committed on a branch, as git lists them (a submodule or a link to another repository included). */
const filesOn = (repo: string, ref: string): string[] => sh(repo, 'ls-tree', '-r', '--name-only', ref).split('\n');

describe('committing what an agent left in its worktree', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktree-commit-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fresh repository, a worker's activities on it, and a prepared worktree for task `taskId`. */
  const prepared = async (taskId: string) => {
    const repo = join(dir, taskId);
    initRepo(repo);
    const a = createWorktreeActivities({ worktreeRoot: join(dir, `${taskId}-worktrees`), workerQueue: 'agents@a' });
    const wt = await run(a.prepareWorktree, { taskId, repoPath: repo });
    const commit = () =>
      run(a.commitWorktree, { taskId, agent: 'claude', worktreePath: wt.worktreePath, baseSha: wt.baseSha });
    return { repo, wt, commit };
  };

  it('commits over an index lock a killed git left, from the agent activity and from the workflow', async () => {
    const { repo, wt, commit } = await prepared('task-lock');
    writeFileSync(join(wt.worktreePath, 'done.txt'), 'the agent succeeded\n');
    leaveIndexLock(wt.worktreePath);
    assert.equal(await taskWorkSaver()(wt.worktreePath, 'task-lock', 'claude'), true);
    assert.equal(sh(repo, 'show', 'atelier/task-lock:done.txt'), 'the agent succeeded');

    writeFileSync(join(wt.worktreePath, 'more.txt'), 'a failed attempt’s work\n');
    leaveIndexLock(wt.worktreePath);
    const committed = await commit();
    assert.equal(committed.committed, true);
    assert.deepEqual(committed.changedFiles, ['done.txt', 'more.txt']);
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-lock'), committed.sha);
  });

  /** A git whose `add` hangs until its signal aborts (a git stuck on a lock, a slow disk); `hung` once it does. */
  const hangingAdd = () => {
    const real = gitVia();
    const state = { hung: false };
    const git: Git = (cwd, args, signal) => {
      if (args[0] !== 'add') return real(cwd, args, signal);
      state.hung = true;
      return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
    };
    return { git, state };
  };

  /** 'stopped' when `saving` rejects within 10 seconds, 'committed' when it resolves, else 'still running'. */
  const outcomeOf = async (saving: Promise<unknown>): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 10_000)));
    const settled = saving.then(
      () => 'committed',
      () => 'stopped',
    );
    return Promise.race([settled, stuck]).finally(() => clearTimeout(timer));
  };

  it('stops the agent activity’s commit when the activity is cancelled, and frees the worktree', async () => {
    const { repo, wt, commit } = await prepared('task-saver-hung');
    writeFileSync(join(wt.worktreePath, 'done.txt'), 'the agent succeeded\n');
    const { git, state } = hangingAdd();
    const agentActivity = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const saving = agentActivity.run(() => taskWorkSaver(git)(wt.worktreePath, 'task-saver-hung', 'claude'));
    await waitFor('git add to hang', () => state.hung);
    agentActivity.cancel();
    assert.equal(await outcomeOf(saving), 'stopped', 'the commit stops with its activity');
    // The workflow's commit gets the worktree.
    const committed = await commit();
    assert.deepEqual([committed.committed, committed.changedFiles], [true, ['done.txt']]);
    assert.equal(sh(repo, 'show', 'atelier/task-saver-hung:done.txt'), 'the agent succeeded');
  });

  it('stops the commit’s git after its timeout outside an activity', async () => {
    const { wt } = await prepared('task-saver-timeout');
    writeFileSync(join(wt.worktreePath, 'done.txt'), 'the agent succeeded\n');
    const saving = taskWorkSaver(hangingAdd().git, 200)(wt.worktreePath, 'task-saver-timeout', 'claude');
    assert.equal(await outcomeOf(saving), 'stopped');
  });

  it('commits over a branch lock and a HEAD lock a killed git left while it moved the task’s branch', async () => {
    const { repo, wt, commit } = await prepared('task-ref-lock');
    const leaveLock = (path: string) =>
      writeFileSync(resolve(wt.worktreePath, sh(wt.worktreePath, 'rev-parse', '--git-path', path)), '');
    writeFileSync(join(wt.worktreePath, 'done.txt'), 'the agent succeeded\n');
    leaveLock('refs/heads/atelier/task-ref-lock.lock');
    assert.equal(await taskWorkSaver()(wt.worktreePath, 'task-ref-lock', 'claude'), true);
    assert.equal(sh(repo, 'show', 'atelier/task-ref-lock:done.txt'), 'the agent succeeded');

    writeFileSync(join(wt.worktreePath, 'more.txt'), 'a failed attempt’s work\n');
    leaveLock('HEAD.lock');
    const committed = await commit();
    assert.equal(committed.committed, true);
    assert.deepEqual(committed.changedFiles, ['done.txt', 'more.txt']);
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-ref-lock'), committed.sha);
  });

  it('leaves an index lock a live git took while it commits, and fails to be retried', async () => {
    const { repo, wt } = await prepared('task-live-lock');
    writeFileSync(join(wt.worktreePath, 'done.txt'), 'the agent succeeded\n');
    const lock = resolve(wt.worktreePath, sh(wt.worktreePath, 'rev-parse', '--git-path', 'index.lock'));
    // Another git takes the index once this commit has begun: just before its `add`.
    const real = gitVia();
    let taken = false;
    const beside: Git = (cwd, args, signal) => {
      if (args[0] === 'add' && !taken) {
        taken = true;
        writeFileSync(lock, 'a live git');
      }
      return real(cwd, args, signal);
    };
    await assert.rejects(taskWorkSaver(beside)(wt.worktreePath, 'task-live-lock', 'claude'), (err: unknown) => {
      assert.ok(!(err instanceof ApplicationFailure), 'retried');
      assert.match(String(err), /index\.lock/);
      return true;
    });
    assert.equal(readFileSync(lock, 'utf8'), 'a live git', 'its lock stays');
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-live-lock'), wt.baseSha, 'nothing was committed');
  });

  it('refuses for good a worktree whose .git the agent removed, and leaves the repository around it alone', async () => {
    // The worktree root lies inside a checkout of the user's: git, finding no repository in the
    // worktree, would look up and find that one.
    const outer = join(dir, 'outer');
    initRepo(outer);
    const repo = join(dir, 'task-no-git');
    initRepo(repo);
    const a = createWorktreeActivities({ worktreeRoot: join(outer, 'worktrees'), workerQueue: 'agents@a' });
    const wt = await run(a.prepareWorktree, { taskId: 'task-no-git', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'work.txt'), 'the agent’s work\n');
    rmSync(join(wt.worktreePath, '.git'));
    const err = await run(a.commitWorktree, {
      taskId: 'task-no-git',
      agent: 'claude',
      worktreePath: wt.worktreePath,
      baseSha: wt.baseSha,
    }).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'invalid_input', String(err));
    assert.match(err.message, /is no longer a git worktree of its own .*finds the repository .*outer above it/);
    assert.equal(sh(outer, 'symbolic-ref', 'HEAD'), 'refs/heads/main', 'the user’s checkout stays on its branch');
    assert.equal(sh(outer, 'for-each-ref', 'refs/heads/atelier'), '');
    assert.equal(sh(outer, 'rev-list', '--count', 'HEAD'), '1');
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-no-git'), wt.baseSha);
  });

  it('commits the work beside repositories the agent made of its own, and names those as not committed', async () => {
    const { repo, wt, commit } = await prepared('task-nested');
    writeFileSync(join(wt.worktreePath, 'real-work.txt'), 'work\n');
    // `git init` with no commit yet, and a clone (a repository with commits).
    const fresh = join(wt.worktreePath, 'vendor', 'fresh');
    mkdirSync(fresh, { recursive: true });
    sh(fresh, 'init', '--quiet');
    writeFileSync(join(fresh, 'x.txt'), 'x\n');
    const cloned = join(wt.worktreePath, 'cloned');
    initRepo(cloned);
    // The agent activity commits first, then the workflow.
    assert.equal(await taskWorkSaver()(wt.worktreePath, 'task-nested', 'claude'), true);
    const committed = await commit();
    assert.equal(committed.committed, false, 'the agent activity committed it all');
    assert.deepEqual(committed.changedFiles, ['real-work.txt']);
    assert.deepEqual(filesOn(repo, 'atelier/task-nested'), ['README.md', 'real-work.txt'], 'no link to the clone');
    assert.match(committed.diffstat, /^ not committed \(.*\): cloned\/, vendor\/fresh\/\n real-work\.txt \| 1 \+/);
  });

  /** A repository `name` with the repository `libName` added as a submodule at each of `paths` (uncommitted). */
  const withSubmodules = (name: string, libName: string, paths: string[]) => {
    const lib = join(dir, libName);
    initRepo(lib);
    const repo = join(dir, name);
    initRepo(repo);
    for (const path of paths) sh(repo, '-c', 'protocol.file.allow=always', 'submodule', 'add', '--quiet', lib, path);
    return { lib, repo };
  };

  it('names a submodule changed inside, and files in a submodule not checked out, and commits the rest', async () => {
    const { repo } = withSubmodules('task-sub', 'lib', ['lib', 'docs']);
    sh(repo, 'commit', '--quiet', '-m', 'submodules');
    const a = createWorktreeActivities({ worktreeRoot: join(dir, 'task-sub-worktrees'), workerQueue: 'agents@a' });
    const wt = await run(a.prepareWorktree, { taskId: 'task-sub', repoPath: repo });
    const commit = () =>
      run(a.commitWorktree, {
        taskId: 'task-sub',
        agent: 'claude',
        worktreePath: wt.worktreePath,
        baseSha: wt.baseSha,
      });
    // The agent checks out `lib` and changes a file in it; `docs` stays an empty folder, where it writes.
    sh(wt.worktreePath, '-c', 'protocol.file.allow=always', 'submodule', 'update', '--quiet', '--init', 'lib');
    writeFileSync(join(wt.worktreePath, 'lib', 'README.md'), 'changed inside the submodule\n');
    writeFileSync(join(wt.worktreePath, 'docs', 'guide.md'), 'in a folder git ignores\n');

    const nothingElse = await commit();
    assert.equal(nothingElse.committed, false);
    assert.equal(nothingElse.sha, wt.baseSha);
    assert.equal(
      nothingElse.diffstat,
      " not committed (a repository of its own, or a submodule's own changes): lib, docs",
    );

    writeFileSync(join(wt.worktreePath, 'app.txt'), 'the rest of the work\n');
    const rest = await commit();
    assert.equal(rest.committed, true);
    assert.deepEqual(rest.changedFiles, ['app.txt']);
    assert.match(rest.diffstat, /: lib, docs\n app\.txt \| 1 \+/);
  });

  it('sees a submodule bump the repository hides (ignore = all, diff settings of the user), in locks, diffstat and patch', async () => {
    const { lib, repo } = withSubmodules('task-hidden-sub', 'hidden-lib', ['vendor/lib']);
    sh(repo, 'config', '--file', '.gitmodules', 'submodule.vendor/lib.ignore', 'all');
    sh(repo, 'add', '.gitmodules');
    sh(repo, 'commit', '--quiet', '-m', 'a submodule git is told to ignore');
    // Settings of the user's that hide a bump from `diff --cached` and make the patch one git apply drops.
    sh(repo, 'config', 'diff.ignoreSubmodules', 'all');
    sh(repo, 'config', 'diff.submodule', 'log');
    const patches: (Buffer | null)[] = [];
    const a = createWorktreeActivities({
      worktreeRoot: join(dir, 'task-hidden-sub-worktrees'),
      workerQueue: 'agents@a',
      store: {
        recorded: async () => undefined,
        recordCommit: async (_taskId, _commit, patch) => void patches.push(patch),
      },
    });
    const wt = await run(a.prepareWorktree, { taskId: 'task-hidden-sub', repoPath: repo });
    const commit = () =>
      run(a.commitWorktree, {
        taskId: 'task-hidden-sub',
        agent: 'claude',
        worktreePath: wt.worktreePath,
        baseSha: wt.baseSha,
        locks: ['src/**'],
      });
    /** A new commit of the library, as the submodule's link in the worktree's index (`git add vendor/lib`). */
    const bump = (message: string): string => {
      sh(lib, 'commit', '--quiet', '--allow-empty', '-m', message);
      const sha = sh(lib, 'rev-parse', 'HEAD');
      sh(wt.worktreePath, 'update-index', '--cacheinfo', `160000,${sha},vendor/lib`);
      return sha;
    };

    // The agent commits a bump itself.
    const first = bump('first bump');
    // --allow-empty: git's own check of what is staged ignores the submodule too.
    sh(wt.worktreePath, 'commit', '--quiet', '--allow-empty', '-m', 'bump the library');
    const committed = await commit();
    assert.deepEqual([committed.changedFiles, committed.lockViolations], [['vendor/lib'], ['vendor/lib']]);
    assert.match(committed.diffstat, /vendor\/lib \| 2 \+-/);
    assert.match(String(patches.at(-1)), new RegExp(`\\+Subproject commit ${first}`));

    // It leaves one staged: the commit takes it.
    const second = bump('second bump');
    const staged = await commit();
    assert.equal(staged.committed, true, 'the staged bump is committed');
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-hidden-sub:vendor/lib'), second);
    assert.match(String(patches.at(-1)), new RegExp(`\\+Subproject commit ${second}`));
  });

  it('ends on the task’s branch the commits and changes of an agent that switched to another branch', async () => {
    const { repo, wt, commit } = await prepared('task-switch');
    sh(wt.worktreePath, 'switch', '--quiet', '-c', 'fix/x');
    writeFileSync(join(wt.worktreePath, 'committed.txt'), 'the agent committed this\n');
    sh(wt.worktreePath, 'add', '-A');
    sh(wt.worktreePath, 'commit', '--quiet', '-m', 'the agent’s own commit');
    writeFileSync(join(wt.worktreePath, 'left.txt'), 'and left this\n');

    const committed = await commit();
    assert.equal(committed.branch, branchForTask('task-switch'));
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-switch'), committed.sha);
    assert.deepEqual(filesOn(repo, committed.sha), ['README.md', 'committed.txt', 'left.txt']);
    assert.equal(sh(wt.worktreePath, 'symbolic-ref', 'HEAD'), 'refs/heads/atelier/task-switch');
    assert.equal(sh(wt.worktreePath, 'status', '--porcelain'), '');

    // Then to a detached HEAD, committing there too.
    sh(wt.worktreePath, 'switch', '--quiet', '--detach');
    writeFileSync(join(wt.worktreePath, 'detached.txt'), 'committed on a detached HEAD\n');
    sh(wt.worktreePath, 'add', '-A');
    sh(wt.worktreePath, 'commit', '--quiet', '-m', 'detached');
    const again = await commit();
    assert.equal(again.committed, false);
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-switch'), again.sha);
    assert.deepEqual(again.changedFiles, ['committed.txt', 'detached.txt', 'left.txt']);
  });

  it('fails for good, naming the branch, when the agent’s HEAD does not contain the task branch’s commits', async () => {
    const { repo, wt, commit } = await prepared('task-diverged');
    writeFileSync(join(wt.worktreePath, 'first.txt'), 'an earlier attempt’s work\n');
    const first = await commit();
    sh(wt.worktreePath, 'switch', '--quiet', '-c', 'elsewhere', wt.baseSha);
    writeFileSync(join(wt.worktreePath, 'other.txt'), 'work that leaves the first behind\n');
    sh(wt.worktreePath, 'add', 'other.txt');
    sh(wt.worktreePath, 'commit', '--quiet', '-m', 'beside the first');

    const err = await commit().then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'invalid_input', String(err));
    assert.match(err.message, /on branch elsewhere, which does not contain the commits of atelier\/task-diverged/);
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-diverged'), first.sha, 'the task branch stays');
    assert.equal(sh(wt.worktreePath, 'rev-parse', '--abbrev-ref', 'HEAD'), 'elsewhere', 'the work stays where it is');
  });

  it('goes back to the task’s branch when the agent left HEAD on an older commit of it, with its new files', async () => {
    const { repo, wt, commit } = await prepared('task-went-back');
    writeFileSync(join(wt.worktreePath, 'first.txt'), 'committed on the branch\n');
    const first = await commit();
    sh(wt.worktreePath, 'switch', '--quiet', '--detach', wt.baseSha);
    writeFileSync(join(wt.worktreePath, 'later.txt'), 'written after going back\n');
    const committed = await commit();
    assert.ok(committed.committed);
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-went-back~1'), first.sha, 'on top of the first');
    assert.deepEqual(filesOn(repo, 'atelier/task-went-back').sort(), ['README.md', 'first.txt', 'later.txt'].sort());
  });
});
