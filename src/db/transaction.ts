import type { Pool, PoolClient } from 'pg';
import { boundedQuery } from './bounded-query';

/**
 * How long a ROLLBACK may take. PostgreSQL answers one at once on a connection that works; one that
 * does not (lost, silent, or still busy with a statement whose caller stopped waiting for it, which the
 * ROLLBACK would queue behind) is destroyed instead of holding its caller until TCP gives up.
 */
export const ROLLBACK_TIMEOUT_MS = 3000;

export interface TransactionOptions {
  /** The statement that opens the transaction. */
  begin?: string;
  /** Bounds BEGIN and COMMIT (unbounded when undefined); `work` bounds its own statements. */
  timeoutMs?: number;
}

/**
 * Runs `work` in one transaction on a connection of its own, opened by `begin`: committed if it
 * resolves, rolled back if not. A connection that cannot even roll back (lost, or still busy with a
 * query that timed out) is destroyed rather than given back to the pool, where the next caller would
 * find it mid-transaction.
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (db: PoolClient) => Promise<T>,
  { begin = 'BEGIN', timeoutMs }: TransactionOptions = {},
): Promise<T> {
  const db = await pool.connect();
  let unusable: Error | undefined;
  try {
    await db.query(boundedQuery(timeoutMs, begin));
    const result = await work(db);
    await db.query(boundedQuery(timeoutMs, 'COMMIT'));
    return result;
  } catch (err) {
    await db.query(boundedQuery(ROLLBACK_TIMEOUT_MS, 'ROLLBACK')).catch((rollbackErr: Error) => {
      unusable = rollbackErr;
    });
    throw err;
  } finally {
    db.release(unusable);
  }
}

/**
 * Runs `work` in a read-only transaction at REPEATABLE READ: all its statements see the database as it
 * was at the first one, so figures read one after another still agree with each other. `timeoutMs`
 * bounds BEGIN and COMMIT, as in inTransaction.
 */
export function inReadOnlySnapshot<T>(
  pool: Pool,
  work: (db: PoolClient) => Promise<T>,
  timeoutMs?: number,
): Promise<T> {
  return inTransaction(pool, work, { begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', timeoutMs });
}
