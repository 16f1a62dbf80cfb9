import type { TaskCommit } from './definitions';
import { namedFiles } from './named-files';

/**
 * The message a task fails with when it changed files outside its locks (`lock_violation`): the first
 * few (namedFiles), as the message goes into histories; every one is in PostgreSQL
 * (`commit.lockViolations` in GET /v1/tasks/:id).
 */
export function lockViolationMessage(commit: Pick<TaskCommit, 'lockViolations' | 'omitted'>): string {
  return `changed files outside the declared locks: ${namedFiles(commit.lockViolations, commit.omitted?.lockViolations)}`;
}
