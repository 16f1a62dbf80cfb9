import { once } from 'node:events';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadAgentsFile } from '../config/agents-file';
import { assertApiAccess } from '../config/api-access';
import { describeDatabase, loadConfig } from '../config/env';
import { ensureDatabase, migrate } from '../db/migrate';
import { createLogger } from '../logging/logger';
import { abortOnStopSignals } from '../process/stop-signals';
import { temporalConnectionOptions } from '../temporal/connection-options';
import { DevServerStartCancelled } from '../temporal/dev-server';
import { spawnerBinary } from '../workers/agent-spawn';
import { OwnTemporal } from './own-temporal';
import { refuseTakenServicePorts } from './service-ports';
import { servingWithWorkers } from './serving-with-workers';
import { serviceStopGraceMs } from './stop-grace';
import { Supervisor } from './supervisor';

const ROOT = resolve(__dirname, '../../..');

/** The Temporal dev server `up` runs itself, listening on TEMPORAL_ADDRESS. */
export interface DevServerSetup {
  binary: string;
  /** Its SQLite file: state survives restarts. */
  dbFile: string;
  uiPort: number;
}

/** One look at readiness: an API that takes the connection but never answers must not hold up the deadline. */
const READY_LOOK_MS = 5000;

async function waitForReady(api: string, timeoutMs: number, stop: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stop.aborted) {
    try {
      const look = AbortSignal.any([
        stop,
        AbortSignal.timeout(Math.max(1, Math.min(READY_LOOK_MS, deadline - Date.now()))),
      ]);
      if (await servingWithWorkers(api, look)) return true;
    } catch {
      // not listening yet, or stopping
    }
    await sleep(500, undefined, { signal: stop }).catch(() => undefined);
  }
  return false;
}

/**
 * `npm run up`: the whole service on one machine. Starts the Temporal dev server (`devServer`; none when
 * TEMPORAL_ADDRESS names a server of the user's), creates and migrates the database, then runs and
 * supervises the API, one workflow worker and one agent worker until SIGINT, SIGTERM or SIGHUP, when it stops
 * them all, the dev server last, and resolves; during start-up it ends the dev server's start and a migration's
 * wait for the lock, stops what was started and starts nothing more. A start-up step that fails stops what
 * was started and rejects; so does a dev server that dies and cannot be started again, or a service that
 * keeps exiting soon after its start.
 */
export async function up(devServer: DevServerSetup | undefined): Promise<void> {
  const config = loadConfig();
  // Stopped here, with their reason, rather than by an API or worker that keeps failing to start: the
  // same checks as theirs, and the ports they are to listen on.
  assertApiAccess(config);
  const agents = loadAgentsFile(config.ATELIER_AGENTS_FILE);
  spawnerBinary(config.ATELIER_AGENT_SPAWNER);
  temporalConnectionOptions(config);
  const [host, port] = config.TEMPORAL_ADDRESS.split(':') as [string, string];
  await refuseTakenServicePorts(
    config,
    devServer
      ? [
          { port: Number(port), name: "the Temporal dev server's port (TEMPORAL_ADDRESS)" },
          { port: devServer.uiPort, name: "the Temporal dev server's Web UI port" },
        ]
      : [],
  );
  const logger = createLogger('up', config.LOG_LEVEL);

  // Aborted once, by the first stop signal (its name is the reason) or by a failure (an Error). A
  // repeat must not kill `up`: every service would get its parent-death SIGTERM at once.
  const stop = new AbortController();
  abortOnStopSignals(stop, logger);

  const temporal =
    devServer &&
    new OwnTemporal(
      {
        binary: devServer.binary,
        dbFile: devServer.dbFile,
        ip: host,
        port: Number(port),
        uiPort: devServer.uiPort,
        namespace: config.TEMPORAL_NAMESPACE,
        ui: true,
      },
      logger,
      (err) => {
        if (stop.signal.aborted) return;
        logger.error({ err: err.message }, 'cannot start the Temporal dev server again; stopping');
        stop.abort(err);
      },
    );
  const supervisor = new Supervisor(logger, (err) => {
    if (!stop.signal.aborted) stop.abort(err);
  });

  /** Each step is checked for a stop request once it is done: a stopped start-up starts nothing more. */
  const startAll = async (): Promise<void> => {
    let uiUrl = config.TEMPORAL_UI_URL;
    if (temporal && devServer) {
      logger.info({ db: devServer.dbFile }, 'starting Temporal dev server');
      // A stop ends the start at once: a server that hangs before its ports answer would hold it up to 120 s.
      await temporal.start(stop.signal).catch((err: unknown) => {
        if (!(err instanceof DevServerStartCancelled)) throw err;
      });
      uiUrl = `http://${host}:${devServer.uiPort}`;
      if (stop.signal.aborted) return;
    }

    await ensureDatabase(config.DATABASE_URL);
    if (stop.signal.aborted) return;
    // A stop ends a migration that waits for another process's (it holds the migrations' lock).
    const applied = await migrate(config.DATABASE_URL, undefined, stop.signal).catch((err: unknown) => {
      if (stop.signal.aborted) return [];
      throw err;
    });
    if (stop.signal.aborted) return;
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

    const api = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${config.PORT}`;
    const ready = await waitForReady(api, 120_000, stop.signal);
    if (stop.signal.aborted) return;
    process.stdout.write(
      [
        '',
        ready
          ? 'Atelier is ready.'
          : 'Atelier started, but /health/ready does not say ready with workers polling yet: see the logs above.',
        `  API:          ${api}   (OpenAPI: ${api}/docs)`,
        `  Temporal UI:  ${uiUrl}`,
        `  Temporal:     ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE})${devServer ? `, dev server state in ${devServer.dbFile}` : ''}`,
        `  Database:     ${describeDatabase(config.DATABASE_URL)}`,
        `  Agents file:  ${resolve(config.ATELIER_AGENTS_FILE)}`,
        'Press Ctrl-C to stop everything.',
        '',
      ].join('\n'),
    );
  };

  let failure: unknown;
  try {
    await startAll();
    if (!stop.signal.aborted) await once(stop.signal, 'abort');
  } catch (err) {
    failure = err;
    logger.error(
      { err: err instanceof Error ? err.message : String(err) },
      'start-up failed; stopping what was started',
    );
    if (!stop.signal.aborted) stop.abort(err);
  }
  await supervisor.stop(serviceStopGraceMs(config.ATELIER_SHUTDOWN_GRACE_SECONDS, agents));
  await temporal?.stop();
  logger.info('stopped');
  const reason: unknown = stop.signal.reason;
  if (failure === undefined && reason instanceof Error) failure = reason;
  if (failure !== undefined) throw failure;
}
