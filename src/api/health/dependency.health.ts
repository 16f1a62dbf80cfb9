import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { CONFIG, PG_POOL, TEMPORAL_CLIENT } from '../tokens';

const CHECK_DEADLINE_MS = 3000;
/**
 * A polling worker re-polls at least once a minute (long polls last about 60 s), so a poller last seen
 * longer ago than this has stopped.
 */
const POLLER_FRESH_MS = 90_000;

const { TaskQueueType } = temporal.api.enums.v1;

/** Readiness checks of what the API depends on: PostgreSQL, Temporal, and workers polling both queues. */
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
      await this.pool.query('SELECT 1');
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

  async pollers(key: 'workflowWorkers' | 'agentWorkers') {
    const check = this.health.check(key);
    const [taskQueue, type] =
      key === 'workflowWorkers'
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
      });
      return live.length > 0
        ? check.up({ taskQueue, pollers: live.length })
        : check.down({ taskQueue, pollers: 0, message: 'no worker is polling this task queue' });
    } catch (err) {
      return check.down({ taskQueue, message: (err as Error).message });
    }
  }
}
