import { Pool } from 'pg';

/**
 * A PostgreSQL pool whose idle-client errors (a restarted server) are logged by the caller, not fatal.
 * No pool-wide `query_timeout`: a statement that is slow under load (a large patch, a busy server) must
 * not fail a task's bookkeeping. Calls that need a bound pass their own (the readiness check).
 */
export function createPool(url: string, onError: (err: Error) => void, max = 10): Pool {
  // TCP keepalives: a connection a firewall dropped in silence is found, not waited on for good.
  const pool = new Pool({ connectionString: url, max, connectionTimeoutMillis: 5000, keepAlive: true });
  pool.on('error', onError);
  return pool;
}
