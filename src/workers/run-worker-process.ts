import { hostname } from 'node:os';
import { Runtime, type ActivityInterceptorsFactory, type NativeConnection, type Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { loadConfig, type AtelierConfig } from '../config/env';
import { createPool } from '../db/pool';
import { createLogger, toTemporalLogger } from '../logging/logger';
import { temporalMetrics } from '../observability/temporal-metrics';
import { WorkerObservability } from '../observability/worker-observability';
import { WorkerStore, type SlotMode, type WorkerKind } from '../store/worker-store';
import { temporalConnectionOptions } from '../temporal/connection-options';
import { connectWithRetry } from './connect-with-retry';

export interface WorkerContext {
  config: AtelierConfig;
  connection: NativeConnection;
  pool: Pool;
  /** `<name>:<pid>@<host>`: the worker's identity in Temporal, in the registry and on attempts. */
  identity: string;
  /** Observes every activity (ids on log lines, running tasks, agent metrics): pass to `interceptors.activity`. */
  activityInterceptors: ActivityInterceptorsFactory;
}

/** What kind of worker a process runs, and how it reports itself (GET /metrics and the worker registry). */
export interface WorkerSpec {
  name: string;
  kind: WorkerKind;
  taskQueue: (config: AtelierConfig) => string;
  metricsPort: (config: AtelierConfig) => number | 'off';
  slots: (config: AtelierConfig) => { mode: SlotMode; total: number };
}

/**
 * The life of one worker process: validated config, a Temporal connection retried until the server
 * answers, the worker run until SIGINT/SIGTERM (the SDK then stops polling and lets running activities
 * finish within `ATELIER_SHUTDOWN_GRACE_SECONDS` before cancelling them), and every resource closed.
 * While it runs, it serves GET /metrics and heartbeats its row in the worker registry.
 */
export async function runWorkerProcess(
  spec: WorkerSpec,
  createWorker: (ctx: WorkerContext) => Promise<Worker>,
): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(spec.name, config.LOG_LEVEL);
  const temporal = await temporalMetrics();
  Runtime.install({ logger: toTemporalLogger(logger), telemetryOptions: temporal.telemetryOptions });
  const stopConnecting = new AbortController();
  const onSignal = (): void => stopConnecting.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const connection = await connectWithRetry(temporalConnectionOptions(config), logger, stopConnecting.signal);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (!connection) return;
  const pool = createPool(config.DATABASE_URL, (err) => logger.warn({ error: err.message }, 'database client error'));
  const identity = `${spec.name}:${process.pid}@${hostname()}`;
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
  try {
    await observability.listen();
    const worker = await createWorker({
      config,
      connection,
      pool,
      identity,
      activityInterceptors: observability.tracker.interceptors,
    });
    await observability.attach(worker);
    logger.info({ taskQueue: worker.options.taskQueue, identity: worker.options.identity }, 'worker polling');
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await observability.stop();
    await connection.close();
    await pool.end();
  }
}
