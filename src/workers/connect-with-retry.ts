import { setTimeout as delay } from 'node:timers/promises';
import { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { TemporalConnectionOptions } from '../temporal/connection-options';

/**
 * Connects to Temporal, retrying with backoff for as long as it takes, so a worker started before the
 * server (or during its restart) waits instead of dying. Returns undefined if `signal` aborts first.
 */
export async function connectWithRetry(
  options: TemporalConnectionOptions,
  logger: Logger,
  signal: AbortSignal,
): Promise<NativeConnection | undefined> {
  let delayMs = 500;
  while (!signal.aborted) {
    try {
      return await NativeConnection.connect(options);
    } catch (err) {
      logger.warn(
        { address: options.address, retryInMs: delayMs, error: (err as Error).message },
        'Temporal not reachable yet',
      );
      // Ends early, without an error, when `signal` aborts; leaves no listener on it either way.
      await delay(delayMs, undefined, { signal }).catch(() => undefined);
      delayMs = Math.min(delayMs * 2, 10_000);
    }
  }
  return undefined;
}
