import { Client } from 'pg';
import { ensureDatabase, migrate } from '../../src/db/migrate';
import { testEnv } from './test-env';

export interface ScratchDatabase {
  url: string;
  drop: () => Promise<void>;
}

/**
 * A fresh, migrated database beside the test run's, for tests that change what is global to a
 * database (the daily budget): they must not hold back the tests running next to them.
 */
export async function createScratchDatabase(suffix: string): Promise<ScratchDatabase> {
  const url = new URL(testEnv.databaseUrl);
  const name = `${url.pathname.slice(1)}_${suffix}`.slice(0, 63);
  url.pathname = `/${name}`;
  const admin = new URL(testEnv.databaseUrl);
  admin.pathname = '/postgres';
  const dropIt = async (): Promise<void> => {
    const client = new Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await client.end();
    }
  };
  await dropIt();
  await ensureDatabase(url.toString());
  await migrate(url.toString());
  return { url: url.toString(), drop: dropIt };
}
