import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AgentProfile } from '../../config/agents-file';
import { MAX_LOCKED_REPO_BYTES, type TaskLocks } from '../../../workflows/definitions';
import { lockGlobProblem, lockSegmentCount, MAX_TASK_LOCK_SEGMENTS } from '../../../workflows/lock-globs';
import type { FieldProblem } from '../http/validation';

/**
 * What is wrong with a task's declared locks, named under `field` (`locks`, or `tasks.N.locks` in a
 * plan): a bad glob (or one that ends with "/"), no repository to scope them to (its `repo.path`, else its `workdir`), or one whose
 * real path would not fit its lock manager's workflow id.
 */
export function lockProblems(locks: string[] | undefined, workdir: string | undefined, field: string): FieldProblem[] {
  if (locks === undefined || locks.length === 0) return [];
  const problems = locks.map(lockGlobProblem).filter((p): p is string => p !== undefined);
  // A lock names files: "src/" (or "src/.") would lock a file named src, and nothing under it.
  for (const glob of locks.filter((g) => /\/\.?$/.test(g) && lockGlobProblem(g) === undefined)) {
    problems.push(`lock "${glob}" names a directory: name its files, as "${glob.replace(/(\/\.?)+$/, '')}/**" does`);
  }
  if (locks.reduce((n, glob) => n + lockSegmentCount(glob), 0) > MAX_TASK_LOCK_SEGMENTS) {
    problems.push(`locks have more than ${MAX_TASK_LOCK_SEGMENTS} path segments in all`);
  }
  if (workdir === undefined) problems.push('locks need a repo (or a workdir): they are relative to the repository');
  else if (Buffer.byteLength(lockedRepo(workdir)) > MAX_LOCKED_REPO_BYTES) {
    problems.push(
      `locks need a repository path of at most ${MAX_LOCKED_REPO_BYTES} bytes (this one's real path is longer)`,
    );
  }
  return problems.length > 0 ? [{ field, problems }] : [];
}

/**
 * The repository a task's locks are scoped to: its real path, or the path as given when this process
 * cannot see it now (at submission the workdir check names that problem).
 */
export function lockedRepo(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir);
  }
}

/**
 * A task's locks as a start of its workflow takes them (its submission, a retry, the stranded sweeper,
 * a plan): scoped to the real path of its repository, so two spellings of one directory share one lock
 * manager. Checked at submission (lockProblems), and never dropped later, even where the directory
 * cannot be seen: a task that declared locks never runs without them.
 */
export function taskLocksAtStart(locks: string[] | undefined, dir: string | undefined): TaskLocks | undefined {
  return locks && locks.length > 0 && dir !== undefined ? { repo: lockedRepo(dir), globs: locks } : undefined;
}

/** A task's locks as its workflow takes them (taskLocksAtStart), scoped to its `repo.path`, else its `workdir`. */
export const locksOfTask = (t: {
  locks?: string[];
  repo?: { path: string };
  workdir?: string;
}): TaskLocks | undefined => taskLocksAtStart(t.locks, t.repo?.path ?? t.workdir);

/**
 * Whether the task fails when it changes files outside its locks: its own `failOnLockViolations`, else
 * its agent's profile default. Asked for by the task itself, it needs a `repo` and `locks` to judge by.
 */
export function lockViolationPolicy(
  task: { failOnLockViolations?: boolean; repo?: unknown; locks?: string[] },
  profile: Pick<AgentProfile, 'failOnLockViolations'>,
  field: string,
): { value: boolean; problems: FieldProblem[] } {
  if (task.failOnLockViolations === true && (task.repo === undefined || !task.locks || task.locks.length === 0)) {
    return { value: false, problems: [{ field, problems: ['failOnLockViolations needs a repo and locks'] }] };
  }
  return { value: task.failOnLockViolations ?? profile.failOnLockViolations ?? false, problems: [] };
}
