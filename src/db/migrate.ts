import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

export const MIGRATIONS_DIR = resolve(__dirname, '../../../infra/migrations');

/** Arbitrary key for the advisory lock that lets many processes start at once and migrate only once. */
const MIGRATION_LOCK_KEY = 724_019_881;
/** PostgreSQL's answer to a connection to a database that does not exist. */
const INVALID_CATALOG_NAME = '3D000';
/** A server that takes a connection but never answers stops start-up with an error, not a hang. */
const CONNECT_TIMEOUT_MS = 10_000;

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
  const own = new Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  try {
    await own.connect();
    return;
  } catch (err) {
    if ((err as { code?: string }).code !== INVALID_CATALOG_NAME) throw err;
  } finally {
    await own.end().catch(() => undefined);
  }
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = `/${adminDatabase}`;
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: unknown) => {
        if (!createdMeanwhile(err)) throw err;
      });
    }
  } finally {
    await client.end();
  }
}

/**
 * Applies the versioned SQL files in `dir` (named NNNN_name.sql) that have not run yet, each in its own
 * transaction, under an advisory lock. Returns the versions applied.
 */
export async function migrate(url: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
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
      await client.query('BEGIN');
      try {
        await client.query(readFileSync(join(dir, file), 'utf8'));
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`);
      }
      applied.push(version);
    }
    return applied;
  } finally {
    await client.end();
  }
}
