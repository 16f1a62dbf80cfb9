import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

export const MIGRATIONS_DIR = resolve(__dirname, '../../../infra/migrations');

/** Arbitrary key for the advisory lock that lets many processes start at once and migrate only once. */
export const MIGRATION_LOCK_KEY = 724_019_881;
/** PostgreSQL's answer to a connection to a database that does not exist. */
const INVALID_CATALOG_NAME = '3D000';
/** A server that takes a connection but never answers stops start-up with an error, not a hang. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * A client whose connection may drop between queries: the next query fails, the process does not. A
 * connection that fails says which server it was for and where that is set (never the URL itself, which
 * may hold a password); PostgreSQL's own answers (a database that does not exist) keep their code.
 */
async function connected(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === INVALID_CATALOG_NAME) throw err;
    const { hostname, port } = new URL(url);
    throw Object.assign(
      new Error(`cannot connect to PostgreSQL at ${hostname}:${port || 5432} (DATABASE_URL): ${e.message}`, {
        cause: err,
      }),
      { code: e.code },
    );
  }
  return client;
}

/**
 * Whether CREATE DATABASE failed because another process created the same database meanwhile: 42P04
 * when it had committed before this one looked, 23505 on the name's unique index when both were
 * creating it at once (this one waited for the other's commit).
 */
function createdMeanwhile(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '42P04' || (e.code === '23505' && e.constraint === 'pg_database_datname_index');
}

/**
 * Creates the database named in `url` when it does not exist, connecting to `adminDatabase` to do so.
 * It connects to the database itself first: behind a pooler that serves only it (PgBouncer), or as a
 * role allowed into it alone, an existing database needs nothing more.
 */
export async function ensureDatabase(url: string, adminDatabase = 'postgres'): Promise<void> {
  try {
    await (await connected(url)).end().catch(() => undefined);
    return;
  } catch (err) {
    if ((err as { code?: string }).code !== INVALID_CATALOG_NAME) throw err;
  }
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = `/${adminDatabase}`;
  const client = await connected(admin.toString());
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: unknown) => {
        if (!createdMeanwhile(err)) throw err;
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * How long a migration waits for a lock on a table it changes. Waiting, it would hold every other query
 * on that table behind it (a rolling deploy's old pods serving meanwhile); it fails instead, and runs
 * again at the next start (an init container's restart).
 */
const TABLE_LOCK_TIMEOUT = '15s';

/**
 * Runs `work` in a transaction that holds the migrations' advisory lock, so that one process at a time
 * migrates: a transaction's lock, released at its end, so that a pooler that hands each transaction
 * its own server connection (PgBouncer's transaction mode) cannot leave it held.
 */
async function underMigrationLock<T>(client: Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`SET LOCAL lock_timeout = '${TABLE_LOCK_TIMEOUT}'`);
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A ROLLBACK that fails too (the connection is gone) must not hide why the work failed.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Applies the versioned SQL files in `dir` (named NNNN_name.sql) that have not run yet, each in its own
 * transaction under the migrations' advisory lock, where it is looked up again (another process may
 * have applied it meanwhile). Returns the versions applied. Aborting `signal` closes the connection,
 * which ends a wait for the advisory lock (another process migrating for long) and rolls back the
 * migration under way: the call rejects, and that migration runs again at the next start.
 */
export async function migrate(url: string, dir = MIGRATIONS_DIR, signal?: AbortSignal): Promise<string[]> {
  const client = await connected(url);
  const close = (): void => void client.end().catch(() => undefined);
  signal?.addEventListener('abort', close, { once: true });
  try {
    signal?.throwIfAborted();
    await underMigrationLock(client, () =>
      client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      ),
    );
    const done = new Set(
      (await client.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    const files = readdirSync(dir)
      .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
      .sort();
    const applied: string[] = [];
    for (const file of files) {
      const version = file.replace(/\.sql$/, '');
      if (done.has(version)) continue;
      const ran = await underMigrationLock(client, async () => {
        const found = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [version]);
        if (found.rowCount !== 0) return false;
        await client.query(readFileSync(join(dir, file), 'utf8'));
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        return true;
      }).catch((err: unknown) => {
        const e = err as { code?: string; message?: string };
        const waited =
          e.code === '55P03'
            ? ` (it waited ${TABLE_LOCK_TIMEOUT} for a table another transaction holds; start again)`
            : '';
        throw new Error(`migration ${file} failed: ${e.message}${waited}`);
      });
      if (ran) applied.push(version);
    }
    return applied;
  } finally {
    signal?.removeEventListener('abort', close);
    await client.end().catch(() => undefined);
  }
}
