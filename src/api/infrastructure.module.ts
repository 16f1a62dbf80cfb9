import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { Pool } from 'pg';
import type { AgentsFile } from '../config/agents-file';
import type { AtelierConfig } from '../config/env';
import { createPool } from '../db/pool';
import { temporalConnectionOptions } from '../temporal/connection-options';
import { defaultDeadline } from '../temporal/default-deadline';
import { AttemptStore } from '../store/attempt-store';
import { PlanStore } from '../store/plan-store';
import { RunStore } from '../store/run-store';
import { TaskStore } from '../store/task-store';
import { AGENTS, CONFIG, PG_POOL, TEMPORAL_CLIENT } from './tokens';

/**
 * How long a Temporal call the API makes for a request may take, unless it sets its own deadline: a
 * Temporal that stops answering (hung, or a network that drops packets) must get the client a 503 it
 * may retry, not an answer that never comes while the client gives up and submits again.
 */
export const TEMPORAL_CALL_MS = 15_000;

/**
 * Config, agents file, PostgreSQL pool and Temporal client for the whole API. The Temporal connection
 * is lazy, so the API starts (and reports not ready) while Temporal is still coming up. Both are
 * closed on shutdown.
 */
@Global()
@Module({})
export class InfrastructureModule implements OnApplicationShutdown {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(TEMPORAL_CLIENT) private readonly client: Client,
  ) {}

  static forRoot(config: AtelierConfig, agents: AgentsFile, onDbError: (err: Error) => void): DynamicModule {
    const providers = [
      { provide: CONFIG, useValue: config },
      { provide: AGENTS, useValue: agents },
      { provide: PG_POOL, useFactory: () => createPool(config.DATABASE_URL, onDbError, 20) },
      {
        provide: TEMPORAL_CLIENT,
        useFactory: () =>
          new Client({
            connection: Connection.lazy({
              ...temporalConnectionOptions(config),
              // The deadline first: it bounds the SDK's retries too.
              interceptors: [defaultDeadline(TEMPORAL_CALL_MS), makeGrpcRetryInterceptor(defaultGrpcRetryOptions())],
            }),
            namespace: config.TEMPORAL_NAMESPACE,
          }),
      },
      { provide: TaskStore, useFactory: (pool: Pool) => new TaskStore(pool), inject: [PG_POOL] },
      { provide: RunStore, useFactory: (pool: Pool) => new RunStore(pool), inject: [PG_POOL] },
      {
        provide: AttemptStore,
        // The API records the end of a run that closed in Temporal without recording it: a failure, notified.
        useFactory: (pool: Pool) => new AttemptStore(pool, { notify: config.ATELIER_WEBHOOK_URLS.length > 0 }),
        inject: [PG_POOL],
      },
      { provide: PlanStore, useFactory: (pool: Pool) => new PlanStore(pool), inject: [PG_POOL] },
    ];
    return { module: InfrastructureModule, providers, exports: providers.map((p) => p.provide) };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.connection.close();
    await this.pool.end();
  }
}
