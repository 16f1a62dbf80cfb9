import { existsSync, realpathSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FAILURE_CLASSES } from '../../workflows/definitions';
import { GitError, type Git } from './git';
import { clearingLeftLocks } from './left-locks';

/** What is committed, where, and how the commit is described. */
export interface TaskWork {
  /** The worktree. */
  cwd: string;
  taskId: string;
  /** The task's branch: the commit goes there, wherever the agent left HEAD. */
  branch: string;
  subject: string;
  /** Unknown when the work is salvaged. */
  agent?: string;
}

/**
 * For `git diff`: every submodule's link counts, whatever hides it (its `ignore` in .gitmodules, the
 * user's diff.ignoreSubmodules), shown as `Subproject commit` lines (not the user's diff.submodule=log
 * summary, which `git apply` drops).
 */
export const EVERY_SUBMODULE = ['--ignore-submodules=none', '--submodule=short'];

/** Resolves to whether `args` exited 0; an exit code of 1 is a no, anything else is an error. */
const answers = (git: Git, cwd: string, args: string[]): Promise<boolean> =>
  git(cwd, args).then(
    () => true,
    (err: unknown) => {
      if (err instanceof GitError && err.exitCode === 1) return false;
      throw err;
    },
  );

/**
 * Commits whatever is uncommitted in a task's worktree on its branch; says whether there was anything.
 * Nothing else of this process works there meanwhile (the agent's process group has been killed and
 * waited for, and commits and removals of one worktree take turns), and only this worktree's gits take
 * its index lock, its HEAD's lock and its branch's lock, so such a lock that was there before this call
 * began is one a killed git left: `gitVia` kills git when its signal aborts (the worktree activities and
 * the agent activity's commit abort it on cancel and timeout), and an agent's git dies with its group.
 * Left there, it would fail every commit (and a successful agent would run again, and the janitor keep
 * the worktree for good), so it is removed and the commit is tried again. A lock made since is a live
 * git's: it stays, and the call fails (retried).
 */
export async function commitTaskWork(git: Git, work: TaskWork): Promise<boolean> {
  return clearingLeftLocks(await ownLocks(git, work), () => commitAll(git, work));
}

/**
 * The paths of the lock files of the worktree at `cwd` (its index's and its HEAD's) and of the task's
 * branch, once git says `cwd` is the top of its own repository. One that is not any more (the agent
 * removed its `.git`) is refused for good: git would look further up, and commit in whatever repository
 * holds the worktree root (switching the branch of the user's checkout, say).
 */
async function ownLocks(git: Git, { cwd, branch }: TaskWork): Promise<string[]> {
  const locks = ['index.lock', 'HEAD.lock', `refs/heads/${branch}.lock`].flatMap((lock) => ['--git-path', lock]);
  const said = await git(cwd, ['rev-parse', '--show-toplevel', ...locks]).then(
    (r) => r.stdout.split('\n').filter((line) => line !== ''),
    (err: unknown) => {
      if (err instanceof GitError && err.exitCode === 128 && /not a git repository/i.test(err.stderr)) return [];
      throw err;
    },
  );
  const [top, ...paths] = said;
  if (top === undefined || paths.length !== 3 || top !== realpathSync(cwd)) {
    throw ApplicationFailure.nonRetryable(
      `the worktree ${cwd} is no longer a git worktree of its own (its .git is gone${top ? `; git finds the repository ${top} above it` : ''}): nothing was committed; its files stay there`,
      FAILURE_CLASSES.invalidInput,
    );
  }
  return paths.map((path) => resolve(cwd, path));
}

/** An entry of `git status --porcelain`: its path, and whether it is untracked (`?? path`). */
interface StatusEntry {
  path: string;
  untracked: boolean;
}

/**
 * What `add -A` would look at in the worktree at `cwd`: changes, and untracked files but ignored ones,
 * each one (`--untracked-files=all`, a folder only when it is a repository of its own); and a
 * submodule's new commit or changes inside, whatever hides them (`--ignore-submodules=none`).
 */
async function statusEntries(git: Git, cwd: string): Promise<StatusEntry[]> {
  const args = ['status', '--porcelain', '-z', '--untracked-files=all', '--ignore-submodules=none'];
  return (await git(cwd, args)).stdout
    .split('\0')
    .filter((entry) => entry !== '')
    .map((entry) => ({ path: entry.slice(3), untracked: entry.startsWith('?? ') }));
}

async function commitAll(git: Git, { cwd, taskId, branch, subject, agent }: TaskWork): Promise<boolean> {
  await attachTaskBranch(git, cwd, branch);
  // Nothing `add -A` would look at: no commit.
  const status = await statusEntries(git, cwd);
  if (status.length === 0) return false;
  // A repository of the agent's own (listed as `?? dir/`: git does not look inside) is left out: `add -A`
  // refuses one without a commit (and with it everything else), and records one with commits as a link
  // to commits this repository does not have.
  const ownRepos = status.filter((entry) => entry.untracked && entry.path.endsWith('/')).map((entry) => entry.path);
  await git(cwd, ['add', '-A', '--', '.', ...ownRepos.map((path) => `:(exclude,literal)${path}`)]);
  // What was staged, not what `status` shows: a submodule changed inside only is shown, and not staged.
  if (await answers(git, cwd, ['diff', '--cached', '--quiet', ...EVERY_SUBMODULE])) return false;
  const trailers = agent === undefined ? `Atelier-Task: ${taskId}` : `Atelier-Task: ${taskId}\nAtelier-Agent: ${agent}`;
  // --allow-empty: git's own look at what is staged skips a submodule its settings hide; this one did not.
  await git(cwd, ['commit', '--quiet', '--allow-empty', '-m', subject, '-m', trailers]);
  return true;
}

/**
 * Puts HEAD back on the task's branch when the agent left it elsewhere (`git switch -c`, a detached
 * HEAD): the branch moves to the agent's HEAD, and HEAD is attached to it with the index and files as
 * they are, so the agent's commits and its uncommitted work end up on the branch, which the task
 * reports and a retry continues from. Only a fast-forward: commits of the branch's that the agent's
 * HEAD does not contain would be lost. When the agent went back to an older commit of the branch, it
 * switches back to the branch, which carries over what git can; otherwise the task fails for good,
 * naming where HEAD is.
 */
async function attachTaskBranch(git: Git, cwd: string, branch: string): Promise<void> {
  const ref = `refs/heads/${branch}`;
  const attached = await git(cwd, ['symbolic-ref', '-q', 'HEAD']).then(
    (r) => r.stdout.trim(),
    (err: unknown) => {
      if (err instanceof GitError && err.exitCode === 1) return undefined; // detached
      throw err;
    },
  );
  if (attached === ref) return;
  const head = (await git(cwd, ['rev-parse', '--verify', 'HEAD^{commit}'])).stdout.trim();
  // None when the agent deleted the branch: then anything is a fast-forward.
  const tip = await git(cwd, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  const where = attached?.startsWith('refs/heads/')
    ? `branch ${attached.slice('refs/heads/'.length)}`
    : `a detached HEAD at ${head.slice(0, 12)}`;
  if (tip !== '' && !(await answers(git, cwd, ['merge-base', '--is-ancestor', tip, head]))) {
    // The agent went back (`git checkout main` after committing on its branch): its commits are on the
    // branch already, and switching to it keeps whatever git can carry over.
    const behind = await answers(git, cwd, ['merge-base', '--is-ancestor', head, tip]);
    if (behind && (await answers(git, cwd, ['switch', '--quiet', branch]))) return;
    throw ApplicationFailure.nonRetryable(
      `the agent left its worktree ${cwd} on ${where}, which does not contain the commits of ${branch}: nothing was committed; bring the work onto ${branch} there by hand, then retry the task`,
      FAILURE_CLASSES.invalidInput,
    );
  }
  // The old value makes the move fail, rather than drop a commit, if the branch moved meanwhile.
  await git(cwd, ['update-ref', '-m', `atelier: the agent's work, from ${where}`, ref, head, tip]);
  await git(cwd, ['symbolic-ref', 'HEAD', ref]);
}

/**
 * What no commit of the task's can hold, and stays only in the worktree: repositories of the agent's
 * own (`dir/`, left out of the commit), submodules with changes inside, and the folders of submodules
 * that are not checked out, where files were written. Asked once the work is committed: whatever git
 * still sees as changed is one of these.
 */
export async function leftUncommitted(git: Git, cwd: string): Promise<string[]> {
  // Every submodule, whatever its `ignore` setting says: a change inside one is not in the commit.
  const changed = (await statusEntries(git, cwd)).map((entry) => entry.path);
  return [...changed, ...(await filledSubmoduleFolders(git, cwd))];
}

/** Submodules not checked out whose folder holds files: git ignores them, and would drop them silently. */
async function filledSubmoduleFolders(git: Git, cwd: string): Promise<string[]> {
  if (!existsSync(join(cwd, '.gitmodules'))) return [];
  const declared = await git(cwd, ['config', '-z', '--file', '.gitmodules', '--get-regexp', '^submodule\\..*\\.path$'])
    .then((r) => r.stdout.split('\0').map((entry) => entry.slice(entry.indexOf('\n') + 1)))
    .catch(() => []);
  const filled: string[] = [];
  for (const path of declared.filter((p) => p !== '' && !existsSync(join(cwd, p, '.git')))) {
    const files = await readdir(join(cwd, path)).catch(() => []);
    if (files.length > 0) filled.push(path);
  }
  if (filled.length === 0) return [];
  // Only those that are submodules in the index (mode 160000): a declared path may hold tracked files.
  const staged = (await git(cwd, ['ls-files', '--stage', '-z', '--', ...filled.map((p) => `:(literal)${p}`)])).stdout;
  const links = new Set(
    staged
      .split('\0')
      .filter((entry) => entry.startsWith('160000 '))
      .map((entry) => entry.slice(entry.indexOf('\t') + 1)),
  );
  return filled.filter((path) => links.has(path));
}
