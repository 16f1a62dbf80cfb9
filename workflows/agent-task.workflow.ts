import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  sleep,
} from '@temporalio/workflow';
import type { AgentActivities, BookkeepingActivities } from '../activities';
import {
  AGENT_HEARTBEAT_TIMEOUT_SECONDS,
  AGENT_TIMEOUT_MARGIN_SECONDS,
  FAILURE_CLASSES,
  WORKER_QUEUE_LINE_SECONDS,
  NON_RETRYABLE_CLASSES,
  type AgentTaskInput,
  type AgentTaskOutput,
} from './definitions';
import { classifyAttemptError as classify } from './attempt-failure';
import { chainLoop } from './chain-loop';
import { withFileLocks } from './file-locks';
import { withWorktree } from './worktree';
import { findInputProblems } from './validate-input';
import { resultForPlan } from './plan-result';
import { isUuid } from './definitions';

/**
 * Bookkeeping writes to PostgreSQL run as local activities in the workflow worker: no task-queue round
 * trip per write. They are idempotent, so they may retry for as long as the database is away.
 */
const bookkeeping = proxyLocalActivities<BookkeepingActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/**
 * Workflow code changes that running histories must still replay through (see `patched`). A task
 * started at a patch's code level (`TASK_CODE_LEVEL`, `levelOf`) or later takes it without asking.
 */
const PATCHES = {
  successRecordedByAgent: 'success-recorded-by-agent',
  chainsAndPolicies: 'agent-chains-and-policies',
  invalidInputRecorded: 'invalid-input-recorded',
  fileLocks: 'file-locks',
  worktrees: 'git-worktrees',
  worktreeSalvage: 'worktree-salvage',
  cancelledBeforeAttempts: 'cancelled-before-attempts',
  wakeKeptAcrossAsks: 'wake-kept-across-asks',
  cancelFollowsRecordedEnd: 'cancel-follows-recorded-end',
  locksReleaseStartsManager: 'locks-release-starts-manager',
  worktreeLeavesGoneWorkers: 'worktree-leaves-gone-workers',
  failedWorkCommitWhole: 'failed-work-commit-whole',
  unsavedWorkNeedsItsWorker: 'unsaved-work-needs-its-worker',
  lostWorktreeUnregistered: 'lost-worktree-unregistered',
} as const;
type Patch = (typeof PATCHES)[keyof typeof PATCHES];

/** The code levels of the patches after level 1. */
const LATER_LEVELS: Partial<Record<Patch, number>> = {
  [PATCHES.wakeKeptAcrossAsks]: 2,
  [PATCHES.cancelFollowsRecordedEnd]: 3,
  [PATCHES.locksReleaseStartsManager]: 4,
  [PATCHES.worktreeLeavesGoneWorkers]: 4,
  [PATCHES.failedWorkCommitWhole]: 4,
  [PATCHES.unsavedWorkNeedsItsWorker]: 4,
  [PATCHES.lostWorktreeUnregistered]: 4,
};

/** The code level a patch came with: from it on, a task takes the patch's path without asking. */
const levelOf = (patch: Patch): number => LATER_LEVELS[patch] ?? 1;

/** Whether the task takes the path `patch` introduced: a task at the patch's code level or later always does. */
const takes = (input: AgentTaskInput, patch: Patch): boolean =>
  (typeof input?.codeLevel === 'number' && input.codeLevel >= levelOf(patch)) || patched(patch);

/** For the one write that may have no row to land on (a task id that is not in the database). */
const boundedBookkeeping = proxyLocalActivities<BookkeepingActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});

/** How long an attempt on one worker's own queue may wait to be picked up before that worker counts as gone. */
const WORKER_QUEUE_START_TIMEOUT_MS = 2 * 60_000;

const backoffMs = (input: AgentTaskInput, attempt: number): number =>
  Math.min((input.backoffSeconds ?? 1) * 2 ** (attempt - 1), input.maxBackoffSeconds ?? 60) * 1000;

/**
 * One agent task: runs the agent activity on the agent task queue and records every attempt and the
 * single terminal outcome in PostgreSQL. Retries and fallbacks are decided here, not by Temporal's
 * activity retry policy, so each attempt gets a failure class and a row of its own, and a worker lost
 * mid-run (heartbeat timeout) counts as a `crash` attempt. After a failure the class's policy retries
 * the same agent, moves to the next agent of the task's chain, or fails the task; while the agent
 * worker holds attempts back (breaker open, cluster-wide limits, budgets) the task waits on durable
 * timers. Fails (as a Temporal workflow failure of the last attempt's class) when the task fails;
 * cancellation kills the agent's process group and ends the workflow as cancelled, unless the task's
 * end was recorded first (a success, a failure), which then stands.
 */
export async function agentTaskWorkflow(input: AgentTaskInput): Promise<AgentTaskOutput> {
  const output = await runTask(input);
  return input.resultForPlan === true ? resultForPlan(output) : output;
}

async function runTask(input: AgentTaskInput): Promise<AgentTaskOutput> {
  const problems = findInputProblems(input);
  if (problems.length > 0) {
    const message = `invalid task input: ${problems.join('; ')}`;
    // A workflow started by hand with bad input still ends its task row, when it names one.
    if (takes(input, PATCHES.invalidInputRecorded) && typeof input?.taskId === 'string' && isUuid(input.taskId)) {
      await boundedBookkeeping
        .recordTaskOutcome({
          taskId: input.taskId,
          status: 'failed',
          attempt: 0,
          error: { class: FAILURE_CLASSES.invalidInput, message },
        })
        .catch((err: unknown) => log.warn('could not record the invalid input', { error: String(err) }));
    }
    throw ApplicationFailure.nonRetryable(message, FAILURE_CLASSES.invalidInput);
  }
  const agentsOn = (taskQueue: string, workerQueue: boolean) =>
    proxyActivities<AgentActivities>({
      taskQueue,
      // On one worker's own queue (a task's worktree is there), an attempt that no worker picks up
      // means that worker is gone: it fails instead of waiting forever, and the worktree moves
      // (withWorktree). Once picked up, it may wait for a slot there.
      ...(workerQueue && { scheduleToStartTimeout: WORKER_QUEUE_START_TIMEOUT_MS }),
      startToCloseTimeout:
        (input.timeoutSeconds + AGENT_TIMEOUT_MARGIN_SECONDS + (workerQueue ? WORKER_QUEUE_LINE_SECONDS : 0)) * 1000,
      heartbeatTimeout: AGENT_HEARTBEAT_TIMEOUT_SECONDS * 1000,
      retry: { maximumAttempts: 1 },
      // Wait until the agent worker has killed the process group, so `cancelled` means the agent is gone.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      priority: { priorityKey: input.priority },
    });
  const agents = agentsOn(input.agentTaskQueue, false);
  // Asked here, before any wait: a patch first asked after a signal does not replay (its marker would
  // precede the command in history but not in the replayed code).
  const chains = takes(input, PATCHES.chainsAndPolicies);
  const keepWake = chains && takes(input, PATCHES.wakeKeptAcrossAsks);
  const followRecordedEnd = chains && takes(input, PATCHES.cancelFollowsRecordedEnd);
  let attemptsBegan = false;
  const loop = (task: AgentTaskInput, on: AgentActivities): Promise<AgentTaskOutput> => {
    attemptsBegan = true;
    return chains ? chainLoop(task, on, bookkeeping, { keepWake, followRecordedEnd }) : singleAgentLoop(task, on);
  };
  // Only tasks that name a repository or declare locks use them; histories from before never do.
  const repo = input.repo !== undefined && takes(input, PATCHES.worktrees) ? input.repo : undefined;
  const salvage = repo !== undefined && takes(input, PATCHES.worktreeSalvage);
  const run = (): Promise<AgentTaskOutput> =>
    repo
      ? withWorktree(
          {
            input,
            repo,
            salvage,
            leavesGoneWorkers: () => takes(input, PATCHES.worktreeLeavesGoneWorkers),
            failedWorkCommitWhole: () => takes(input, PATCHES.failedWorkCommitWhole),
            unsavedWorkNeedsItsWorker: () => takes(input, PATCHES.unsavedWorkNeedsItsWorker),
            unregistersLostWorktrees: () => takes(input, PATCHES.lostWorktreeUnregistered),
            agentsOn: (workerQueue) => agentsOn(workerQueue, true),
            bookkeeping,
          },
          (placed) => loop(input, placed),
        )
      : loop(input, agents);
  // Asked in the order of the first versions, so their histories replay.
  const locked = input.locks !== undefined && input.locks.globs.length > 0 && takes(input, PATCHES.fileLocks);
  if (!locked && !repo) return run();
  // Such a task may be cancelled before its attempts begin (waiting for its locks, or for its worktree);
  // the attempt loop records a cancel, so then it is recorded here.
  const recordEarlyCancel = takes(input, PATCHES.cancelledBeforeAttempts);
  try {
    return await (locked && input.locks
      ? withFileLocks(input.locks, input.taskId, () => takes(input, PATCHES.locksReleaseStartsManager), run)
      : run());
  } catch (err) {
    if (isCancellation(err) && !attemptsBegan && recordEarlyCancel) {
      await CancellationScope.nonCancellable(() =>
        bookkeeping.recordTaskOutcome({
          taskId: input.taskId,
          status: 'cancelled',
          attempt: 0,
          error: { class: FAILURE_CLASSES.cancelled, message: 'task cancelled before its first attempt' },
        }),
      );
    }
    throw err;
  }
}

/**
 * The attempt loop of histories recorded before fallback chains and policies: one agent, every failure
 * but the non-retryable ones retried up to `maxAttempts`. Kept so those histories replay unchanged.
 */
async function singleAgentLoop(input: AgentTaskInput, agents: AgentActivities): Promise<AgentTaskOutput> {
  let attempt = 0;
  try {
    for (;;) {
      attempt += 1;
      try {
        const result = await agents.runAgent({
          taskId: input.taskId,
          attempt,
          agent: input.agent,
          model: input.model,
          workdir: input.workdir,
          timeoutSeconds: input.timeoutSeconds,
        });
        // The agent activity records a success together with its attempt; histories from before that
        // change recorded it here.
        if (!takes(input, PATCHES.successRecordedByAgent)) {
          await bookkeeping.recordTaskOutcome({
            taskId: input.taskId,
            status: 'succeeded',
            attempt,
            exitCode: result.exitCode,
          });
        }
        return { status: 'succeeded', attempts: attempt, exitCode: result.exitCode, outputTail: result.outputTail };
      } catch (err) {
        if (isCancellation(err)) throw err;
        const failure = classify(err);
        log.warn('agent attempt failed', { taskId: input.taskId, attempt, failureClass: failure.failureClass });
        // Closes the attempt when its worker could not (it died, or failed before starting the agent);
        // an attempt the worker already closed is left as it is.
        await bookkeeping.recordAttemptFailure({
          taskId: input.taskId,
          attempt,
          agent: input.agent,
          model: input.model,
          failureClass: failure.failureClass,
          message: failure.message,
        });
        const final = NON_RETRYABLE_CLASSES.includes(failure.failureClass) || attempt >= input.maxAttempts;
        if (final) {
          await bookkeeping.recordTaskOutcome({
            taskId: input.taskId,
            status: 'failed',
            attempt,
            error: { class: failure.failureClass, message: failure.message },
          });
          throw ApplicationFailure.nonRetryable(
            `task failed after ${attempt} attempt(s): ${failure.message}`,
            failure.failureClass,
          );
        }
        await sleep(backoffMs(input, attempt));
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      // The cancelled scope cannot schedule activities; record the outcome outside it.
      await CancellationScope.nonCancellable(() =>
        bookkeeping.recordTaskOutcome({
          taskId: input.taskId,
          status: 'cancelled',
          attempt,
          error: { class: FAILURE_CLASSES.cancelled, message: 'task cancelled' },
        }),
      );
    }
    throw err;
  }
}
