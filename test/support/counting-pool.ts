import type { Pool } from 'pg';

/**
 * `pool`, with the text of every statement given to it (as text or a query config) pushed onto `statements`. A new object, so
 * whatever a store remembers per pool starts empty for it.
 */
export function countingPool(pool: Pool, statements: string[]): Pool {
  return Object.create(pool, {
    query: {
      value: (...args: Parameters<Pool['query']>) => {
        // A bounded query (boundedQuery) comes as a config object, its text inside.
        const statement = args[0] as string | { text: string };
        statements.push(typeof statement === 'string' ? statement : statement.text);
        return pool.query(...args);
      },
    },
  }) as Pool;
}
