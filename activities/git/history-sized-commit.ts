import type { TaskCommit } from '../../workflows/definitions';

/** The most paths a commit's lists carry into a workflow's history. */
const MAX_PATHS = 1000;
/** The most of its diffstat that does (its summary line is always kept). */
const MAX_DIFFSTAT_CHARS = 64 * 1024;

/**
 * A commit as a workflow's history carries it: an agent that committed tens of thousands of files (a
 * dependency folder, say) would otherwise pass Temporal's 2 MB limit for one result, and the task,
 * its work done, could never end. The whole lists are in PostgreSQL (the task's view shows them); the
 * history keeps the first `MAX_PATHS` of each and how many it left out, which is all a workflow reads
 * (whether any lock was violated, and which).
 */
export function historySizedCommit(commit: TaskCommit): TaskCommit {
  const omitted = {
    changedFiles: Math.max(0, commit.changedFiles.length - MAX_PATHS),
    lockViolations: Math.max(0, commit.lockViolations.length - MAX_PATHS),
  };
  return {
    ...commit,
    changedFiles: commit.changedFiles.slice(0, MAX_PATHS),
    lockViolations: commit.lockViolations.slice(0, MAX_PATHS),
    diffstat: shortDiffstat(commit.diffstat),
    ...((omitted.changedFiles > 0 || omitted.lockViolations > 0) && { omitted }),
  };
}

function shortDiffstat(diffstat: string): string {
  if (diffstat.length <= MAX_DIFFSTAT_CHARS) return diffstat;
  const lines = diffstat.split('\n');
  const summary = lines.pop() ?? '';
  const kept: string[] = [];
  let chars = summary.length;
  for (const line of lines) {
    if (chars + line.length + 1 > MAX_DIFFSTAT_CHARS) break;
    kept.push(line);
    chars += line.length + 1;
  }
  return [...kept, ` … ${lines.length - kept.length} more files`, summary].join('\n');
}
