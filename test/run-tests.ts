import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { ensureDatabase, migrate } from '../src/db/migrate';
import { startDevServer } from '../src/temporal/dev-server';
import { freePort } from './support/free-port';

const ROOT = resolve(__dirname, '../..');
const TEMPORAL_BIN = resolve(ROOT, '.tools/bin/temporal');
const ADMIN_URL = process.env.ATELIER_TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

const findTests = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.js') ? [path] : [];
  });

async function freshDatabase(name: string): Promise<string> {
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  await ensureDatabase(url.toString());
  await migrate(url.toString());
  return url.toString();
}

/**
 * `npm test`: one Temporal dev server (fresh SQLite file) and one fresh PostgreSQL database for the
 * run, then Node's test runner over every compiled *.test.js (or those named as arguments).
 */
async function main(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'atelier-test-'));
  const port = await freePort();
  const temporal = await startDevServer(
    { binary: TEMPORAL_BIN, dbFile: join(dataDir, 'temporal.sqlite'), ip: '127.0.0.1', port, uiPort: 0, namespace: 'default', ui: false, logLevel: 'error' },
    'ignore',
  );
  try {
    const databaseUrl = await freshDatabase(`atelier_test_${process.pid}`);
    const selected = process.argv.slice(2);
    const files = findTests(join(ROOT, 'dist/test')).filter(
      (f) => selected.length === 0 || selected.some((s) => f.includes(s)),
    );
    const env = { ...process.env, TEMPORAL_ADDRESS: `127.0.0.1:${port}`, DATABASE_URL: databaseUrl, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
    const runner = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    });
    const code = await new Promise<number>((r) => runner.on('exit', (c) => r(c ?? 1)));
    const admin = new Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "atelier_test_${process.pid}" WITH (FORCE)`);
    await admin.end();
    return code;
  } finally {
    const exited = new Promise((r) => temporal.once('exit', r));
    temporal.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`test run failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
