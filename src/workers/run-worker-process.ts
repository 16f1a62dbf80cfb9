import { Runtime, type NativeConnection, type Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { loadConfig, type AtelierConfig } from '../config/env';
import { createPool } from '../db/pool';
import { createLogger, toTemporalLogger } from '../logging/logger';
import { connectWithRetry } from './connect-with-retry';

export interface WorkerContext {
  config: AtelierConfig;
  connection: NativeConnection;
  pool: Pool;
}

/**
 * The life of one worker process: validated config, a Temporal connection retried until the server
 * answers, the worker run until SIGINT/SIGTERM (the SDK then stops polling and lets running activities
 * finish within `ATELIER_SHUTDOWN_GRACE_SECONDS` before cancelling them), and every resource closed.
 */
export async function runWorkerProcess(
  name: string,
  createWorker: (ctx: WorkerContext) => Promise<Worker>,
): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(name, config.LOG_LEVEL);
  Runtime.install({ logger: toTemporalLogger(logger) });
  const stopConnecting = new AbortController();
  const onSignal = (): void => stopConnecting.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const connection = await connectWithRetry(config.TEMPORAL_ADDRESS, logger, stopConnecting.signal);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (!connection) return;
  const pool = createPool(config.DATABASE_URL, (err) => logger.warn({ error: err.message }, 'database client error'));
  try {
    const worker = await createWorker({ config, connection, pool });
    logger.info({ taskQueue: worker.options.taskQueue, identity: worker.options.identity }, 'worker polling');
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await connection.close();
    await pool.end();
  }
}
