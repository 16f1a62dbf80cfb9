import { withinDeadline } from '../../src/async/within-deadline';

/**
 * Polls `check` until it returns a value other than undefined/false, or fails at the deadline with
 * `what` and the last value seen. Tests wait on conditions, never on fixed sleeps.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `promise`, or a failure naming `what` once `ms` have passed: for a call that must not hang a test. */
export const within = <T>(what: string, ms: number, promise: Promise<T>): Promise<T> =>
  withinDeadline(promise, ms, what);

export { processAlive } from '../../src/process/process-alive';
