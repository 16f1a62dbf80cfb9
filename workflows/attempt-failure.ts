import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import {
  FAILURE_CLASS_NAMES,
  FAILURE_CLASSES,
  type AttemptFailureDetails,
  type FailureClass,
  type FailurePolicy,
} from './definitions';

export interface ClassifiedFailure {
  failureClass: FailureClass;
  message: string;
  /** The profile's policy for the class, when the agent worker sent it. */
  policy?: FailurePolicy;
  /** The agent's reset time (epoch ms), when it named one. */
  resetAt?: number | null;
}

/**
 * Turns a failed `runAgent` into a failure class. The agent worker types its failures with the class
 * (and details for the policy); Temporal's own timeouts mean a lost worker (heartbeat, or a worker's own
 * queue left unpolled: `crash`) or the hard limit (`timeout`); anything else is a `crash`: an error the
 * worker threw without a class (a database away for longer than its writes wait, say) arrives typed
 * with its name (`Error`, `DatabaseError`), which is no class.
 */
export function classifyAttemptError(err: unknown): ClassifiedFailure {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure && FAILURE_CLASS_NAMES.includes(cause.type as FailureClass)) {
      const details = (cause.details?.[0] ?? undefined) as AttemptFailureDetails | undefined;
      return {
        failureClass: cause.type as FailureClass,
        message: cause.message,
        policy: details?.policy,
        resetAt: details?.resetAt ?? null,
      };
    }
    if (cause instanceof ApplicationFailure) {
      const message = cause.type ? `${cause.type}: ${cause.message}` : cause.message;
      return { failureClass: FAILURE_CLASSES.crash, message };
    }
    if (cause instanceof TimeoutFailure) {
      if (cause.timeoutType === 'HEARTBEAT') {
        // The agent worker died or lost its connection mid-run.
        return { failureClass: FAILURE_CLASSES.crash, message: 'agent worker stopped heartbeating (worker lost)' };
      }
      if (cause.timeoutType === 'SCHEDULE_TO_START') {
        // Sent to one worker's own queue (where a task's worktree is), and nobody took it.
        return { failureClass: FAILURE_CLASSES.crash, message: 'the worker holding the task’s worktree is gone' };
      }
      return { failureClass: FAILURE_CLASSES.timeout, message: 'attempt exceeded its hard time limit' };
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return { failureClass: FAILURE_CLASSES.crash, message };
}

/**
 * Whether an activity failed because its worker is gone: it stopped heartbeating mid-run, or the
 * worker's own queue went unpolled. Work that lived on that worker's disk must move elsewhere.
 */
export function isWorkerLost(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    (err.cause.timeoutType === 'HEARTBEAT' || err.cause.timeoutType === 'SCHEDULE_TO_START')
  );
}

/**
 * Whether an activity sent to one worker's own queue was never picked up (SCHEDULE_TO_START): that worker
 * is gone, and nothing of the activity ran there.
 */
export function neverPickedUp(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}
