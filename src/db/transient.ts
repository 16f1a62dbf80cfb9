/** SQLSTATE classes and socket errors that mean "the database is away for a moment", not "this is wrong". */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  // The database's host name resolves to nothing for a moment: its container restarts (compose, k8s).
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

export function isTransientDbError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && (TRANSIENT_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}

/** Failures to reach the database at all: a statement that met one was never sent. */
const UNREACHED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P03',
  '53300',
]);

/**
 * A transient failure that may have come after the statement was sent, so that it may have committed
 * with only its answer lost (a connection reset or terminated mid-statement, the server shut down),
 * as opposed to one that never reached the database (refused, unresolved, no free connection).
 */
export function answerMayBeLost(err: unknown): boolean {
  if (!isTransientDbError(err)) return false;
  const e = err as { code?: string; message?: string };
  if (e.code !== undefined && UNREACHED_CODES.has(e.code)) return false;
  return !/timeout exceeded when trying to connect/i.test(e.message ?? '');
}

/** How long `retryTransient` retries by default. */
export const TRANSIENT_RETRY_MS = 30_000;

/**
 * Runs an idempotent database call, retrying transient failures (a restarting PostgreSQL) with backoff
 * for up to `budgetMs`; any other error, or the last transient one, is thrown.
 */
export async function retryTransient<T>(call: () => Promise<T>, budgetMs = TRANSIENT_RETRY_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  let delayMs = 100;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isTransientDbError(err) || Date.now() + delayMs > deadline) throw err;
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 2000);
    }
  }
}
