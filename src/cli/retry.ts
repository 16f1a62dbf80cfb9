import { ApiError, ConnectionError } from './api-client';

/**
 * Retries in a row before `logs -f` and `--wait` give up: with the waits of retryDelayMs before them
 * (1 s, 2 s, 4 s, 8 s, 16 s), about 30 s of an API that does not come back.
 */
export const MAX_RETRIES = 5;

/** The wait before the n-th retry in a row (from 1): 1 s, doubling with each one. */
export const retryDelayMs = (n: number): number => 1000 * 2 ** (n - 1);

/** What a proxy answers while the API behind it is away. */
export const GATEWAY_DOWN = new Set([502, 503, 504]);

/** A failure that passes when a restarting API is back: a refused connection, or a proxy's 502–504. */
export const isTransient = (err: unknown): boolean =>
  err instanceof ConnectionError || (err instanceof ApiError && GATEWAY_DOWN.has(err.status));
