import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool, QueryConfig } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { CONFIG, PG_POOL, TEMPORAL_CLIENT } from '../tokens';

/** How long each check may take: a probe must answer, and say "down", well within its own timeout. */
const CHECK_DEADLINE_MS = 3000;
/**
 * A polling worker re-polls at least once a minute (long polls last about 60 s), so a poller last seen
 * longer ago than this has stopped.
 */
const POLLER_FRESH_MS = 90_000;

/**
 * The readiness query. Its read timeout makes the pool discard a connection whose server went silent
 * (the query fails, so the pool destroys the client) instead of leaving it pinned until TCP gives up.
 */
const PING: QueryConfig & { query_timeout: number } = { text: 'SELECT 1', query_timeout: CHECK_DEADLINE_MS };

const { TaskQueueType } = temporal.api.enums.v1;

/** Workers Temporal saw polling a task queue lately; `message` says why the count is unknown or 0. */
export interface QueuePollers {
  taskQueue: string;
  pollers?: number;
  message?: string;
}

/** Rejects with `what` once `ms` have passed, unless `work` settled first. */
async function withinDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Readiness checks of what the API depends on (PostgreSQL, Temporal), and who polls its task queues. */
@Injectable()
export class DependencyHealth {
  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(TEMPORAL_CLIENT) private readonly client: Client,
  ) {}

  async postgres() {
    const check = this.health.check('postgres');
    try {
      // The deadline also covers the wait for a pool connection, which the query's own timeout does not.
      await withinDeadline(this.pool.query(PING), CHECK_DEADLINE_MS, 'PostgreSQL');
      return check.up();
    } catch (err) {
      return check.down({ message: (err as Error).message });
    }
  }

  async temporal() {
    const check = this.health.check('temporal');
    try {
      await this.client.connection.withDeadline(Date.now() + CHECK_DEADLINE_MS, () =>
        this.client.workflowService.getSystemInfo({}),
      );
      return check.up({ address: this.config.TEMPORAL_ADDRESS });
    } catch (err) {
      return check.down({ message: (err as Error).message });
    }
  }

  /** Never fails: whether workers poll says nothing about whether this API can serve its callers. */
  async pollers(queue: 'workflow' | 'agent'): Promise<QueuePollers> {
    const [taskQueue, type] =
      queue === 'workflow'
        ? [this.config.ATELIER_WORKFLOW_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW]
        : [this.config.ATELIER_AGENT_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY];
    try {
      const res = await this.client.connection.withDeadline(Date.now() + CHECK_DEADLINE_MS, () =>
        this.client.workflowService.describeTaskQueue({
          namespace: this.config.TEMPORAL_NAMESPACE,
          taskQueue: { name: taskQueue },
          taskQueueType: type,
        }),
      );
      const now = Date.now();
      const live = (res.pollers ?? []).filter((p) => {
        const seconds = Number(p.lastAccessTime?.seconds ?? 0);
        return now - seconds * 1000 < POLLER_FRESH_MS;
      }).length;
      return live > 0 ? { taskQueue, pollers: live } : { taskQueue, pollers: 0, message: 'no worker is polling' };
    } catch (err) {
      return { taskQueue, message: (err as Error).message };
    }
  }
}
