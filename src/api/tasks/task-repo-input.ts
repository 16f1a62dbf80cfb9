import { realpathSync } from 'node:fs';
import type { TaskRepo } from '../../../workflows/definitions';
import type { FieldProblem } from '../http/validation';
import { isDirectory } from '../../fs/is-directory';

/**
 * Problems with a task's `repo` (named under `field`): it must be an existing directory here (the agent
 * worker checks that it is a git repository), and a task runs either in its repository's worktree or in
 * a `workdir`, not both.
 */
export function repoProblems(repo: TaskRepo | undefined, workdir: string | undefined, field: string): FieldProblem[] {
  if (repo === undefined) return [];
  const problems: string[] = [];
  if (!isDirectory(repo.path)) problems.push('repo.path must be an existing directory');
  if (workdir !== undefined) problems.push('repo and workdir exclude each other: the task runs in its own worktree');
  return problems.length > 0 ? [{ field, problems }] : [];
}

/**
 * The task's `repo` as it is stored: its path made real (absolute, no symlink, no trailing slash), so two
 * spellings of one repository are one repository everywhere a task is compared with another: a plan
 * building a task on the commits of its dependencies in the same repository, its locks.
 */
export function storedRepo(repo: TaskRepo | undefined): TaskRepo | undefined {
  if (repo === undefined) return undefined;
  try {
    return { ...repo, path: realpathSync(repo.path) };
  } catch {
    return repo; // gone since it was checked: the agent worker refuses it, naming the path
  }
}
