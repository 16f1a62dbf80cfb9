import { CancellationScope, log, proxyActivities } from '@temporalio/workflow';
import type { WorktreeActivities } from '../activities';
import type { AgentTaskInput, AgentTaskOutput, TaskCommit, TaskRepo } from './definitions';

/** Where the agent of a task with a repository runs: its worktree, on the worker that made it. */
export interface WorktreePlacement {
  workdir: string;
  agentTaskQueue: string;
}

/**
 * Runs a task in a git worktree of its own: any agent worker prepares the worktree on branch
 * `atelier/<task id>` (continuing the branch when an earlier run left one: salvage), and from then on
 * the agent's attempts, the commit and the removal go to that worker's own task queue, since the
 * worktree exists on its disk only. Whatever the agent leaves is committed, on success and, so that no
 * work is lost, on failure and cancellation too; the worktree is removed at the end and the branch
 * stays. The output carries the commit; its patch is in PostgreSQL.
 */
export async function withWorktree(
  input: AgentTaskInput,
  repo: TaskRepo,
  run: (placement: WorktreePlacement) => Promise<AgentTaskOutput>,
): Promise<AgentTaskOutput> {
  const anyWorker = proxyActivities<WorktreeActivities>({
    taskQueue: input.agentTaskQueue,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
    priority: { priorityKey: input.priority },
  });
  const prepared = await anyWorker.prepareWorktree({ taskId: input.taskId, repoPath: repo.path, ref: repo.ref });
  const onWorker = proxyActivities<WorktreeActivities>({
    taskQueue: prepared.workerQueue,
    // The worktree's worker may be gone; then these fail instead of waiting for it forever.
    scheduleToStartTimeout: '1 minute',
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
  });
  const commit = (agent: string) =>
    onWorker.commitWorktree({
      taskId: input.taskId,
      agent,
      worktreePath: prepared.worktreePath,
      baseSha: prepared.baseSha,
      locks: input.locks?.globs,
    });
  let committed = false;
  try {
    const output = await run({ workdir: prepared.worktreePath, agentTaskQueue: prepared.workerQueue });
    const result = await commit(output.agent ?? input.agent);
    committed = true;
    const taskCommit: TaskCommit = {
      branch: result.branch,
      baseSha: result.baseSha,
      sha: result.sha,
      changedFiles: result.changedFiles,
      diffstat: result.diffstat,
      lockViolations: result.lockViolations,
    };
    return { ...output, commit: taskCommit };
  } finally {
    await CancellationScope.nonCancellable(async () => {
      try {
        if (!committed) await commit(input.agent);
        await onWorker.removeWorktree({ repoPath: repo.path, worktreePath: prepared.worktreePath });
      } catch (err) {
        // The worker is gone with its disk: the janitor of whoever holds that disk removes the rest.
        log.warn('could not finish the worktree', { taskId: input.taskId, error: String(err) });
      }
    });
  }
}
