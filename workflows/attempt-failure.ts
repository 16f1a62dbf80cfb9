import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { FAILURE_CLASSES, type AttemptFailureDetails, type FailureClass, type FailurePolicy } from './definitions';

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
 * (and details for the policy); Temporal's own timeouts mean a lost worker (heartbeat: `crash`) or the
 * hard limit (`timeout`); anything else is a `crash`.
 */
export function classifyAttemptError(err: unknown): ClassifiedFailure {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure && cause.type) {
      const details = (cause.details?.[0] ?? undefined) as AttemptFailureDetails | undefined;
      return {
        failureClass: cause.type as FailureClass,
        message: cause.message,
        policy: details?.policy,
        resetAt: details?.resetAt ?? null,
      };
    }
    if (cause instanceof TimeoutFailure) {
      // A heartbeat timeout means the agent worker died or lost its connection mid-run.
      const lost = cause.timeoutType === 'HEARTBEAT';
      return {
        failureClass: lost ? FAILURE_CLASSES.crash : FAILURE_CLASSES.timeout,
        message: lost ? 'agent worker stopped heartbeating (worker lost)' : 'attempt exceeded its hard time limit',
      };
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return { failureClass: FAILURE_CLASSES.crash, message };
}
