import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { GitOutputTooLarge, gitVia, type Git } from '../../activities/git/git';
import { baseRefForTask, branchForTask, createWorktreeActivities } from '../../activities/git/worktree.activities';
import { WORKTREE_GONE } from '../../workflows/definitions';
import { git as sh, initRepo } from '../support/git';
import { waitFor } from '../support/wait-for';

const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

type Activities = ReturnType<typeof createWorktreeActivities>;

/** Commits what agent `claude` left in a prepared worktree, as the workflow does once an attempt ends. */
const commitAgentWork = (
  a: Activities,
  wt: { worktreePath: string; baseSha: string },
  taskId: string,
  locks?: string[],
): Promise<Awaited<ReturnType<Activities['commitWorktree']>>> =>
  run(a.commitWorktree, {
    taskId,
    agent: 'claude',
    worktreePath: wt.worktreePath,
    baseSha: wt.baseSha,
    ...(locks && { locks }),
  });

describe('worktree activities against real git repositories', () => {
  let dir: string;
  let repo: string;
  let root: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktrees-'));
    repo = join(dir, 'repo');
    root = join(dir, 'worktrees');
    initRepo(repo);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Tasks that ended, for the janitor's sweep. */
  const ended = new Set<string>();
  const activities = () =>
    createWorktreeActivities({
      worktreeRoot: root,
      workerQueue: 'agents@worker-1',
      endedTasks: {
        ended: async (ids) => ids.filter((id) => ended.has(id)).map((id) => ({ id, repoPath: repo, longEnded: false })),
      },
    });
  const userCheckoutUntouched = () => {
    assert.equal(sh(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
    assert.equal(sh(repo, 'status', '--porcelain'), '');
    assert.equal(readFileSync(join(repo, 'README.md'), 'utf8'), 'hello\n');
  };

  it('prepares a worktree on atelier/<task>, commits the agent’s changes there, removes it and keeps the branch', async () => {
    const a = activities();
    const base = sh(repo, 'rev-parse', 'HEAD');
    const wt = await run(a.prepareWorktree, { taskId: 'task-1', repoPath: repo });
    assert.deepEqual(wt, {
      workerQueue: 'agents@worker-1',
      worktreePath: join(root, 'task-1'),
      branch: 'atelier/task-1',
      baseSha: base,
      headSha: base,
    });
    assert.equal(sh(wt.worktreePath, 'rev-parse', '--abbrev-ref', 'HEAD'), branchForTask('task-1'));
    // Preparing again (a retried activity) finds the same worktree, and what was left in it.
    assert.deepEqual(await run(a.prepareWorktree, { taskId: 'task-1', repoPath: repo }), {
      ...wt,
      keptWorkOf: [wt.worktreePath],
    });

    writeFileSync(join(wt.worktreePath, 'README.md'), 'hello\nworld\n');
    writeFileSync(join(wt.worktreePath, 'new.txt'), 'new\n');
    const commit = await run(a.commitWorktree, {
      taskId: 'task-1',
      agent: 'claude',
      worktreePath: wt.worktreePath,
      baseSha: base,
    });
    assert.equal(commit.committed, true);
    assert.deepEqual(commit.changedFiles, ['README.md', 'new.txt']);
    assert.match(commit.diffstat, /2 files changed, 2 insertions/);
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-1'), commit.sha);
    assert.match(sh(repo, 'log', '-1', '--format=%B', commit.sha), /task task-1 \(agent claude\)/);
    // Committing again changes nothing.
    const again = await run(a.commitWorktree, {
      taskId: 'task-1',
      agent: 'claude',
      worktreePath: wt.worktreePath,
      baseSha: base,
    });
    assert.equal(again.committed, false);
    assert.equal(again.sha, commit.sha);
    userCheckoutUntouched();

    await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
    await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
    assert.ok(!existsSync(wt.worktreePath));
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-1'), commit.sha, 'the branch stays');
    assert.ok(!sh(repo, 'worktree', 'list').includes('task-1'));
    userCheckoutUntouched();
  });

  it('commits nothing when the agent only left files the repository ignores', async () => {
    const a = activities();
    const wt = await run(a.prepareWorktree, { taskId: 'task-ignored', repoPath: repo });
    const commit = () => run(a.commitWorktree, { taskId: 'task-ignored', agent: 'claude', ...wt });
    writeFileSync(join(wt.worktreePath, '.gitignore'), 'build/\n');
    const first = await commit();
    assert.deepEqual([first.committed, first.changedFiles], [true, ['.gitignore']]);
    mkdirSync(join(wt.worktreePath, 'build'));
    writeFileSync(join(wt.worktreePath, 'build', 'out.js'), 'ignored\n');
    const again = await commit();
    assert.equal(again.committed, false);
    assert.equal(again.sha, first.sha);
    await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
    assert.ok(!sh(repo, 'worktree', 'list').includes('task-ignored'));
  });

  it("never takes a machine's old copy for the worktree another machine made again under the same path", async () => {
    // Two machines share the repository but not their disks, and make a task's worktree at the same
    // path. Each one's disk is stood for by renaming the directory in and out of place.
    const onHost = (host: string) =>
      createWorktreeActivities({
        worktreeRoot: root,
        workerQueue: `agents@${host}`,
        host,
        endedTasks: {
          ended: async (ids) =>
            ids.filter((id) => ended.has(id)).map((id) => ({ id, repoPath: repo, longEnded: false })),
        },
      });
    const [a, b] = [onHost('machine-a'), onHost('machine-b')];
    const taskId = 'task-two-disks';
    const first = await run(a.prepareWorktree, { taskId, repoPath: repo });
    writeFileSync(join(first.worktreePath, 'notes.txt'), 'a wrote this\n');
    await commitAgentWork(a, first, taskId);
    // Machine a is cut off; the task moves to machine b, which sees no directory there.
    renameSync(first.worktreePath, `${first.worktreePath}.disk-a`);
    const moved = await run(b.prepareWorktree, { taskId, repoPath: repo });
    assert.equal(moved.worktreePath, first.worktreePath, 'the same path on the other machine');
    writeFileSync(join(moved.worktreePath, 'notes.txt'), 'a wrote this\nb added this\n');
    const bWork = await commitAgentWork(b, moved, taskId);
    // Machine b is lost in turn, and the task comes back to machine a, whose old copy is still there.
    renameSync(moved.worktreePath, `${moved.worktreePath}.disk-b`);
    renameSync(`${first.worktreePath}.disk-a`, first.worktreePath);
    writeFileSync(join(first.worktreePath, 'unsaved.txt'), 'a wrote this before it was cut off\n');
    const back = await run(a.prepareWorktree, { taskId, repoPath: repo });
    assert.equal(back.headSha, bWork.sha, "it continues from b's work");
    const asideOfA = readdirSync(root).filter((name) => name.startsWith(`${taskId}.orphan-`));
    assert.deepEqual(
      asideOfA.map((name) => readFileSync(join(root, name, 'unsaved.txt'), 'utf8')),
      ['a wrote this before it was cut off\n'],
      "a's old copy is set aside, not deleted",
    );
    assert.equal(readFileSync(join(back.worktreePath, 'notes.txt'), 'utf8'), 'a wrote this\nb added this\n');
    assert.equal(sh(back.worktreePath, 'status', '--porcelain'), '', 'nothing of the old copy is left to commit');
    const after = await commitAgentWork(a, back, taskId);
    assert.equal(after.committed, false);
    assert.equal(sh(repo, 'rev-parse', branchForTask(taskId)), bWork.sha, "b's work stays on the branch");

    // Once the task ends, machine b's janitor finds its own old copy under a's registration: it leaves it.
    ended.add(taskId);
    renameSync(back.worktreePath, `${back.worktreePath}.disk-a`);
    renameSync(`${moved.worktreePath}.disk-b`, moved.worktreePath);
    assert.deepEqual(await b.sweepWorktrees({ repoPath: repo, ended: [taskId] }), { removed: [], kept: [] });
    assert.equal(sh(repo, 'rev-parse', branchForTask(taskId)), bWork.sha, 'nothing was committed over it');
    rmSync(moved.worktreePath, { recursive: true, force: true });
    renameSync(`${back.worktreePath}.disk-a`, back.worktreePath);
    assert.deepEqual(await a.sweepWorktrees({ repoPath: repo, ended: [taskId] }), { removed: [taskId], kept: [] });
  });

  it('salvages: a worktree lost with its worker is remade from the branch, with the committed work', async () => {
    const a = activities();
    const wt = await run(a.prepareWorktree, { taskId: 'task-2', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'half.txt'), 'half done\n');
    const commit = await run(a.commitWorktree, {
      taskId: 'task-2',
      agent: 'codex',
      worktreePath: wt.worktreePath,
      baseSha: wt.baseSha,
    });
    // The worker's disk is gone (another machine takes over): no clean removal, just no directory.
    rmSync(wt.worktreePath, { recursive: true, force: true });
    const other = createWorktreeActivities({ worktreeRoot: join(dir, 'other-worker'), workerQueue: 'agents@worker-2' });
    const again = await run(other.prepareWorktree, { taskId: 'task-2', repoPath: repo });
    assert.equal(again.workerQueue, 'agents@worker-2');
    assert.equal(again.headSha, commit.sha);
    assert.equal(again.baseSha, wt.baseSha);
    assert.equal(readFileSync(join(again.worktreePath, 'half.txt'), 'utf8'), 'half done\n');
    await run(other.removeWorktree, { repoPath: repo, worktreePath: again.worktreePath });
    userCheckoutUntouched();
  });

  it('takes over the worktree a lost worker left on a shared disk, committing what it left uncommitted', async () => {
    const a = activities();
    const wt = await run(a.prepareWorktree, { taskId: 'task-3', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'unsaved.txt'), 'the agent wrote this, then its worker died\n');
    // Another worker on the same machine (its own worktree root) prepares the task after the first one died.
    const other = createWorktreeActivities({ worktreeRoot: join(dir, 'third-worker'), workerQueue: 'agents@worker-3' });
    const moved = await run(other.prepareWorktree, { taskId: 'task-3', repoPath: repo });
    assert.notEqual(moved.worktreePath, wt.worktreePath);
    assert.ok(!existsSync(wt.worktreePath), 'the lost worker’s worktree is removed');
    assert.equal(
      readFileSync(join(moved.worktreePath, 'unsaved.txt'), 'utf8'),
      'the agent wrote this, then its worker died\n',
    );
    assert.match(sh(repo, 'log', '-1', '--format=%s', 'atelier/task-3'), /salvaged from a lost worker's worktree/);
    assert.deepEqual(moved.keptWorkOf, [wt.worktreePath], 'it says whose work it carried over');
    assert.equal(moved.baseSha, wt.baseSha);
    await run(other.removeWorktree, { repoPath: repo, worktreePath: moved.worktreePath });
    userCheckoutUntouched();
  });

  it('remakes a worktree that a crash left half-made (still locked by git), committing nothing from it', async () => {
    const a = activities();
    const wt = await run(a.prepareWorktree, { taskId: 'task-5', repoPath: repo });
    const head = sh(repo, 'rev-parse', 'atelier/task-5');
    // What `git worktree add` leaves when it is killed mid-checkout: locked, files missing.
    sh(repo, 'worktree', 'lock', '--reason', 'initializing', wt.worktreePath);
    rmSync(join(wt.worktreePath, 'README.md'));
    const again = await run(a.prepareWorktree, { taskId: 'task-5', repoPath: repo });
    assert.equal(readFileSync(join(again.worktreePath, 'README.md'), 'utf8'), 'hello\n', 'remade whole');
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-5'), head, 'nothing was committed from the broken tree');

    sh(repo, 'worktree', 'lock', '--reason', 'initializing', again.worktreePath);
    rmSync(join(again.worktreePath, 'README.md'));
    const other = createWorktreeActivities({
      worktreeRoot: join(dir, 'fourth-worker'),
      workerQueue: 'agents@worker-4',
    });
    const moved = await run(other.prepareWorktree, { taskId: 'task-5', repoPath: repo });
    assert.equal(readFileSync(join(moved.worktreePath, 'README.md'), 'utf8'), 'hello\n');
    assert.equal(sh(repo, 'rev-parse', 'atelier/task-5'), head, 'a locked stale worktree is removed, not committed');
    assert.ok(!existsSync(again.worktreePath));
    await run(other.removeWorktree, { repoPath: repo, worktreePath: moved.worktreePath });
    userCheckoutUntouched();
  });

  it('keeps the base a branch started from, even after its ref moved', async () => {
    const a = activities();
    sh(repo, 'branch', 'moving', 'main');
    const first = await run(a.prepareWorktree, { taskId: 'task-4', repoPath: repo, ref: 'moving' });
    await run(a.removeWorktree, { repoPath: repo, worktreePath: first.worktreePath });
    const moving = mkdtempSync(join(dir, 'moving-'));
    sh(repo, 'worktree', 'add', moving, 'moving');
    writeFileSync(join(moving, 'later.txt'), 'later\n');
    sh(moving, 'add', '-A');
    sh(moving, 'commit', '-qm', 'later');
    sh(repo, 'worktree', 'remove', moving);
    const again = await run(a.prepareWorktree, { taskId: 'task-4', repoPath: repo, ref: 'moving' });
    assert.equal(again.baseSha, first.baseSha, 'a retry diffs against where the branch started');
    assert.notEqual(sh(repo, 'rev-parse', 'moving'), first.baseSha);
    await run(a.removeWorktree, { repoPath: repo, worktreePath: again.worktreePath });
  });

  it("stops its git commands when the activity is cancelled or times out, and frees the repository's lock", async () => {
    const git = gitVia();
    let hung = true;
    // The first worktree list hangs until its signal aborts, as a git stuck on a lock would.
    const hanging: Git = (cwd, args, signal) => {
      if (!(hung && args[0] === 'worktree' && args[1] === 'list')) return git(cwd, args, signal);
      hung = false;
      return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
    };
    const a = createWorktreeActivities({ worktreeRoot: root, workerQueue: 'agents@worker-1', git: hanging });
    const cancelled = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const first = cancelled.run(a.prepareWorktree, { taskId: 'task-hung', repoPath: repo });
    await waitFor('the git command to hang', () => !hung);
    cancelled.cancel();
    await assert.rejects(first);
    // The next preparation on the same repository gets its lock.
    const prepared = await run(a.prepareWorktree, { taskId: 'task-hung', repoPath: repo });
    assert.equal(sh(prepared.worktreePath, 'rev-parse', '--abbrev-ref', 'HEAD'), branchForTask('task-hung'));
    await run(a.removeWorktree, { repoPath: repo, worktreePath: prepared.worktreePath });
  });

  it('keeps the base over the lock of its ref that a killed preparation left', async () => {
    writeFileSync(resolve(repo, sh(repo, 'rev-parse', '--git-path', `${baseRefForTask('task-base-lock')}.lock`)), '');
    const prepared = await run(activities().prepareWorktree, { taskId: 'task-base-lock', repoPath: repo });
    assert.equal(sh(repo, 'rev-parse', baseRefForTask('task-base-lock')), prepared.baseSha);
    assert.equal(prepared.baseSha, sh(repo, 'rev-parse', 'main'));
    await run(activities().removeWorktree, { repoPath: repo, worktreePath: prepared.worktreePath });
  });

  it('keeps the base another preparation of the task kept first, while this one was working it out', async () => {
    const other = sh(repo, 'commit-tree', '-m', 'another base', `${sh(repo, 'rev-parse', 'main')}^{tree}`);
    const git = gitVia();
    // The other preparation keeps its base just before this one tries to.
    const racing: Git = async (cwd, args) => {
      if (args[0] === 'update-ref') sh(repo, 'update-ref', baseRefForTask('task-race'), other);
      return git(cwd, args);
    };
    const a = createWorktreeActivities({ worktreeRoot: root, workerQueue: 'agents@worker-1', git: racing });
    const prepared = await run(a.prepareWorktree, { taskId: 'task-race', repoPath: repo });
    assert.equal(prepared.baseSha, other);
    assert.equal(sh(prepared.worktreePath, 'rev-parse', 'HEAD'), other, 'the branch starts from the kept base');
    await run(a.removeWorktree, { repoPath: repo, worktreePath: prepared.worktreePath });
  });

  it('starts a branch from several commits merged, and refuses for good when they conflict', async () => {
    const a = activities();
    const commitOn = async (taskId: string, file: string, text: string): Promise<string> => {
      const wt = await run(a.prepareWorktree, { taskId, repoPath: repo });
      writeFileSync(join(wt.worktreePath, file), text);
      const c = await run(a.commitWorktree, { taskId, agent: 'x', worktreePath: wt.worktreePath, baseSha: wt.baseSha });
      await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
      return c.sha;
    };
    const left = await commitOn('dep-left', 'left.txt', 'left\n');
    const right = await commitOn('dep-right', 'right.txt', 'right\n');
    const joined = await run(a.prepareWorktree, { taskId: 'join', repoPath: repo, ref: left, merge: [right] });
    assert.equal(readFileSync(join(joined.worktreePath, 'left.txt'), 'utf8'), 'left\n');
    assert.equal(readFileSync(join(joined.worktreePath, 'right.txt'), 'utf8'), 'right\n');
    assert.deepEqual(sh(repo, 'rev-list', '--parents', '-1', joined.baseSha).split(' ').slice(1), [left, right]);
    writeFileSync(join(joined.worktreePath, 'own.txt'), 'own\n');
    const own = await run(a.commitWorktree, {
      taskId: 'join',
      agent: 'x',
      worktreePath: joined.worktreePath,
      baseSha: joined.baseSha,
    });
    assert.deepEqual(own.changedFiles, ['own.txt'], 'the dependencies’ work is the base, not the task’s change');
    await run(a.removeWorktree, { repoPath: repo, worktreePath: joined.worktreePath });

    const one = await commitOn('clash-1', 'README.md', 'one\n');
    const two = await commitOn('clash-2', 'README.md', 'two\n');
    const err = await run(a.prepareWorktree, { taskId: 'clash', repoPath: repo, ref: one, merge: [two] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable, String(err));
    assert.equal(err.type, 'merge_conflict');
    assert.match(err.message, /conflicts in README\.md/);
    assert.ok(!sh(repo, 'branch', '--list', 'atelier/clash').includes('clash'), 'no branch is made');
    userCheckoutUntouched();
  });

  it('names the first 20 files of a wide merge conflict and counts the rest', async () => {
    const a = activities();
    const files = Array.from({ length: 25 }, (_, i) => `clash-${String(i).padStart(2, '0')}.txt`);
    const commitAll = async (taskId: string, text: string): Promise<string> => {
      const wt = await run(a.prepareWorktree, { taskId, repoPath: repo });
      for (const file of files) writeFileSync(join(wt.worktreePath, file), text);
      const c = await run(a.commitWorktree, { taskId, agent: 'x', worktreePath: wt.worktreePath, baseSha: wt.baseSha });
      await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
      return c.sha;
    };
    const one = await commitAll('wide-1', 'one\n');
    const two = await commitAll('wide-2', 'two\n');
    const err = await run(a.prepareWorktree, { taskId: 'wide', repoPath: repo, ref: one, merge: [two] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure && err.type === 'merge_conflict', String(err));
    assert.ok(err.message.endsWith(`conflicts in ${files.slice(0, 20).join(', ')} and 5 more`), err.message);
  });

  it('keeps the repository sound under concurrent worktree operations', async () => {
    const a = activities();
    const ids = Array.from({ length: 6 }, (_, i) => `par-${i}`);
    const made = await Promise.all(ids.map((taskId) => run(a.prepareWorktree, { taskId, repoPath: repo })));
    assert.equal(new Set(made.map((m) => m.worktreePath)).size, ids.length);
    await Promise.all(made.map((m) => run(a.removeWorktree, { repoPath: repo, worktreePath: m.worktreePath })));
    sh(repo, 'fsck', '--no-progress');
    for (const id of ids) assert.ok(sh(repo, 'branch', '--list', `atelier/${id}`).includes(id));
    userCheckoutUntouched();
  });

  it('removes the registration too when a removal fails while another process changes the worktrees', async () => {
    const git = gitVia();
    let failed = false;
    // As when a worker on another machine is half-way through adding a worktree: git cannot read it.
    const racing: Git = (cwd, args, signal) => {
      if (failed || args[1] !== 'remove') return git(cwd, args, signal);
      failed = true;
      return Promise.reject(new Error('fatal: failed to read .git/worktrees/other/commondir'));
    };
    const a = createWorktreeActivities({ worktreeRoot: root, workerQueue: 'agents@worker-1', git: racing });
    const wt = await run(a.prepareWorktree, { taskId: 'remove-race', repoPath: repo });
    await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
    assert.ok(failed, 'the first removal failed');
    assert.ok(!existsSync(wt.worktreePath));
    assert.ok(!sh(repo, 'worktree', 'list', '--porcelain').includes(wt.worktreePath), 'no registration stays');
    // The branch is free again: the user can check it out, or delete it.
    sh(repo, 'branch', '-D', branchForTask('remove-race'));
    userCheckoutUntouched();
  });

  it('the janitor removes worktrees whose task ended, and keeps the others', async () => {
    const a = activities();
    const live = await run(a.prepareWorktree, { taskId: 'live', repoPath: repo });
    const dead = await run(a.prepareWorktree, { taskId: 'dead', repoPath: repo });
    writeFileSync(join(dead.worktreePath, 'left-behind.txt'), 'uncommitted\n');
    ended.add('dead');
    const swept = await run(a.sweepWorktrees, { repoPath: repo, ended: ['dead'] });
    assert.deepEqual(swept, { removed: ['dead'], kept: [] });
    assert.equal(sh(repo, 'show', 'atelier/dead:left-behind.txt'), 'uncommitted', 'its work is committed first');
    assert.ok(existsSync(live.worktreePath));
    assert.ok(!existsSync(dead.worktreePath));
    assert.ok(sh(repo, 'branch', '--list', 'atelier/dead').includes('dead'));
    await run(a.removeWorktree, { repoPath: repo, worktreePath: live.worktreePath });
  });

  it('refuses a directory that is not a git repository, for good', async () => {
    const err = await run(activities().prepareWorktree, { taskId: 'x', repoPath: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable, String(err));
  });
});

describe("worktree activities never touch what is not Atelier's", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktrees-own-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fresh repository, and a worker's activities with its own worktree root (every task it is asked about ended). */
  const fresh = (name: string) => {
    const repo = join(dir, name);
    initRepo(repo);
    const worker = (root: string) =>
      createWorktreeActivities({
        worktreeRoot: join(dir, `${name}-${root}`),
        workerQueue: `agents@${root}`,
        endedTasks: { ended: async (ids) => ids.map((id) => ({ id, repoPath: repo, longEnded: false })) },
      });
    return { repo, worker };
  };

  const refusal = (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );

  it('refuses for good a task id that is not one directory name, touching nothing outside the root', async () => {
    const { repo, worker } = fresh('path-task-id');
    const a = worker('a');
    const outside = join(dir, 'path-task-id-outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'not the worker’s\n');
    for (const taskId of ['../path-task-id-outside', '..', '.', '', 'a/b']) {
      const failure = await refusal(run(a.prepareWorktree, { taskId, repoPath: repo }));
      assert.ok(failure instanceof ApplicationFailure && failure.type === 'invalid_input', String(failure));
    }
    assert.equal(readFileSync(join(outside, 'keep.txt'), 'utf8'), 'not the worker’s\n');
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('path-task-id-outside')),
      ['path-task-id-outside'],
    );
  });

  it('sets aside, not deletes, a worktree whose .git the agent removed, when the task is prepared again', async () => {
    const { repo, worker } = fresh('dot-git-removed');
    const a = worker('a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-g', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'work.txt'), 'the agent’s work\n');
    rmSync(join(wt.worktreePath, '.git'));
    const failure = await refusal(commitAgentWork(a, wt, 'task-g'));
    assert.ok(failure instanceof ApplicationFailure && failure.type === 'invalid_input', String(failure));
    // The task is retried on the same worker.
    const again = await run(a.prepareWorktree, { taskId: 'task-g', repoPath: repo });
    assert.equal(again.worktreePath, wt.worktreePath);
    assert.ok(existsSync(join(again.worktreePath, '.git')), 'a worktree is made again');
    const workerRoot = join(dir, 'dot-git-removed-a');
    const aside = readdirSync(workerRoot).filter((name) => name.startsWith('task-g.orphan-'));
    assert.deepEqual(
      aside.map((name) => readFileSync(join(workerRoot, name, 'work.txt'), 'utf8')),
      ['the agent’s work\n'],
      'the broken worktree’s files are kept',
    );
  });

  it("refuses to prepare a task whose branch the user checked out, leaving the user's work as it is", async () => {
    const { repo, worker } = fresh('checked-out');
    const a = worker('a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-u', repoPath: repo });
    await run(a.removeWorktree, { repoPath: repo, worktreePath: wt.worktreePath });
    // The user looks at the task's work in their own checkout, and edits it.
    sh(repo, 'checkout', '--quiet', 'atelier/task-u');
    writeFileSync(join(repo, 'mine.txt'), 'the user is editing this\n');
    const err = await refusal(run(a.prepareWorktree, { taskId: 'task-u', repoPath: repo }));
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'invalid_input', String(err));
    assert.match(err.message, /branch atelier\/task-u is checked out at .*checked-out: check out another branch there/);
    assert.equal(readFileSync(join(repo, 'mine.txt'), 'utf8'), 'the user is editing this\n');
    assert.equal(sh(repo, 'status', '--porcelain'), '?? mine.txt', 'nothing was committed');
    assert.equal(sh(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'atelier/task-u');

    // So is a worktree of the user's own.
    sh(repo, 'checkout', '--quiet', 'main');
    const review = join(dir, 'review-checkout');
    sh(repo, 'worktree', 'add', '--quiet', review, 'atelier/task-u');
    await refusal(run(a.prepareWorktree, { taskId: 'task-u', repoPath: repo }));
    assert.ok(existsSync(join(review, 'README.md')), "the user's worktree stays");
    sh(repo, 'worktree', 'remove', review);

    // Even one the user named after the task, as Atelier names its own: it has no marker of Atelier's.
    const named = join(dir, 'review', 'task-u');
    sh(repo, 'worktree', 'add', '--quiet', named, 'atelier/task-u');
    writeFileSync(join(named, 'mine.txt'), 'reviewing\n');
    const again = await refusal(run(a.prepareWorktree, { taskId: 'task-u', repoPath: repo }));
    assert.match(String(again), /branch atelier\/task-u is checked out at .*review\/task-u/);
    assert.equal(readFileSync(join(named, 'mine.txt'), 'utf8'), 'reviewing\n', "the user's work stays");
    assert.equal(sh(named, 'status', '--porcelain'), '?? mine.txt', 'nothing was committed');
  });

  it('leaves alone the live worktrees of workers whose disks this one does not see', async () => {
    const { repo, worker } = fresh('unshared');
    const a = worker('a');
    const b = worker('b');
    const onA = await run(a.prepareWorktree, { taskId: 'task-a', repoPath: repo });
    writeFileSync(join(onA.worktreePath, 'work.txt'), 'done on a\n');
    // Worker b prepares another task while a's disk is not visible to it.
    const aRoot = join(dir, 'unshared-a');
    renameSync(aRoot, `${aRoot}.away`);
    try {
      const onB = await run(b.prepareWorktree, { taskId: 'task-b', repoPath: repo });
      await run(b.removeWorktree, { repoPath: repo, worktreePath: onB.worktreePath });
      assert.deepEqual(await run(b.sweepWorktrees, { repoPath: repo, ended: ['task-a', 'task-b'] }), {
        removed: [],
        kept: [],
      });
    } finally {
      renameSync(`${aRoot}.away`, aRoot);
    }
    const commit = await commitAgentWork(a, onA, 'task-a');
    assert.deepEqual([commit.committed, commit.changedFiles], [true, ['work.txt']]);
  });

  it('clears a lock file a killed git left before saving the work of a lost worker, and saves it', async () => {
    const { repo, worker } = fresh('stale-lock');
    const wt = await run(worker('a').prepareWorktree, { taskId: 'task-l', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'unsaved.txt'), 'work in progress\n');
    // The worker died in the middle of a commit: git's index lock stays behind.
    writeFileSync(resolve(wt.worktreePath, sh(wt.worktreePath, 'rev-parse', '--git-path', 'index.lock')), '');
    const moved = await run(worker('b').prepareWorktree, { taskId: 'task-l', repoPath: repo });
    assert.equal(readFileSync(join(moved.worktreePath, 'unsaved.txt'), 'utf8'), 'work in progress\n');
    assert.equal(sh(repo, 'show', 'atelier/task-l:unsaved.txt'), 'work in progress');
  });

  it('judges locks by every path a change touches: the old path of a rename, and names git would quote', async () => {
    const { repo, worker } = fresh('lock-paths');
    mkdirSync(join(repo, 'src', 'db'), { recursive: true });
    writeFileSync(join(repo, 'src', 'db', 'secret.ts'), 'export const secret = 1;\n');
    sh(repo, 'add', '-A');
    sh(repo, 'commit', '--quiet', '-m', 'db');
    const a = worker('a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-p', repoPath: repo });
    mkdirSync(join(wt.worktreePath, 'src', 'api'), { recursive: true });
    renameSync(join(wt.worktreePath, 'src', 'db', 'secret.ts'), join(wt.worktreePath, 'src', 'api', 'secret.ts'));
    writeFileSync(join(wt.worktreePath, 'src', 'api', 'café.ts'), 'export {};\n');
    const commit = await commitAgentWork(a, wt, 'task-p', ['src/api/**']);
    assert.deepEqual(commit.changedFiles, ['src/api/café.ts', 'src/api/secret.ts', 'src/db/secret.ts']);
    assert.deepEqual(commit.lockViolations, ['src/db/secret.ts']);
  });

  it('refuses a directory inside a repository, naming its top level', async () => {
    const { repo, worker } = fresh('inside');
    mkdirSync(join(repo, 'sub'));
    const err = await refusal(run(worker('a').prepareWorktree, { taskId: 'task-s', repoPath: join(repo, 'sub') }));
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'invalid_input', String(err));
    assert.match(err.message, /sub is inside the repository .*inside: give repo.path as .*inside$/);
    assert.equal(sh(repo, 'worktree', 'list').split('\n').length, 1, 'no worktree was made');
  });

  it('refuses for good, naming it, a branch of the user’s named atelier, beside which no task branch can be', async () => {
    const { repo, worker } = fresh('atelier-branch');
    sh(repo, 'branch', 'atelier');
    const err = await refusal(run(worker('a').prepareWorktree, { taskId: 'task-a', repoPath: repo }));
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'invalid_input', String(err));
    assert.match(err.message, /has a branch named atelier, so git cannot make the task's branch atelier\/task-a/);
    assert.equal(sh(repo, 'worktree', 'list').split('\n').length, 1, 'no worktree was made');
  });

  it('records the patch byte for byte, so that it applies to a file that is not UTF-8', async () => {
    const { repo } = fresh('latin1-patch');
    const recorded: (Buffer | null)[] = [];
    const a = createWorktreeActivities({
      worktreeRoot: join(dir, 'latin1-patch-a'),
      workerQueue: 'agents@a',
      store: {
        recorded: async () => undefined,
        recordCommit: async (_taskId, _commit, patch) => void recorded.push(patch),
      },
    });
    const wt = await run(a.prepareWorktree, { taskId: 'task-latin1', repoPath: repo });
    const latin1 = Buffer.from('caf\u00e9 cr\u00e8me\n', 'latin1');
    writeFileSync(join(wt.worktreePath, 'menu.txt'), latin1);
    await commitAgentWork(a, wt, 'task-latin1');
    const patch = recorded[0];
    assert.ok(patch instanceof Buffer, 'the patch is kept as bytes');
    assert.ok(patch.includes(latin1), 'with the file’s own bytes');
    // Applied at the base, it makes the file again, byte for byte.
    const patchFile = join(dir, 'latin1.patch');
    writeFileSync(patchFile, patch);
    sh(repo, 'apply', patchFile);
    assert.deepEqual(readFileSync(join(repo, 'menu.txt')), latin1);
  });

  it('gives the workflow the first 1000 changed files of a huge commit, and the store every one', async () => {
    const { repo } = fresh('huge-commit');
    const stored: string[][] = [];
    const a = createWorktreeActivities({
      worktreeRoot: join(dir, 'huge-commit-a'),
      workerQueue: 'agents@a',
      store: {
        recorded: async () => undefined,
        recordCommit: async (_taskId, commit) => void stored.push(commit.changedFiles),
      },
    });
    const wt = await run(a.prepareWorktree, { taskId: 'task-huge', repoPath: repo });
    mkdirSync(join(wt.worktreePath, 'vendor'));
    for (let i = 0; i < 1500; i++) writeFileSync(join(wt.worktreePath, 'vendor', `f${i}.txt`), `${i}\n`);
    const commit = await commitAgentWork(a, wt, 'task-huge', ['src/**']);
    assert.equal(stored[0]?.length, 1500);
    assert.equal(commit.changedFiles.length, 1000);
    assert.equal(commit.lockViolations.length, 1000);
    assert.deepEqual(commit.omitted, { changedFiles: 500, lockViolations: 500 });
    assert.deepEqual(commit.changedFiles, stored[0]?.slice(0, 1000));
    assert.match(commit.diffstat, /1500 files changed, 1500 insertions\(\+\)$/);
  });

  it('records a commit whose patch is too large to keep, without its patch, and does not fail', async () => {
    const { repo } = fresh('large-patch');
    const real = gitVia();
    const recorded: (Buffer | null)[] = [];
    const a = createWorktreeActivities({
      worktreeRoot: join(dir, 'large-patch-a'),
      workerQueue: 'agents@a',
      // git killed for printing too much, as it is past 64 MB.
      git: (cwd, args) => (args.includes('--binary') ? Promise.reject(new GitOutputTooLarge(args)) : real(cwd, args)),
      store: {
        recorded: async () => undefined,
        recordCommit: async (_taskId, _commit, patch) => void recorded.push(patch),
      },
    });
    const wt = await run(a.prepareWorktree, { taskId: 'task-big', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'big.bin'), 'pretend this is huge\n');
    const commit = await commitAgentWork(a, wt, 'task-big');
    assert.deepEqual([commit.committed, commit.changedFiles], [true, ['big.bin']]);
    assert.deepEqual(recorded, [null]);
  });
});

describe('removing the registration of a worktree lost with its worker', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktrees-lost-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * A fresh repository, and the activities of a worker on `host` (every worker has the same root), for
   * which the machines in `gone` have no agent worker alive.
   */
  const fresh = (name: string) => {
    const repo = join(dir, name);
    initRepo(repo);
    const root = join(dir, `${name}-worktrees`);
    const onHost = (host: string, gone: string[] = []) =>
      createWorktreeActivities({
        worktreeRoot: root,
        workerQueue: `agents@${host}`,
        host,
        agentHostGone: async (h) => gone.includes(h),
      });
    return { repo, root, onHost };
  };
  const listed = (repo: string) => sh(repo, 'worktree', 'list', '--porcelain');

  it('removes it when its directory is absent here, keeping the branch, and does nothing the second time', async () => {
    const { repo, onHost } = fresh('absent');
    const a = onHost('machine-a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-gone', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'work.txt'), 'the work\n');
    const work = await commitAgentWork(a, wt, 'task-gone');
    // Machine b does not see the directory: while machine a has an agent worker alive (restarted in its
    // pod, say), its disk may still hold it, for its own janitor.
    renameSync(wt.worktreePath, `${wt.worktreePath}.disk-a`);
    const input = { taskId: 'task-gone', repoPath: repo, worktreePath: wt.worktreePath };
    assert.equal(await run(onHost('machine-b').unregisterLostWorktree, input), false);
    assert.ok(listed(repo).includes(`worktree ${wt.worktreePath}\n`), 'still registered');
    // Machine a is gone with its disk.
    const b = onHost('machine-b', ['machine-a']);
    assert.equal(await run(b.unregisterLostWorktree, input), true);
    assert.ok(!listed(repo).includes('task-gone'), 'the registration is gone');
    assert.equal(sh(repo, 'rev-parse', branchForTask('task-gone')), work.sha, 'the branch stays, with the work');
    sh(repo, 'checkout', '--quiet', branchForTask('task-gone'));
    sh(repo, 'checkout', '--quiet', 'main');
    assert.equal(await run(b.unregisterLostWorktree, input), false, 'nothing to do the second time');
    assert.ok(existsSync(`${wt.worktreePath}.disk-a`), "machine a's disk is not this worker's to touch");
  });

  it('removes it when its directory is gone from its own machine', async () => {
    const { repo, onHost } = fresh('deleted');
    const a = onHost('machine-a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-deleted', repoPath: repo });
    rmSync(wt.worktreePath, { recursive: true, force: true });
    const input = { taskId: 'task-deleted', repoPath: repo, worktreePath: wt.worktreePath };
    assert.equal(await run(a.unregisterLostWorktree, input), true);
    assert.ok(!listed(repo).includes('task-deleted'));
  });

  it('leaves a worktree usable on this machine to its janitor', async () => {
    const { repo, onHost } = fresh('usable');
    const a = onHost('machine-a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-here', repoPath: repo });
    writeFileSync(join(wt.worktreePath, 'unsaved.txt'), 'not committed yet\n');
    const input = { taskId: 'task-here', repoPath: repo, worktreePath: wt.worktreePath };
    assert.equal(await run(a.unregisterLostWorktree, input), false);
    assert.ok(listed(repo).includes(`worktree ${wt.worktreePath}\n`), 'still registered');
    assert.equal(readFileSync(join(wt.worktreePath, 'unsaved.txt'), 'utf8'), 'not committed yet\n');
  });

  it("sets aside this machine's copy of a worktree another machine made again, then removes the registration", async () => {
    const { repo, root, onHost } = fresh('other-machine');
    const [a, b] = [onHost('machine-a', ['machine-b']), onHost('machine-b')];
    const first = await run(a.prepareWorktree, { taskId: 'task-moved', repoPath: repo });
    writeFileSync(join(first.worktreePath, 'old.txt'), "a's copy\n");
    renameSync(first.worktreePath, `${first.worktreePath}.disk-a`);
    // Machine b made it again at the same path, then was lost; machine a's old copy is back in place.
    const moved = await run(b.prepareWorktree, { taskId: 'task-moved', repoPath: repo });
    rmSync(moved.worktreePath, { recursive: true, force: true });
    renameSync(`${first.worktreePath}.disk-a`, first.worktreePath);
    const input = { taskId: 'task-moved', repoPath: repo, worktreePath: moved.worktreePath };
    assert.equal(await run(a.unregisterLostWorktree, input), true);
    assert.ok(!listed(repo).includes('task-moved'));
    const aside = readdirSync(root).filter((name) => name.startsWith('task-moved.orphan-'));
    assert.deepEqual(
      aside.map((name) => readFileSync(join(root, name, 'old.txt'), 'utf8')),
      ["a's copy\n"],
      'set aside, not deleted',
    );
  });

  it("never removes a worktree that is not Atelier's, nor the repository's checkout", async () => {
    const { repo, onHost } = fresh('not-ours');
    const b = onHost('machine-b');
    // The user's own worktree of the task's branch, named after the task, to review its work.
    sh(repo, 'branch', branchForTask('task-user'));
    const users = join(dir, 'review', 'task-user');
    sh(repo, 'worktree', 'add', '--quiet', users, branchForTask('task-user'));
    rmSync(users, { recursive: true, force: true });
    assert.equal(
      await run(b.unregisterLostWorktree, { taskId: 'task-user', repoPath: repo, worktreePath: users }),
      false,
    );
    assert.ok(listed(repo).includes(`worktree ${users}\n`), "the user's registration stays");
    assert.equal(
      await run(b.unregisterLostWorktree, { taskId: 'not-ours', repoPath: repo, worktreePath: repo }),
      false,
    );
    assert.equal(sh(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
  });

  it('fails a commit in a worktree whose directory is gone for good, as gone', async () => {
    const { repo, onHost } = fresh('commit-gone');
    const a = onHost('machine-a');
    const wt = await run(a.prepareWorktree, { taskId: 'task-deleted', repoPath: repo });
    rmSync(wt.worktreePath, { recursive: true, force: true });
    const err = await commitAgentWork(a, wt, 'task-deleted').then(
      () => assert.fail('expected the commit to fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === WORKTREE_GONE, String(err));
  });
});
