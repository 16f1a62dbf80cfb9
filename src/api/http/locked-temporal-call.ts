import type { Client } from '@temporalio/client';

/**
 * How long a Temporal call made while a row lock is held may take. The lock's transaction holds a
 * pool connection too: without a deadline, a hung Temporal would pin connections until every endpoint
 * failed. Past it the call fails (DEADLINE_EXCEEDED), the transaction rolls back, and the client gets
 * a 503, which it may retry.
 */
export const LOCKED_TEMPORAL_CALL_MS = 30_000;

/** Runs `call`'s Temporal requests under the deadline for calls made while holding a row lock. */
export const lockedTemporalCall = <R>(temporal: Client, call: () => Promise<R>): Promise<R> =>
  temporal.withDeadline(Date.now() + LOCKED_TEMPORAL_CALL_MS, call);
