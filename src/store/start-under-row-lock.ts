import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { boundedQuery, STATEMENT_TIMEOUT_MS } from '../db/bounded-query';
import { inTransaction } from '../db/transaction';

/**
 * Starts a stranded submission (a task or a plan stored but never started): `lockRow` (a SELECT … FOR
 * UPDATE SKIP LOCKED of the row by id, $1, while it is still unstarted) locks it, `start` starts its
 * workflow, and `setRunId` records the run id it returns before the lock is released, so two sweepers
 * cannot both start it and a failed submission's deleteUnstarted waits and keeps it. False when another
 * process holds the row or it started meanwhile. Its statements are bounded by STATEMENT_TIMEOUT_MS
 * (`start` bounds its own call).
 */
export function startUnderRowLock<Row extends QueryResultRow>(
  pool: Pool,
  lockRow: string,
  id: string,
  start: (row: Row) => Promise<string>,
  setRunId: (runId: string, db: PoolClient) => Promise<void>,
): Promise<boolean> {
  return inTransaction(
    pool,
    async (db) => {
      const row = (await db.query<Row>(boundedQuery(STATEMENT_TIMEOUT_MS, lockRow, [id]))).rows[0];
      if (!row) return false;
      await setRunId(await start(row), db);
      return true;
    },
    { timeoutMs: STATEMENT_TIMEOUT_MS },
  );
}
