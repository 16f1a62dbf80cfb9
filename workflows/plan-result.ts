import type { AgentTaskOutput } from './definitions';

/**
 * A task's result as the plan that started it receives it (`AgentTaskInput.resultForPlan`). A plan's
 * history holds the results of all its tasks (up to 200, each commit with up to 1,000 paths in each of
 * its lists and 64 KB of diffstat), so each keeps what a plan reads, its commit's sha, and what tells
 * a reader of the plan's history how it went: the commit's lists are left out (`omitted` counts them),
 * its diffstat cut to its summary line, the output's tail dropped. The whole result is in PostgreSQL;
 * the task's own history holds its commit as its commit activity returned it.
 */
export function resultForPlan(output: AgentTaskOutput): AgentTaskOutput {
  const { commit } = output;
  return {
    ...output,
    outputTail: '',
    ...(commit && {
      commit: {
        branch: commit.branch,
        baseSha: commit.baseSha,
        sha: commit.sha,
        changedFiles: [],
        diffstat: commit.diffstat.split('\n').pop() ?? '',
        lockViolations: [],
        omitted: {
          changedFiles: commit.changedFiles.length + (commit.omitted?.changedFiles ?? 0),
          lockViolations: commit.lockViolations.length + (commit.omitted?.lockViolations ?? 0),
        },
      },
    }),
  };
}
