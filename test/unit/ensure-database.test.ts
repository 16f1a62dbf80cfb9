import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Client } from 'pg';
import { ensureDatabase } from '../../src/db/migrate';
import { testEnv } from '../support/test-env';

/** The test run's server with `database` in the URL. */
const urlOf = (database: string): string => {
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

async function onAdmin<T>(work: (admin: Client) => Promise<T>): Promise<T> {
  const admin = new Client({ connectionString: urlOf('postgres') });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

describe('ensureDatabase', () => {
  it('lets many processes create the same database at once', async () => {
    // Several starts at once (pods, compose services) all see no database, then all CREATE it: the
    // ones that wait on the name's unique index get 23505, the later ones 42P04. Rounds, since the
    // interleaving is up to the server.
    for (let round = 0; round < 3; round++) {
      const name = `atelier_ensure_${randomUUID().slice(0, 8)}`;
      try {
        const results = await Promise.allSettled(Array.from({ length: 8 }, () => ensureDatabase(urlOf(name))));
        const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
        assert.deepEqual(failed, [], `round ${round}`);
        const found = await onAdmin((admin) => admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]));
        assert.equal(found.rowCount, 1);
      } finally {
        await onAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}"`));
      }
    }
  });

  it('connects to an existing database only: the admin database is not needed then', async () => {
    const name = `atelier_ensure_${randomUUID().slice(0, 8)}`;
    await onAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`));
    try {
      // As behind a pooler that serves the one database: no other is there to connect to.
      await ensureDatabase(urlOf(name), 'no_such_admin_database');
      // A missing one still needs the admin database, and the error says which is missing.
      await assert.rejects(
        ensureDatabase(urlOf(`${name}_missing`), 'no_such_admin_database'),
        /no_such_admin_database/,
      );
    } finally {
      await onAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}"`));
    }
  });
});
