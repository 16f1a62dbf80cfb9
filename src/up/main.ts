import { resolve } from 'node:path';
import { loadAgentsFile } from '../config/agents-file';
import { describeDatabase, loadConfig } from '../config/env';
import { ensureDatabase, migrate } from '../db/migrate';
import { createLogger } from '../logging/logger';
import { runMain } from '../process/run-main';
import { startDevServer, waitForPort } from '../temporal/dev-server';
import { Supervisor } from './supervisor';

const ROOT = resolve(__dirname, '../../..');
export const TEMPORAL_BIN = resolve(ROOT, '.tools/bin/temporal');
const DEV_DB_FILE = resolve(ROOT, '.data/temporal.sqlite');
const DEV_UI_PORT = 8233;

async function waitForReady(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/**
 * `npm run up`: the whole service on one machine. Starts the Temporal dev server (unless
 * TEMPORAL_ADDRESS is set), creates and migrates the database, then runs and supervises the API, one
 * workflow worker and one agent worker until SIGINT/SIGTERM, when it stops them all, the dev server last.
 */
runMain('up', async () => {
  const ownTemporal = process.env.TEMPORAL_ADDRESS === undefined;
  const config = loadConfig();
  loadAgentsFile(config.ATELIER_AGENTS_FILE); // a bad agents file stops start-up here, with its reason
  const logger = createLogger('up', config.LOG_LEVEL);

  const supervisor = new Supervisor(logger);
  let devServer: Awaited<ReturnType<typeof startDevServer>> | undefined;
  let shuttingDown = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'stopping');
    await supervisor.stop((config.ATELIER_SHUTDOWN_GRACE_SECONDS + 10) * 1000);
    if (devServer && devServer.exitCode === null) {
      const exited = new Promise((r) => devServer?.once('exit', r));
      devServer.kill('SIGTERM');
      await exited;
    }
    logger.info('stopped');
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  let uiUrl = config.TEMPORAL_UI_URL;
  if (ownTemporal) {
    const [host, port] = config.TEMPORAL_ADDRESS.split(':') as [string, string];
    logger.info({ db: DEV_DB_FILE }, 'starting Temporal dev server');
    devServer = await startDevServer({
      binary: TEMPORAL_BIN,
      dbFile: DEV_DB_FILE,
      ip: host,
      port: Number(port),
      uiPort: DEV_UI_PORT,
      namespace: config.TEMPORAL_NAMESPACE,
      ui: true,
    });
    uiUrl = `http://${host}:${DEV_UI_PORT}`;
    await waitForPort(host, DEV_UI_PORT, 30_000);
  }
  if (shuttingDown) return;

  await ensureDatabase(config.DATABASE_URL);
  const applied = await migrate(config.DATABASE_URL);
  if (applied.length > 0) logger.info({ applied }, 'database migrated');

  const env = { ...process.env, TEMPORAL_UI_URL: uiUrl };
  const node = process.execPath;
  supervisor.start({ name: 'api', command: node, args: [resolve(ROOT, 'dist/src/api/main.js')], env });
  supervisor.start({
    name: 'workflow-worker',
    command: node,
    args: [resolve(ROOT, 'dist/src/workers/workflow-worker.js')],
    env,
  });
  supervisor.start({
    name: 'agent-worker',
    command: node,
    args: [resolve(ROOT, 'dist/src/workers/agent-worker.js')],
    env,
  });

  const api = `http://${config.HOST}:${config.PORT}`;
  const ready = await waitForReady(`${api}/health/ready`, 120_000);
  if (shuttingDown) return;
  process.stdout.write(
    [
      '',
      ready ? 'Atelier is ready.' : 'Atelier started, but /health/ready does not say ready yet: see the logs above.',
      `  API:          ${api}   (OpenAPI: ${api}/docs)`,
      `  Temporal UI:  ${uiUrl}`,
      `  Temporal:     ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE})${ownTemporal ? `, dev server state in ${DEV_DB_FILE}` : ''}`,
      `  Database:     ${describeDatabase(config.DATABASE_URL)}`,
      `  Agents file:  ${resolve(config.ATELIER_AGENTS_FILE)}`,
      'Press Ctrl-C to stop everything.',
      '',
    ].join('\n'),
  );
});
