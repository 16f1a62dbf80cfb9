import { Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { STATEMENT_TIMEOUT_MS } from '../../db/bounded-query';
import { createPool } from '../../db/pool';
import { AttemptStore } from '../../store/attempt-store';
import { PlanStore } from '../../store/plan-store';
import { TaskStore } from '../../store/task-store';
import { ApiMetrics } from '../observability/api-metrics.service';
import { ObservabilityModule } from '../observability/observability.module';
import { CONFIG, TEMPORAL_CLIENT } from '../tokens';
import { ClosedRunsSweeper } from './closed-runs.sweeper';

const SWEEP_POOL = Symbol('ClosedRunsSweepPool');

/** The closed-runs sweeper's pool: a few connections, every statement bounded by STATEMENT_TIMEOUT_MS. */
export function createSweepPool(databaseUrl: string): Pool {
  const logger = new Logger(ClosedRunsModule.name);
  return createPool(
    databaseUrl,
    (err) => logger.warn(`database client error: ${err.message}`),
    4,
    STATEMENT_TIMEOUT_MS,
  );
}

/**
 * Records the end of task and plan runs that closed in Temporal without recording it. The sweeper's
 * reads and writes go through a small pool of its own whose every statement is bounded
 * (STATEMENT_TIMEOUT_MS): a PostgreSQL gone silent fails a sweep, which keeps its runs aside for the
 * next, rather than holding it, and the API's stop, until TCP gives up. The pool is ended after the
 * sweeper has settled (Nest runs a module's own shutdown hook after its providers').
 */
@Module({
  imports: [ObservabilityModule],
  providers: [
    {
      provide: SWEEP_POOL,
      useFactory: (config: AtelierConfig) => createSweepPool(config.DATABASE_URL),
      inject: [CONFIG],
    },
    {
      provide: ClosedRunsSweeper,
      useFactory: (config: AtelierConfig, temporal: Client, metrics: ApiMetrics, pool: Pool) =>
        new ClosedRunsSweeper(
          config,
          temporal,
          metrics,
          new TaskStore(pool),
          new PlanStore(pool),
          // A run closed in Temporal is recorded failed, and notified like any other failure.
          new AttemptStore(pool, { notify: config.ATELIER_WEBHOOK_URLS.length > 0 }),
        ),
      inject: [CONFIG, TEMPORAL_CLIENT, ApiMetrics, SWEEP_POOL],
    },
  ],
})
export class ClosedRunsModule implements OnApplicationShutdown {
  constructor(@Inject(SWEEP_POOL) private readonly pool: Pool) {}

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
