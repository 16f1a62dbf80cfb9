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
