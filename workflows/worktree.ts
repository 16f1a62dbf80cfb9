import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
} from '@temporalio/workflow';
import type { AgentActivities, BookkeepingActivities, WorktreeActivities } from '../activities';
import type { PreparedWorktree, WorktreeCommit } from '../activities/git/worktree.activities';
import { classifyAttemptError, isWorkerLost, neverPickedUp } from './attempt-failure';
import {
  FAILURE_CLASSES,
  WORKTREE_GONE,
  type AgentTaskInput,
  type AgentTaskOutput,
  type RunAgentOutput,
  type TaskCommit,
  type TaskRepo,
} from './definitions';
import { lockViolationMessage } from './lock-violation-message';

/** What `withWorktree` needs from the task workflow. */
export interface WorktreeTask {
  input: AgentTaskInput;
  repo: TaskRepo;
  /**
   * Histories from before salvage replay the first version: no move to another worker, no commit of a
   * failed attempt's work, and the agent activity records the success.
   */
  salvage: boolean;
  /**
   * With salvage: whether the worktree also leaves a worker that drains, and an attempt no worker took
   * is asked again where the worktree moves (patch worktree-leaves-gone-workers). Asked only when that
   * happens, so histories that never met a gone worker carry no marker.
   */
  leavesGoneWorkers: () => boolean;
  /**
   * With salvage: whether a failed attempt's commit runs to its end when a cancel arrives meanwhile, so
   * that the worktree's last commit never runs beside it in the same worktree (patch
   * failed-work-commit-whole). Asked only when a failed attempt's work is committed.
   */
  failedWorkCommitWhole: () => boolean;
  /**
   * With salvage: whether a success whose work its worker could not save fails the task when that
   * worker is lost and the worktree made again elsewhere did not carry the work over (patch
   * unsaved-work-needs-its-worker). Asked only when that happens.
   */
  unsavedWorkNeedsItsWorker: () => boolean;
  /**
   * With salvage: whether a task that ends without its worktree's worker (lost, or the worktree's
   * directory deleted) has any agent worker remove the worktree's registration, which nothing else
   * would (patch lost-worktree-unregistered). Asked only when that happens.
   */
  unregistersLostWorktrees: () => boolean;
  /** The agent activities on one worker's own queue. */
  agentsOn: (workerQueue: string) => AgentActivities;
  bookkeeping: BookkeepingActivities;
}

/** The worktree where it is now, and the activities of the worker that holds it. */
interface Placement {
  prepared: PreparedWorktree;
  agents: AgentActivities;
  worktrees: WorktreeActivities;
}

/**
 * How often one step (a commit, an attempt that no worker took) may follow the worktree to yet another
 * worker before it gives up.
 */
const MAX_MOVES = 3;

/** Whether a worktree activity failed because the worktree's directory is gone from its worker's disk. */
const worktreeGone = (err: unknown): boolean =>
  err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === WORKTREE_GONE;

/**
 * Runs a task in a git worktree of its own: any agent worker prepares the worktree on branch
 * `atelier/<task id>` (continuing the branch when an earlier run left one), and from then on the
 * agent's attempts, the commits and the removal go to that worker's own task queue, since the worktree
 * exists on its disk only. The work of a failed attempt is committed before the next one, so the next
 * continues from it. When that worker is lost (its attempt stops heartbeating, or its queue goes
 * unpolled) or shuts down (it answers an attempt `worker_draining`), the task moves: another worker
 * prepares the worktree from the branch (taking over the lost worktree's uncommitted work when it
 * shares the disk) and the next attempt runs there. An attempt that no worker took ran nothing: it is
 * asked again, as the same attempt, where the worktree moved, so a deploy costs the task no attempt;
 * one that stopped heartbeating ran its agent, and counts as a `crash` attempt. After the
 * agent succeeds its work is committed, and only then is the task's success recorded, or its failure
 * when it changed files outside its locks and `failOnLockViolations` is set. Whatever a failed or
 * cancelled task leaves is committed too; the worktree is removed at the end and the branch stays.
 * When the task ends without the worktree's worker (lost, and not replaced), or its directory was
 * deleted, any worker removes its registration, so the branch is not left checked out there.
 */
export async function withWorktree(
  task: WorktreeTask,
  run: (agents: AgentActivities) => Promise<AgentTaskOutput>,
): Promise<AgentTaskOutput> {
  const { input, repo, salvage, bookkeeping } = task;
  const anyWorker = proxyActivities<WorktreeActivities>({
    taskQueue: input.agentTaskQueue,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
    priority: { priorityKey: input.priority },
  });
  // Its own limits: the task's end (and its locks) waits for it, so it waits for a worker no longer than
  // a scaled-down pool takes to start one, and then leaves the registration (logged).
  const anyWorkerUnregisters = proxyActivities<WorktreeActivities>({
    taskQueue: input.agentTaskQueue,
    scheduleToStartTimeout: '10 minutes',
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
    priority: { priorityKey: input.priority },
  });
  /**
   * The worktrees (by path) lost with their worker since the last preparation, which takes over every
   * worktree of the branch registered elsewhere: if the task ends before another, nothing has.
   */
  let lostSincePrepared: string[] = [];
  const prepare = async (): Promise<Placement> => {
    const prepared = await anyWorker.prepareWorktree({
      taskId: input.taskId,
      repoPath: repo.path,
      ref: repo.ref,
      ...(repo.merge && repo.merge.length > 0 && { merge: repo.merge }),
    });
    const worktrees = proxyActivities<WorktreeActivities>({
      taskQueue: prepared.workerQueue,
      // The worktree's worker may be gone; then these fail instead of waiting for it forever.
      scheduleToStartTimeout: '1 minute',
      startToCloseTimeout: '5 minutes',
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
    });
    lostSincePrepared = [];
    return { prepared, agents: task.agentsOn(prepared.workerQueue), worktrees };
  };

  const failTask = async (err: unknown, attempt: number): Promise<never> => {
    const failure = classifyAttemptError(err);
    // A no-op when the task already has its outcome (the attempt loop records its own). Not cancellable:
    // a cancel that arrived meanwhile must not leave the task without one.
    await CancellationScope.nonCancellable(() =>
      bookkeeping.recordTaskOutcome({
        taskId: input.taskId,
        status: 'failed',
        attempt,
        error: { class: failure.failureClass, message: failure.message },
      }),
    );
    throw ApplicationFailure.nonRetryable(failure.message, failure.failureClass);
  };

  let place: Placement | undefined;
  try {
    place = await prepare();
  } catch (err) {
    // A repository that is not one, a ref that is not there, dependencies that conflict.
    if (salvage && !isCancellation(err)) await failTask(err, 0);
    throw err;
  }
  /** Where the worktree is now: made again on another worker after the last one was lost. */
  const placed = async (): Promise<Placement> => (place ??= await prepare());
  /** The worktree's worker is gone (`why`: its failure) or leaving: the next step prepares it elsewhere. */
  const lost = (from: Placement, why: unknown): void => {
    log.warn('the worker holding the worktree is gone; the task moves to another worker', {
      taskId: input.taskId,
      workerQueue: from.prepared.workerQueue,
      error: String(why),
    });
    if (place === from) {
      place = undefined;
      lostSincePrepared.push(from.prepared.worktreePath);
    }
  };
  /**
   * Has any worker remove the registrations of the worktrees at `paths`, whose worker is gone or whose
   * directory is: unless that worker's machine still holds them (`unregisterLostWorktree`). Else they
   * would keep the branch checked out for good. A failure is logged: the task's end stands.
   */
  const unregisterLost = async (paths: string[]): Promise<void> => {
    if (!salvage || paths.length === 0 || !task.unregistersLostWorktrees()) return;
    for (const worktreePath of paths) {
      try {
        await anyWorkerUnregisters.unregisterLostWorktree({ taskId: input.taskId, repoPath: repo.path, worktreePath });
      } catch (err) {
        log.warn('could not remove the registration of a lost worktree', {
          taskId: input.taskId,
          worktree: worktreePath,
          error: String(err),
        });
      }
    }
  };

  const commitOn = (p: Placement, agent: string, note?: string): Promise<WorktreeCommit> =>
    p.worktrees.commitWorktree({
      taskId: input.taskId,
      agent,
      worktreePath: p.prepared.worktreePath,
      baseSha: p.prepared.baseSha,
      locks: input.locks?.globs,
      ...(note !== undefined && { note }),
    });

  /** The agent of the latest attempt: what is left in the worktree at the end is its work. */
  let lastAgent = input.agent;
  /** Where a success's work is, when its worker could not commit it on the branch (`workUnsaved`). */
  let workOnlyIn: Placement | undefined;
  const agents: AgentActivities = {
    runAgent: async (attempt) => {
      lastAgent = attempt.agent;
      for (let moves = 0; ; moves++) {
        const p = await placed();
        let answer: RunAgentOutput;
        try {
          answer = await p.agents.runAgent({
            ...attempt,
            workdir: p.prepared.worktreePath,
            ...(salvage && { deferSuccess: true }),
          });
        } catch (err) {
          if (!salvage || isCancellation(err)) throw err;
          if (!isWorkerLost(err)) {
            await saveFailedWork(p, attempt.agent, attempt.attempt);
            throw err;
          }
          lost(p, err);
          // No worker took it: no agent ran, no attempt was recorded. Asked again here, it costs the task
          // no attempt; the attempt loop would count it as a crash.
          if (neverPickedUp(err) && moves < MAX_MOVES && task.leavesGoneWorkers()) continue;
          throw err;
        }
        // The worker takes nothing more from its own queue: asked there again, the attempt would wait
        // for it until it counts as lost.
        if (salvage && answer.waiting?.kind === 'worker_draining' && task.leavesGoneWorkers()) {
          lost(p, answer.waiting.message);
        }
        if (answer.workUnsaved) workOnlyIn = p;
        return answer;
      }
    },
  };

  /** Commits a failed attempt's work, so the next attempt (wherever it runs) continues from it. */
  const saveFailedWork = async (p: Placement, agent: string, attempt: number): Promise<void> => {
    const commit = () => commitOn(p, agent, `work of failed attempt ${attempt}`);
    try {
      // A cancel arriving meanwhile is acted on once it is done.
      await (task.failedWorkCommitWhole() ? CancellationScope.nonCancellable(commit) : commit());
    } catch (err) {
      if (isWorkerLost(err)) lost(p, err);
      else log.warn('could not commit the failed attempt’s work', { taskId: input.taskId, error: String(err) });
    }
  };

  /**
   * Commits the finished work, following the worktree to another worker when its own is lost: unless
   * the work is only in the lost worktree (its worker could not save it) and the new one did not carry
   * it over. The success then does not stand, rather than be recorded with the work missing.
   */
  const commitFinished = async (agent: string, attempt: number): Promise<WorktreeCommit> => {
    for (let moves = 0; ; moves++) {
      const p = await placed();
      const from = workOnlyIn;
      if (
        from !== undefined &&
        p !== from &&
        !p.prepared.keptWorkOf?.includes(from.prepared.worktreePath) &&
        task.unsavedWorkNeedsItsWorker()
      ) {
        await failTask(
          new Error(
            `the agent succeeded, but its work could not be saved on ${from.prepared.branch} and the worker holding it was lost before it was committed: it is only in ${from.prepared.worktreePath} on that worker's disk, kept there 7 days; retry the task to run the agent again`,
          ),
          attempt,
        );
      }
      try {
        return await commitOn(p, agent);
      } catch (err) {
        if (!salvage || !isWorkerLost(err) || moves >= MAX_MOVES) throw err;
        lost(p, err);
      }
    }
  };

  let committed = false;
  let attempts = 0;
  try {
    const output = await run(agents);
    attempts = output.attempts;
    const finish = async (): Promise<AgentTaskOutput> => {
      const result = await commitFinished(output.agent ?? input.agent, output.attempts);
      committed = true;
      const commit: TaskCommit = {
        branch: result.branch,
        baseSha: result.baseSha,
        sha: result.sha,
        changedFiles: result.changedFiles,
        diffstat: result.diffstat,
        lockViolations: result.lockViolations,
        ...(result.omitted && { omitted: result.omitted }),
      };
      if (salvage) await recordSuccess(output, commit);
      return { ...output, commit };
    };
    // The agent has done its work: a cancel arriving now does not stop it being committed and recorded.
    return await (salvage ? CancellationScope.nonCancellable(finish) : finish());
  } catch (err) {
    // A failure the attempt loop (or the lock check) decided is recorded already; the rest is not.
    if (salvage && !isCancellation(err) && !(err instanceof ApplicationFailure)) await failTask(err, attempts);
    throw err;
  } finally {
    await CancellationScope.nonCancellable(async () => {
      const p = place;
      // Lost with its worker, and no other took it over: its registration goes (its janitor may be gone
      // with its disk, and no other sees the directory), unless its directory is on the disk of the
      // worker that removes it, whose janitor commits and removes it.
      if (!p) return unregisterLost(lostSincePrepared);
      try {
        if (!committed) await commitOn(p, lastAgent);
        await p.worktrees.removeWorktree({ repoPath: repo.path, worktreePath: p.prepared.worktreePath });
      } catch (err) {
        log.warn('could not finish the worktree', { taskId: input.taskId, error: String(err) });
        // Its worker or its directory is gone: the same. A commit that failed otherwise leaves the
        // worktree, with the work it could not commit, to the janitor of the worker that holds it.
        if (isWorkerLost(err) || worktreeGone(err)) await unregisterLost([p.prepared.worktreePath]);
      }
    });
  }

  /** The task's one terminal record, now that its work is committed: or a failure on lock violations. */
  async function recordSuccess(output: AgentTaskOutput, commit: TaskCommit): Promise<void> {
    if (input.failOnLockViolations && commit.lockViolations.length > 0) {
      const message = lockViolationMessage(commit);
      await bookkeeping.recordTaskOutcome({
        taskId: input.taskId,
        status: 'failed',
        attempt: output.attempts,
        error: { class: FAILURE_CLASSES.lockViolation, message },
      });
      throw ApplicationFailure.nonRetryable(message, FAILURE_CLASSES.lockViolation);
    }
    await bookkeeping.recordTaskOutcome({
      taskId: input.taskId,
      status: 'succeeded',
      attempt: output.attempts,
      exitCode: output.exitCode,
    });
  }
}
