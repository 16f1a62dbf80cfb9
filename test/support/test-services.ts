import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { ensureDatabase, migrate } from '../../src/db/migrate';
import { startDevServer } from '../../src/temporal/dev-server';
import { freePort } from '../../src/net/free-port';

const ROOT = resolve(__dirname, '../../..');
export const TEMPORAL_BIN = resolve(ROOT, '.tools/bin/temporal');
const ADMIN_URL = process.env.ATELIER_TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestServices {
  temporalAddress: string;
  /** The dev server's Prometheus metrics. */
  temporalMetricsUrl: string;
  databaseUrl: string;
  temporalPid: number | undefined;
  stop: () => Promise<void>;
}

async function dropDatabase(name: string): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** History length at which the test server suggests continue-as-new (the production default is 4096). */
export const TEST_SUGGEST_CONTINUE_AS_NEW_EVENTS = 120;

/**
 * A Temporal dev server on a free port with a fresh SQLite file (headless), and a fresh, migrated
 * PostgreSQL database `name`; `stop` removes both.
 */
export async function startTestServices(name: string): Promise<TestServices> {
  const dataDir = mkdtempSync(join(tmpdir(), `${name}-`));
  const port = await freePort();
  const metricsPort = await freePort();
  const temporal = await startDevServer(
    {
      binary: TEMPORAL_BIN,
      dbFile: join(dataDir, 'temporal.sqlite'),
      ip: '127.0.0.1',
      port,
      uiPort: 0,
      namespace: 'default',
      ui: false,
      logLevel: 'error',
      metricsPort,
      // Long-lived workflows (the lock managers) are told to continue as new early, so tests see it.
      dynamicConfig: [`limit.historyCount.suggestContinueAsNew=${TEST_SUGGEST_CONTINUE_AS_NEW_EVENTS}`],
    },
    'ignore',
  );
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  await dropDatabase(name);
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  return {
    temporalAddress: `127.0.0.1:${port}`,
    temporalMetricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    databaseUrl,
    temporalPid: temporal.pid,
    stop: async () => {
      await dropDatabase(name).catch(() => undefined);
      if (temporal.exitCode === null) {
        const exited = new Promise((r) => temporal.once('exit', r));
        temporal.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
