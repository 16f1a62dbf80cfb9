import { DEFAULT_POLICIES, FAILURE_CLASSES, type FailureClass, type FailurePolicy } from './definitions';

/** What happened on the agent the task is on, counted by the workflow. */
export interface HopCounts {
  /** Attempts that ran on this agent, the failed one included. */
  attempts: number;
  /** Failures of this class on this agent, the failed one included. */
  classFailures: number;
}

export interface PolicyOptions {
  maxAttempts: number;
  /** The task's first retry delay and cap, used when the policy names none. */
  backoffSeconds: number;
  maxBackoffSeconds: number;
  /** Workflow time now (epoch ms). */
  now: number;
}

export type PolicyDecision =
  | { action: 'retry'; delayMs: number; reason: string }
  | { action: 'next'; reason: string }
  | { action: 'fail'; reason: string };

/**
 * The profile's policy for the class when the attempt carried one, else the built-in default (a
 * crash's for a class it does not know).
 */
export function policyFor(failureClass: FailureClass, given: FailurePolicy | undefined): FailurePolicy {
  if (given) return given;
  if (failureClass === FAILURE_CLASSES.succeeded) return { action: 'fail' };
  return DEFAULT_POLICIES[failureClass] ?? DEFAULT_POLICIES.crash;
}

/** The first delay, doubling per attempt up to `maxSeconds`, or up to the first delay when that is longer. */
const backoffMs = (firstSeconds: number, maxSeconds: number, attempt: number): number =>
  Math.min(firstSeconds * 2 ** (attempt - 1), Math.max(maxSeconds, firstSeconds)) * 1000;

/**
 * Decides what follows a failed attempt. Pure and deterministic (workflow code): the same failure and
 * counts always give the same decision. `cancelled` never reaches it.
 * - `fail`: the task fails now (max_turns, invalid input, …);
 * - `next`: the next agent of the chain (auth, context overflow, or retries of this agent used up);
 * - `retry`: the same agent after a backoff, or at its reset time if the agent named one close enough.
 */
export function decideAfterFailure(
  failure: { failureClass: FailureClass; policy?: FailurePolicy; resetAt?: number | null },
  counts: HopCounts,
  opts: PolicyOptions,
): PolicyDecision {
  const policy = policyFor(failure.failureClass, failure.policy);
  if (policy.action === 'fail') return { action: 'fail', reason: `${failure.failureClass} is not retried` };
  if (policy.action === 'next') return { action: 'next', reason: `${failure.failureClass} moves to the next agent` };
  if (counts.attempts >= opts.maxAttempts) {
    return { action: 'next', reason: `${counts.attempts} attempt(s) on this agent used up` };
  }
  if (policy.retries !== undefined && counts.classFailures > policy.retries) {
    return { action: 'next', reason: `${policy.retries} retr(y/ies) of ${failure.failureClass} used up` };
  }
  const backoff = backoffMs(policy.backoffSeconds ?? opts.backoffSeconds, opts.maxBackoffSeconds, counts.attempts);
  if (failure.resetAt != null && policy.waitForReset !== false) {
    const untilReset = failure.resetAt - opts.now;
    const maxWaitMs = (policy.maxResetWaitSeconds ?? 300) * 1000;
    if (untilReset > maxWaitMs) {
      return { action: 'next', reason: `the limit resets in ${Math.round(untilReset / 1000)}s, too far to wait` };
    }
    return { action: 'retry', delayMs: Math.max(untilReset, backoff), reason: 'waiting for the limit to reset' };
  }
  return { action: 'retry', delayMs: backoff, reason: 'retrying after a backoff' };
}
