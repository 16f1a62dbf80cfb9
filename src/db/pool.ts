import { Pool } from 'pg';

/**
 * A PostgreSQL pool whose idle-client errors (a restarted server) are logged by the caller, not fatal.
 * No pool-wide `query_timeout` unless `queryTimeoutMs` is given: a statement that is slow under load (a
 * large patch, a busy server) must not fail a task's bookkeeping. Calls that need a bound pass their own
 * (the readiness check); a pool that serves only background work may bound every statement.
 */
export function createPool(url: string, onError: (err: Error) => void, max = 10, queryTimeoutMs?: number): Pool {
  const pool = new Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5000,
    // TCP keepalives: a connection a firewall dropped in silence is found, not waited on for good.
    keepAlive: true,
    query_timeout: queryTimeoutMs,
  });
  pool.on('error', onError);
  return pool;
}
