import type { ActivityInterceptorsFactory, NativeConnection, Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { loadConfig, type AtelierConfig } from '../config/env';
import { createPool } from '../db/pool';
import { createLogger, toTemporalLogger } from '../logging/logger';
import { abortOnStopSignals } from '../process/stop-signals';
import { installTemporalRuntime } from '../observability/temporal-metrics';
import { WorkerObservability } from '../observability/worker-observability';
import { WorkerStore, type SlotMode, type WorkerKind } from '../store/worker-store';
import { temporalConnectionOptions } from '../temporal/connection-options';
import { connectWithRetry } from './connect-with-retry';
import { workerIdentity } from './worker-identity';

export interface WorkerContext {
  config: AtelierConfig;
  connection: NativeConnection;
  pool: Pool;
  /** `<name>:<pid>-<random>@<host>`, new at each start (worker-identity.ts): in Temporal, in the registry and on attempts. */
  identity: string;
  /** Observes every activity (ids on log lines, running tasks, agent metrics): pass to `interceptors.activity`. */
  activityInterceptors: ActivityInterceptorsFactory;
  logger: Logger;
}

/** What kind of worker a process runs, and how it reports itself (GET /metrics and the worker registry). */
export interface WorkerSpec {
  name: string;
  kind: WorkerKind;
  taskQueue: (config: AtelierConfig) => string;
  metricsPort: (config: AtelierConfig) => number | 'off';
  slots: (config: AtelierConfig) => { mode: SlotMode; total: number };
  /** Work the process does beside its worker (the webhook dispatcher): started with it, stopped before the pool closes. */
  background?: (ctx: WorkerContext) => { stop: () => Promise<void> } | undefined;
}

/**
 * The life of one worker process: validated config, a Temporal connection retried until the server
 * answers, the worker run until SIGINT, SIGTERM or SIGHUP (it then stops polling and lets running
 * activities finish within `ATELIER_SHUTDOWN_GRACE_SECONDS` before cancelling them), and every
 * resource closed. While it runs, it serves GET /metrics and heartbeats its row in the worker registry.
 */
export async function runWorkerProcess(
  spec: WorkerSpec,
  /** One worker, or several on different queues that live and stop together (the first is observed). */
  createWorker: (ctx: WorkerContext) => Promise<Worker | [Worker, ...Worker[]]>,
): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(spec.name, config.LOG_LEVEL);
  // The SDK's own signal handling is off: it lets go of its listeners after the first signal, so a
  // second one (Ctrl-C brings two under npm) would kill the process mid-drain, its agents with it.
  const temporal = await installTemporalRuntime({ logger: toTemporalLogger(logger), shutdownSignals: [] });
  const stop = new AbortController();
  abortOnStopSignals(stop, logger);

  const connection = await connectWithRetry(temporalConnectionOptions(config), logger, stop.signal);
  if (!connection) return;
  const pool = createPool(config.DATABASE_URL, (err) => logger.warn({ error: err.message }, 'database client error'));
  const identity = workerIdentity(spec.name);
  const observability = new WorkerObservability({
    kind: spec.kind,
    identity,
    taskQueue: spec.taskQueue(config),
    slots: spec.slots(config),
    metricsHost: config.HOST,
    metricsPort: spec.metricsPort(config),
    store: new WorkerStore(pool),
    temporal,
    logger,
  });
  let background: { stop: () => Promise<void> } | undefined;
  try {
    await observability.listen();
    const ctx: WorkerContext = {
      config,
      connection,
      pool,
      identity,
      activityInterceptors: observability.tracker.interceptors,
      logger,
    };
    const created = await createWorker(ctx);
    const [worker, ...more] = Array.isArray(created) ? created : [created];
    background = spec.background?.(ctx);
    await observability.attach(worker);
    for (const w of [worker, ...more]) {
      logger.info({ taskQueue: w.options.taskQueue, identity: w.options.identity }, 'worker polling');
    }
    await runTogether([worker, ...more], stop.signal);
    logger.info('worker stopped');
  } finally {
    // Its workers have stopped, its agents with them: what is left may not hold the process (a database
    // gone silent, not refusing, would hold the last writes and the pool's end for many minutes).
    setTimeout(() => {
      logger.error(`the worker did not finish stopping within ${CLEANUP_DEADLINE_MS / 1000} s; exiting`);
      process.exit(1);
    }, CLEANUP_DEADLINE_MS).unref();
    // Each step is tried whatever the one before did, and a failure among them is logged, not thrown:
    // it would hide the error that stopped the worker (a worker that could not be created, say).
    const step = async (what: string, run: () => Promise<unknown> | undefined): Promise<void> => {
      await Promise.resolve()
        .then(run)
        .catch((err: unknown) => logger.warn({ error: (err as Error).message }, `could not ${what} while stopping`));
    };
    await step('stop its background work', () => background?.stop());
    await step('record its stop', () => observability.stop());
    await step('close its Temporal connection', () => connection.close());
    await step('close its database pool', () => pool.end());
  }
}

/** How long a worker may take, once its workers have stopped, to record its stop and close what it holds. */
export const CLEANUP_DEADLINE_MS = 30_000;

/**
 * Runs workers until all have stopped: when one stops or fails, or `stop` aborts, they are all shut
 * down (each drains its running activities).
 */
async function runTogether(workers: Worker[], stop: AbortSignal): Promise<void> {
  const shutdownAll = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  const runs = workers.map((w) => w.run().finally(shutdownAll));
  // A worker takes shutdown() only once it runs: a stop asked for before then is carried out now.
  if (stop.aborted) shutdownAll();
  else stop.addEventListener('abort', shutdownAll, { once: true });
  const results = await Promise.allSettled(runs);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
