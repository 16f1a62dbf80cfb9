import type { Pool } from 'pg';

/**
 * `pool`, with the text of every statement given to it pushed onto `statements`. A new object, so
 * whatever a store remembers per pool starts empty for it.
 */
export function countingPool(pool: Pool, statements: string[]): Pool {
  return Object.create(pool, {
    query: { value: (...args: Parameters<Pool['query']>) => (statements.push(String(args[0])), pool.query(...args)) },
  }) as Pool;
}
