import type { TaskCommit } from './definitions';

/** The most files outside the locks a `lock_violation` failure's message names. */
const NAMED_PATHS = 20;

/**
 * The message a task fails with when it changed files outside its locks (`lock_violation`). The message
 * travels with the failure into the task's history and, for a plan's task, into the plan's, where a
 * failure is not shortened as a result is (`resultForPlan`): a plan of 200 tasks naming 1,000 paths each
 * would hold megabytes. So it names the first few and counts the rest; every one is in PostgreSQL
 * (`commit.lockViolations` in GET /v1/tasks/:id).
 */
export function lockViolationMessage(commit: Pick<TaskCommit, 'lockViolations' | 'omitted'>): string {
  const named = commit.lockViolations.slice(0, NAMED_PATHS);
  const more = commit.lockViolations.length - named.length + (commit.omitted?.lockViolations ?? 0);
  return `changed files outside the declared locks: ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}
