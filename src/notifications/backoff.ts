/** How webhook deliveries are retried: exponential from 1 s, capped at 10 minutes, for a day. */
export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Counted from the event: a delivery still failing after this is given up. */
  giveUpAfterMs: number;
}

export const WEBHOOK_RETRY: RetryPolicy = {
  initialDelayMs: 1000,
  maxDelayMs: 10 * 60_000,
  giveUpAfterMs: 24 * 60 * 60_000,
};

/** The wait after the `attempts`-th failed delivery (1 s, 2 s, 4 s... up to the cap). */
export function retryDelayMs(attempts: number, policy: RetryPolicy = WEBHOOK_RETRY): number {
  const exponent = Math.max(0, attempts - 1);
  // 2^30 ms is already past any sane cap; stop there rather than overflow to Infinity.
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(exponent, 30));
}

/**
 * When to try a failed delivery again: `retryDelayMs` (capped) spread over half to all of it, so events
 * that failed together (a receiver down, or rate-limiting a burst) do not all come due at once and
 * collide again, at the cap too; and no sooner than the receiver asked (`Retry-After`), within the cap.
 */
export function nextDelayMs(
  attempts: number,
  retryAfterMs: number | undefined,
  policy: RetryPolicy = WEBHOOK_RETRY,
  random: () => number = Math.random,
): number {
  const spread = retryDelayMs(attempts, policy) * (0.5 + random() / 2);
  return Math.round(Math.min(policy.maxDelayMs, Math.max(spread, retryAfterMs ?? 0)));
}

/** A `Retry-After` header's wait in ms (delay-seconds or an HTTP date), or undefined when it has none. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
