import { Inject, Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool, QueryConfig } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { WorkerStore, WORKER_LOST_AFTER_SECONDS } from '../../store/worker-store';
import { CONFIG, PG_POOL, TEMPORAL_CLIENT } from '../tokens';
import { DeadlinePassed, withinDeadline } from '../../async/within-deadline';

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

/**
 * Who serves a task queue. `pollers`: workers Temporal saw polling it lately. `workers`: workers the
 * registry shows running for it (heartbeat in the last 30 s), `busy` of them with every slot taken. An
 * agent worker with every slot taken does not poll, so after 90 s Temporal no longer lists it: only
 * the registry still counts it. `message` says why a count is missing, or why nothing serves.
 */
export interface QueueWorkers {
  taskQueue: string;
  pollers?: number;
  workers?: number;
  busy?: number;
  message?: string;
}

/** Readiness checks of what the API depends on (PostgreSQL, Temporal), and who serves its task queues. */
@Injectable()
export class DependencyHealth {
  private readonly registry: WorkerStore;

  private readonly logger = new Logger(DependencyHealth.name);

  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(TEMPORAL_CLIENT) private readonly client: Client,
  ) {
    this.registry = new WorkerStore(pool);
  }

  async postgres() {
    const check = this.health.check('postgres');
    try {
      // The deadline also covers the wait for a pool connection, which the query's own timeout does not.
      await withinDeadline(this.pool.query(PING), CHECK_DEADLINE_MS, 'PostgreSQL');
      return check.up();
    } catch (err) {
      return check.down({ message: this.reason('PostgreSQL', err) });
    }
  }

  async temporal() {
    const check = this.health.check('temporal');
    try {
      await this.client.connection.withDeadline(Date.now() + CHECK_DEADLINE_MS, () =>
        this.client.workflowService.getSystemInfo({}),
      );
      return check.up();
    } catch (err) {
      return check.down({ message: this.reason('Temporal', err) });
    }
  }

  /** Never fails: whether workers serve says nothing about whether this API can serve its callers. */
  async workers(queue: 'workflow' | 'agent'): Promise<QueueWorkers> {
    const [taskQueue, type] =
      queue === 'workflow'
        ? [this.config.ATELIER_WORKFLOW_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW]
        : [this.config.ATELIER_AGENT_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY];
    const [pollers, registered] = await Promise.allSettled([
      this.pollers(taskQueue, type),
      withinDeadline(this.registry.serving(WORKER_LOST_AFTER_SECONDS), CHECK_DEADLINE_MS, 'PostgreSQL'),
    ]);
    const counts: QueueWorkers = { taskQueue };
    const problems: string[] = [];
    if (pollers.status === 'fulfilled') counts.pollers = pollers.value;
    else problems.push(this.reason('Temporal', pollers.reason));
    if (registered.status === 'fulfilled') {
      const row = registered.value.find((r) => r.kind === queue && r.taskQueue === taskQueue);
      counts.workers = row?.workers ?? 0;
      counts.busy = row?.busy ?? 0;
    } else {
      problems.push(`worker registry: ${this.reason('PostgreSQL', registered.reason)}`);
    }
    if (problems.length > 0) return { ...counts, message: problems.join('; ') };
    if (counts.workers === 0 && counts.pollers === 0) return { ...counts, message: 'no worker serves this queue' };
    if (counts.pollers === 0 && counts.busy === counts.workers) {
      return { ...counts, message: 'every worker is busy: with all its slots taken, a worker does not poll' };
    }
    return counts;
  }

  /** Workers Temporal saw polling `taskQueue` lately. */
  private async pollers(taskQueue: string, type: temporal.api.enums.v1.TaskQueueType): Promise<number> {
    const res = await this.client.connection.withDeadline(Date.now() + CHECK_DEADLINE_MS, () =>
      this.client.workflowService.describeTaskQueue({
        namespace: this.config.TEMPORAL_NAMESPACE,
        taskQueue: { name: taskQueue },
        taskQueueType: type,
      }),
    );
    const now = Date.now();
    return (res.pollers ?? []).filter((p) => now - Number(p.lastAccessTime?.seconds ?? 0) * 1000 < POLLER_FRESH_MS)
      .length;
  }

  /**
   * What the open readiness endpoint says of a failed check: a missed deadline as such, anything else
   * only as the dependency being unavailable. The error itself, which may name hosts, addresses and
   * database users, goes to the API's log.
   */
  private reason(what: string, err: unknown): string {
    if (err instanceof DeadlinePassed) return err.message;
    this.logger.warn(`readiness: ${what}: ${(err as Error).message}`);
    return `${what} unavailable (the API's log says why)`;
  }
}
