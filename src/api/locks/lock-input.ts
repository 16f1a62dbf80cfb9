import { realpathSync } from 'node:fs';
import type { TaskLocks } from '../../../workflows/definitions';
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
    return { problems: [] }; // the workdir check names the problem
  }
  return { locks: { repo, globs: locks }, problems: [] };
}
