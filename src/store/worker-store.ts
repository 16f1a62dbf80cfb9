import type { Pool } from 'pg';
import { boundedQuery } from '../db/bounded-query';

export type WorkerKind = 'workflow' | 'agent';
export type SlotMode = 'fixed' | 'resource-based';

/** A task an agent worker is running, as it reports it. */
export interface RunningTask {
  taskId: string;
  workflowId: string;
  attempt: number;
  agent: string;
  startedAt: string;
}

/** What a worker says about itself when it registers. */
export interface WorkerRegistration {
  identity: string;
  kind: WorkerKind;
  taskQueue: string;
  host: string;
  pid: number;
  metricsUrl: string | null;
  slotMode: SlotMode;
  slotsTotal: number;
}

/** What a worker reports on every heartbeat. */
export interface WorkerSnapshot {
  state: string;
  slotsUsed: number;
  running: RunningTask[];
  completed: number;
  failed: number;
  cancelled: number;
}

export interface WorkerRow {
  identity: string;
  kind: WorkerKind;
  task_queue: string;
  host: string;
  pid: number;
  metrics_url: string | null;
  slot_mode: SlotMode;
  slots_total: number;
  slots_used: number;
  running: RunningTask[];
  completed: string;
  failed: string;
  cancelled: string;
  state: string;
  started_at: Date;
  heartbeat_at: Date;
  stopped_at: Date | null;
  /** Seconds since the last heartbeat, by the database's clock (so API and worker clocks need not agree). */
  heartbeat_age_seconds: number;
}

/** How many live workers serve one task queue, as the registry tells. */
export interface QueueWorkers {
  kind: WorkerKind;
  taskQueue: string;
  workers: number;
  /** Of those, the ones with every slot taken. */
  busy: number;
}

/**
 * How long each query here may wait for its answer. `serving` is read by readiness probes and scrapes;
 * a heartbeat that hung on a silent server would hold every later one (they never overlap), and the
 * worker would look lost while it runs.
 */
const QUERY_TIMEOUT_MS = 3000;

/**
 * A worker that has not heartbeat for this long is lost (GET /v1/workers, readiness, lost worktrees); it
 * heartbeats every WORKER_HEARTBEAT_MS (src/observability/worker-observability.ts), 5 s.
 */
export const WORKER_LOST_AFTER_SECONDS = 30;

/** Rows of workers gone this long are deleted when a worker registers. */
const RETENTION = '1 day';

/**
 * The worker registry: each worker process writes its own row (keyed by its identity, which includes its
 * pid and host, so a restarted worker gets a new row), and the API reads them.
 */
export class WorkerStore {
  constructor(private readonly pool: Pool) {}

  /** Deletes the rows of workers gone for a day. */
  async prune(): Promise<void> {
    await this.pool.query(
      boundedQuery(QUERY_TIMEOUT_MS, `DELETE FROM workers WHERE heartbeat_at < clock_timestamp() - $1::interval`, [
        RETENTION,
      ]),
    );
  }

  /**
   * Writes the worker's row: inserted on its first report, updated on every heartbeat after (so a row
   * lost meanwhile comes back). `stopped` marks the last report of a worker that shut down.
   */
  async report(w: WorkerRegistration, s: WorkerSnapshot, stopped = false): Promise<void> {
    await this.pool.query(
      boundedQuery(
        QUERY_TIMEOUT_MS,
        `INSERT INTO workers (identity, kind, task_queue, host, pid, metrics_url, slot_mode, slots_total, slots_used,
         running, completed, failed, cancelled, state, stopped_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
         CASE WHEN $15 THEN clock_timestamp() END)
       ON CONFLICT (identity) DO UPDATE SET metrics_url = EXCLUDED.metrics_url, slots_used = EXCLUDED.slots_used,
         running = EXCLUDED.running, completed = EXCLUDED.completed, failed = EXCLUDED.failed,
         cancelled = EXCLUDED.cancelled, state = EXCLUDED.state, heartbeat_at = clock_timestamp(),
         stopped_at = EXCLUDED.stopped_at`,
        [
          w.identity,
          w.kind,
          w.taskQueue,
          w.host,
          w.pid,
          w.metricsUrl,
          w.slotMode,
          w.slotsTotal,
          s.slotsUsed,
          JSON.stringify(s.running),
          s.completed,
          s.failed,
          s.cancelled,
          s.state,
          stopped,
        ],
      ),
    );
  }

  /**
   * Per kind and task queue, the workers that run (state RUNNING: neither starting nor draining) and
   * heartbeat within `withinSeconds`, and how many of them have every slot taken. Queues none serves
   * are left out.
   */
  async serving(withinSeconds: number): Promise<QueueWorkers[]> {
    const res = await this.pool.query<QueueWorkers>(
      boundedQuery(
        QUERY_TIMEOUT_MS,
        `SELECT kind, task_queue AS "taskQueue", count(*)::int AS workers,
         (count(*) FILTER (WHERE slots_used >= slots_total))::int AS busy
       FROM workers
       WHERE stopped_at IS NULL AND state = 'RUNNING'
         AND heartbeat_at > clock_timestamp() - make_interval(secs => $1)
       GROUP BY kind, task_queue`,
        [withinSeconds],
      ),
    );
    return res.rows;
  }

  /**
   * The last heartbeat of an agent worker of `host` that has not stopped, as milliseconds since the
   * epoch and as its age in seconds, both on the database's clock; undefined when there is none.
   */
  async lastAgentHeartbeat(host: string): Promise<{ atMs: number; ageSeconds: number } | undefined> {
    const res = await this.pool.query<{ at_ms: number | null; age_seconds: number | null }>(
      boundedQuery(
        QUERY_TIMEOUT_MS,
        `SELECT (extract(epoch FROM max(heartbeat_at)) * 1000)::float8 AS at_ms,
           extract(epoch FROM clock_timestamp() - max(heartbeat_at))::float8 AS age_seconds
         FROM workers WHERE kind = 'agent' AND host = $1 AND stopped_at IS NULL`,
        [host],
      ),
    );
    const row = res.rows[0];
    return row?.at_ms == null || row.age_seconds == null ? undefined : { atMs: row.at_ms, ageSeconds: row.age_seconds };
  }

  /** Workers that heartbeat within `withinSeconds`, or every kept row with `all`; newest first. */
  async list(opts: { all: boolean; withinSeconds: number }): Promise<WorkerRow[]> {
    const res = await this.pool.query<WorkerRow>(
      `SELECT *, extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS heartbeat_age_seconds
       FROM workers
       WHERE $1 OR (stopped_at IS NULL AND heartbeat_at > clock_timestamp() - make_interval(secs => $2))
       ORDER BY kind, started_at DESC, identity`,
      [opts.all, opts.withinSeconds],
    );
    return res.rows;
  }
}
