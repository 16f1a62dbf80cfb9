import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` in one transaction on a connection of its own: committed if it resolves, rolled back if
 * not. A connection that cannot even roll back (lost, or still busy with a query that timed out) is
 * destroyed rather than given back to the pool, where the next caller would find it mid-transaction.
 */
export async function inTransaction<T>(pool: Pool, work: (db: PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  let unusable: Error | undefined;
  try {
    await db.query('BEGIN');
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
