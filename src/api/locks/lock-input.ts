import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AgentProfile } from '../../config/agents-file';
import { MAX_LOCKED_REPO_BYTES, type TaskLocks } from '../../../workflows/definitions';
import { lockGlobProblem } from '../../../workflows/lock-globs';
import type { FieldProblem } from '../http/validation';

/**
 * A task's declared locks as its workflow takes them: scoped to the repository the task works in (its
 * `repo.path`, else its `workdir`; by real path, so two spellings of one directory share one lock
 * manager). Problems are named under `field` (`locks`, or `tasks.N.locks` in a plan).
 */
export function resolveTaskLocks(
  locks: string[] | undefined,
  workdir: string | undefined,
  field: string,
): { locks?: TaskLocks; problems: FieldProblem[] } {
  if (locks === undefined || locks.length === 0) return { problems: [] };
  const problems = locks.map(lockGlobProblem).filter((p): p is string => p !== undefined);
  if (workdir === undefined) problems.push('locks need a repo (or a workdir): they are relative to the repository');
  if (problems.length > 0 || workdir === undefined) return { problems: [{ field, problems }] };
  let repo: string;
  try {
    repo = realpathSync(workdir);
  } catch {
    // At submission the workdir check names the problem. A start built later (a retry, the stranded
    // sweeper, on a replica that cannot see the directory now) keeps its locks all the same: a task
    // that declared locks never runs without them.
    repo = resolve(workdir);
  }
  if (Buffer.byteLength(repo) > MAX_LOCKED_REPO_BYTES) {
    const problem = `locks need a repository path of at most ${MAX_LOCKED_REPO_BYTES} bytes (this one's real path is longer)`;
    return { problems: [{ field, problems: [problem] }] };
  }
  return { locks: { repo, globs: locks }, problems: [] };
}

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
