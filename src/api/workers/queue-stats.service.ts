import { Inject, Injectable } from '@nestjs/common';
import { type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { AtelierConfig } from '../../config/env';
import { CONFIG, TEMPORAL_CLIENT } from '../tokens';

const { TaskQueueType } = temporal.api.enums.v1;

export type QueueType = 'workflow' | 'activity';

export interface Poller {
  identity: string;
  lastAccessTime: Date | null;
  ratePerSecond: number;
}

/** One task queue (of one type) as Temporal sees it. */
export interface QueueStats {
  name: string;
  type: QueueType;
  /** Tasks waiting for a worker; tasks a worker already runs are not in it. */
  backlog: number;
  /** Age of the oldest waiting task, in seconds (0 when nothing waits). */
  backlogAgeSeconds: number;
  /** Tasks added to and dispatched from the queue per second, recently. */
  addRate: number;
  dispatchRate: number;
  pollers: Poller[];
}

const DEADLINE_MS = 3000;
/** Several scrapers and dashboards may ask at once; Temporal is asked at most once per queue per this. */
const CACHE_MS = 2000;

const seconds = (d: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  d ? Number(d.seconds ?? 0) + (d.nanos ?? 0) / 1e9 : 0;

/**
 * Backlog, rates and pollers of Atelier's task queues, from Temporal's DescribeTaskQueue with
 * `reportStats`. Shared by GET /metrics and GET /v1/workers; answers are cached for two seconds.
 */
@Injectable()
export class QueueStatsService {
  private readonly cache = new Map<string, { at: number; value: Promise<QueueStats> }>();

  constructor(
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(TEMPORAL_CLIENT) private readonly client: Client,
  ) {}

  /** The queues this deployment uses: workflow tasks on the workflow queue, agent attempts on the agent queue. */
  configuredQueues(): { name: string; type: QueueType }[] {
    return [
      { name: this.config.ATELIER_WORKFLOW_QUEUE, type: 'workflow' },
      { name: this.config.ATELIER_AGENT_QUEUE, type: 'activity' },
    ];
  }

  describe(name: string, type: QueueType): Promise<QueueStats> {
    const key = `${type}:${name}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
    const value = this.fetch(name, type);
    this.cache.set(key, { at: Date.now(), value });
    // A failure is not cached: the next caller asks again.
    value.catch(() => this.cache.delete(key));
    return value;
  }

  private async fetch(name: string, type: QueueType): Promise<QueueStats> {
    const res = await this.client.connection.withDeadline(Date.now() + DEADLINE_MS, () =>
      this.client.workflowService.describeTaskQueue({
        namespace: this.config.TEMPORAL_NAMESPACE,
        taskQueue: { name },
        taskQueueType:
          type === 'workflow' ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        reportStats: true,
      }),
    );
    const stats = res.stats;
    return {
      name,
      type,
      backlog: Number(stats?.approximateBacklogCount ?? 0),
      backlogAgeSeconds: seconds(stats?.approximateBacklogAge),
      addRate: stats?.tasksAddRate ?? 0,
      dispatchRate: stats?.tasksDispatchRate ?? 0,
      pollers: (res.pollers ?? []).map((p) => ({
        identity: p.identity ?? '',
        lastAccessTime: p.lastAccessTime ? new Date(seconds(p.lastAccessTime) * 1000) : null,
        ratePerSecond: p.ratePerSecond ?? 0,
      })),
    };
  }
}
