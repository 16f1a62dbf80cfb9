import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` in one transaction on a connection of its own, opened by `begin`: committed if it
 * resolves, rolled back if not. A connection that cannot even roll back (lost, or still busy with a
 * query that timed out) is destroyed rather than given back to the pool, where the next caller would
 * find it mid-transaction.
 */
export async function inTransaction<T>(pool: Pool, work: (db: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const db = await pool.connect();
  let unusable: Error | undefined;
  try {
    await db.query(begin);
    const result = await work(db);
    await db.query('COMMIT');
    return result;
  } catch (err) {
    await db.query('ROLLBACK').catch((rollbackErr: Error) => {
      unusable = rollbackErr;
    });
    throw err;
  } finally {
    db.release(unusable);
  }
}

/**
 * Runs `work` in a read-only transaction at REPEATABLE READ: all its statements see the database as it
 * was at the first one, so figures read one after another still agree with each other.
 */
export function inReadOnlySnapshot<T>(pool: Pool, work: (db: PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, work, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}
