import { Pool } from 'pg';

/** A PostgreSQL pool whose idle-client errors (a restarted server) are logged by the caller, not fatal. */
export function createPool(url: string, onError: (err: Error) => void, max = 10): Pool {
  const pool = new Pool({ connectionString: url, max, connectionTimeoutMillis: 5000 });
  pool.on('error', onError);
  return pool;
}
