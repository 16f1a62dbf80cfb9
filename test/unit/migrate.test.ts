import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { ensureDatabase, migrate, MIGRATION_LOCK_KEY, MIGRATIONS_DIR } from '../../src/db/migrate';
import { freePort } from '../../src/net/free-port';
import { testEnv } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

const urlOf = (database: string): string => {
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

async function on<T>(database: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: urlOf(database) });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe('migrate', () => {
  const databases: string[] = [];
  let dir: string;
  const freshDatabase = async (): Promise<string> => {
    const name = `atelier_migrate_${randomUUID().slice(0, 8)}`;
    databases.push(name);
    await ensureDatabase(urlOf(name));
    return name;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-migrations-'));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const name of databases) {
      await on('postgres', (admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    }
  });

  it('names the server it cannot reach, and where it is set, without the password', async () => {
    const port = await freePort();
    await assert.rejects(ensureDatabase(`postgres://atelier:hunter2@127.0.0.1:${port}/atelier`), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`^cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(DATABASE_URL\\): `),
      );
      assert.ok(!err.message.includes('hunter2'), err.message);
      return true;
    });
  });

  it('applies every version once when many processes migrate a new database at once', async () => {
    const name = await freshDatabase();
    const runs = await Promise.all(Array.from({ length: 6 }, () => migrate(urlOf(name))));
    const versions = readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith('.sql'))
      .map((f) => f.replace(/\.sql$/, ''))
      .sort();
    assert.deepEqual(runs.flat().sort(), versions, 'each version applied by exactly one of them');
    const recorded = await on(name, (c) => c.query<{ version: string }>('SELECT version FROM schema_migrations'));
    assert.equal(recorded.rowCount, versions.length);
    assert.deepEqual(await migrate(urlOf(name)), [], 'a later start applies nothing');
  });

  it('gives up on a table another transaction holds, naming the migration, instead of queueing every query behind it', async () => {
    const name = await freshDatabase();
    writeFileSync(join(dir, '0001_table.sql'), 'CREATE TABLE things (id int);');
    await migrate(urlOf(name), dir);
    writeFileSync(join(dir, '0002_column.sql'), 'ALTER TABLE things ADD COLUMN label text;');
    const holder = new Client({ connectionString: urlOf(name) });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE things IN ACCESS SHARE MODE');
      await assert.rejects(
        migrate(urlOf(name), dir),
        /^Error: migration 0002_column\.sql failed: canceling statement due to lock timeout \(it waited 15s for a table another transaction holds; start again\)$/,
      );
    } finally {
      await holder.end();
    }
    assert.deepEqual(await migrate(urlOf(name), dir), ['0002_column'], 'applied at the next start');
  });

  it('stops waiting for another process that holds the migrations lock when asked to stop', async () => {
    const name = await freshDatabase();
    await migrate(urlOf(name));
    const holder = new Client({ connectionString: urlOf(name) });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const stop = new AbortController();
      const migrating = migrate(urlOf(name), MIGRATIONS_DIR, stop.signal);
      migrating.catch(() => undefined);
      // Its backend waits on an advisory lock (read from a connection of its own: a transaction's view
      // of pg_stat_activity stays as it first read it).
      await waitFor('the migration to wait for the lock', () =>
        on(name, async (c) => {
          const r = await c.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'advisory'", [
            name,
          ]);
          return r.rowCount === 1;
        }),
      );
      stop.abort();
      await within('the stopped migration', 5_000, assert.rejects(migrating));
    } finally {
      await holder.end();
    }
  });
});
