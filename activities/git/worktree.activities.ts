import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { WorktreeStore } from '../../src/store/worktree-store';
import type { TaskCommit } from '../../workflows/definitions';
import { lockViolations } from '../../workflows/lock-globs';
import { GitError, RepoMutex, git } from './git';

/** The branch a task's work is committed on; it outlives the worktree. */
export const branchForTask = (taskId: string): string => `atelier/${taskId}`;

export interface PrepareWorktreeInput {
  taskId: string;
  /** The user's repository; never checked out or changed, only its worktree list and branches are. */
  repoPath: string;
  /** Where the branch starts when it does not exist yet; default HEAD. */
  ref?: string;
}

export interface PreparedWorktree {
  /** The agent worker's own task queue: commit and removal must run where the worktree is. */
  workerQueue: string;
  worktreePath: string;
  branch: string;
  /** The commit the task's work started from (the ref's), to diff against. */
  baseSha: string;
  /** The branch's head when the worktree was made: later than baseSha when earlier work was salvaged. */
  headSha: string;
}

export interface CommitWorktreeInput {
  taskId: string;
  agent: string;
  worktreePath: string;
  baseSha: string;
  /** The task's declared lock globs: changed files outside them are `lockViolations`. */
  locks?: string[];
}

export interface WorktreeCommit extends TaskCommit {
  /** Whether this call made a commit (false: nothing was left uncommitted). */
  committed: boolean;
}

export interface WorktreeDeps {
  /** Directory under which this worker makes worktrees, one per task. */
  worktreeRoot: string;
  /** This agent worker's own task queue. */
  workerQueue: string;
  /** Where commits and patches are recorded; unset in unit tests. */
  store?: Pick<WorktreeStore, 'recordCommit'>;
}

const NOT_A_REPO = 'InvalidRepository';

/**
 * Activities of the agent workers for git worktrees: a task's agent runs in a worktree of its own on
 * branch `atelier/<task id>`, never in the user's checkout. Every one is idempotent (safe to retry):
 * prepare reuses the task's worktree or branch, commit commits only what is uncommitted, remove
 * tolerates a worktree already gone.
 */
export function createWorktreeActivities(deps: WorktreeDeps) {
  const mutex = new RepoMutex();

  const headOf = async (cwd: string, ref = 'HEAD'): Promise<string> =>
    (await git(cwd, ['rev-parse', '--verify', `${ref}^{commit}`])).stdout.trim();

  const branchExists = async (repo: string, branch: string): Promise<boolean> =>
    git(repo, ['show-ref', '--verify', '--quiet', `refs/heads/${branch}`]).then(
      () => true,
      () => false,
    );

  return {
    /**
     * Makes (or finds) the task's worktree on this worker. A branch left by an earlier attempt or run
     * (a worker that died) is checked out as it is, so committed work is continued, not redone; else
     * the branch is created from `ref`. Returns this worker's own queue for the steps that follow.
     */
    async prepareWorktree(input: PrepareWorktreeInput): Promise<PreparedWorktree> {
      let repo: string;
      try {
        repo = realpathSync(input.repoPath);
        await git(repo, ['rev-parse', '--git-dir']);
      } catch {
        throw ApplicationFailure.nonRetryable(`${input.repoPath} is not a git repository`, NOT_A_REPO);
      }
      const branch = branchForTask(input.taskId);
      const worktreePath = join(deps.worktreeRoot, input.taskId);
      return mutex.run(repo, async () => {
        let baseSha: string;
        try {
          baseSha = await headOf(repo, input.ref ?? 'HEAD');
        } catch (err) {
          if (err instanceof GitError) {
            throw ApplicationFailure.nonRetryable(`ref ${input.ref ?? 'HEAD'} not found in ${repo}`, NOT_A_REPO);
          }
          throw err;
        }
        if (existsSync(join(worktreePath, '.git'))) {
          return { workerQueue: deps.workerQueue, worktreePath, branch, baseSha, headSha: await headOf(worktreePath) };
        }
        // A directory left half-made by a crash, or a registration whose directory is gone: start clean.
        await rm(worktreePath, { recursive: true, force: true });
        await git(repo, ['worktree', 'prune']);
        await mkdir(deps.worktreeRoot, { recursive: true });
        if (await branchExists(repo, branch)) {
          await git(repo, ['worktree', 'add', worktreePath, branch]);
        } else {
          await git(repo, ['worktree', 'add', '-b', branch, worktreePath, baseSha]);
        }
        return { workerQueue: deps.workerQueue, worktreePath, branch, baseSha, headSha: await headOf(worktreePath) };
      });
    },

    /** Commits everything the agent left in the worktree, naming the task and the agent. */
    async commitWorktree(input: CommitWorktreeInput): Promise<WorktreeCommit> {
      const cwd = input.worktreePath;
      await git(cwd, ['add', '-A']);
      const staged = (await git(cwd, ['diff', '--cached', '--name-only'])).stdout.trim();
      let committed = false;
      if (staged !== '') {
        await git(cwd, [
          'commit',
          '--quiet',
          '-m',
          `atelier: task ${input.taskId} (agent ${input.agent})`,
          '-m',
          `Atelier-Task: ${input.taskId}\nAtelier-Agent: ${input.agent}`,
        ]);
        committed = true;
      }
      const sha = await headOf(cwd);
      const range = `${input.baseSha}..${sha}`;
      const changedFiles = (await git(cwd, ['diff', '--name-only', range])).stdout.split('\n').filter((l) => l !== '');
      const diffstat = (await git(cwd, ['diff', '--stat', range])).stdout.trimEnd();
      const commit: TaskCommit = {
        branch: branchForTask(input.taskId),
        baseSha: input.baseSha,
        sha,
        changedFiles,
        diffstat,
        lockViolations: input.locks && input.locks.length > 0 ? lockViolations(changedFiles, input.locks) : [],
      };
      if (deps.store) {
        // The patch goes to PostgreSQL, never into the workflow's history.
        const patch = (await git(cwd, ['diff', '--binary', range])).stdout;
        await deps.store.recordCommit(input.taskId, commit, patch);
      }
      return { ...commit, committed };
    },

    /** Removes the task's worktree; its branch stays. Nothing to do when it is already gone. */
    async removeWorktree(input: { repoPath: string; worktreePath: string }): Promise<void> {
      const repo = realpathSync(input.repoPath);
      await mutex.run(repo, async () => {
        if (existsSync(input.worktreePath)) {
          await git(repo, ['worktree', 'remove', '--force', input.worktreePath]).catch(() => undefined);
          await rm(input.worktreePath, { recursive: true, force: true });
        }
        await git(repo, ['worktree', 'prune']);
      });
    },

    /**
     * The janitor: removes this worker's worktrees of `repoPath` whose task is not in `running`, and
     * returns the task ids it removed. Their branches stay.
     */
    async sweepWorktrees(input: { repoPath: string; running: string[] }): Promise<string[]> {
      const repo = realpathSync(input.repoPath);
      const running = new Set(input.running);
      const removed: string[] = [];
      const entries = existsSync(deps.worktreeRoot) ? await readdir(deps.worktreeRoot) : [];
      const listed = (await git(repo, ['worktree', 'list', '--porcelain'])).stdout;
      for (const taskId of entries) {
        const path = join(deps.worktreeRoot, taskId);
        if (running.has(taskId) || !listed.includes(`worktree ${path}\n`)) continue;
        await mutex.run(repo, async () => {
          await git(repo, ['worktree', 'remove', '--force', path]).catch(() => undefined);
          await rm(path, { recursive: true, force: true });
        });
        removed.push(taskId);
      }
      await mutex.run(repo, () => git(repo, ['worktree', 'prune']));
      return removed;
    },
  };
}
