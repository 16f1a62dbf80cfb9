import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { boundedQuery, STATEMENT_TIMEOUT_MS } from '../../db/bounded-query';
import { WORKER_LOST_AFTER_SECONDS } from '../../store/worker-store';
import { inReadOnlySnapshot } from '../../db/transaction';
import { QUEUED_SINCE_SQL } from '../../store/task-stats-store';
import { temporalUnavailableText } from '../http/temporal-unavailable';
import { taskLinks } from '../tasks/task-view';
import { LISTED_WITHIN_SECONDS } from '../workers/workers.service';
import { CONFIG, PG_POOL, TEMPORAL_CLIENT } from '../tokens';
import type { DashboardSnapshot, QueueView, SeriesView, WorkerView } from './snapshot';

const { TaskQueueType } = temporal.api.enums.v1;

/** A poller Temporal last saw longer ago than this has stopped (long polls last about 60 s). */
const POLLER_FRESH_MS = 90_000;
/** How often the feed looks for task changes in PostgreSQL while anyone listens. */
const CHANGE_CHECK_MS = 1000;
/** A snapshot is sent at least this often, for elapsed times, queue and worker changes. */
const REFRESH_MS = 5000;
/** Temporal's queue descriptions are reused for this long. */
const QUEUE_CACHE_MS = 4000;
/** GET /v1/dashboard answers with the latest snapshot while it is younger than this. */
const FRESH_MS = 1000;
const TEMPORAL_DEADLINE_MS = 3000;
/** While snapshots keep failing, the failure is logged this often rather than at every check. */
const FAILURE_LOG_EVERY_MS = 60_000;
const MINUTES = 60;

interface QueueDescription {
  backlog: number | null;
  backlogAgeSeconds: number | null;
  pollers: { identity: string; lastAccessTime: Date | null }[];
  error: string | null;
}

/** Queries on `db` whose statements each fail after STATEMENT_TIMEOUT_MS. */
const snapshotQuery =
  (db: Pool | PoolClient) =>
  <R extends QueryResultRow>(text: string, values?: unknown[]) =>
    db.query<R>(boundedQuery(STATEMENT_TIMEOUT_MS, text, values));
const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
const seconds = (from: Date | null, to: Date): number | null =>
  from ? Math.max(0, Math.round((to.getTime() - from.getTime()) / 100) / 10) : null;

/**
 * The dashboard's data, all from PostgreSQL (tasks, attempts, events) and Temporal (queues and their
 * pollers), so every API replica serves the same picture. `subscribe` feeds live snapshots: one feed
 * per process checks PostgreSQL for changes every second and sends a new snapshot on a change, and at
 * least every 5 s. `current` serves GET /v1/dashboard from the same snapshots.
 */
@Injectable()
export class DashboardService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DashboardService.name);
  private readonly listeners = new Set<(snapshot: DashboardSnapshot) => void>();
  private readonly closers = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private latest: DashboardSnapshot | undefined;
  private lastSentAt = 0;
  private ticking = false;
  private forceAgain = false;
  private queueCache: { at: number; value: Promise<Map<string, QueueDescription>> } | undefined;
  private computed: { startedAt: number; snapshot: DashboardSnapshot } | undefined;
  private computing: Promise<DashboardSnapshot> | undefined;
  private stopped = false;
  private failureLoggedAt: number | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
  ) {}

  /** Calls `listener` with a snapshot now and on every change, until the returned function is called. */
  subscribe(listener: (snapshot: DashboardSnapshot) => void): () => void {
    // A running feed's last snapshot is current; without a feed, the last one may be old.
    const current = this.timer !== undefined && this.latest && Date.now() - this.lastSentAt < CHANGE_CHECK_MS;
    this.listeners.add(listener);
    if (current && this.latest) listener(this.latest);
    else void this.tick(true);
    this.timer ??= setInterval(() => void this.tick(false), CHANGE_CHECK_MS);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /**
   * A snapshot for GET /v1/dashboard: the latest one (the feed's or another caller's) while it is under
   * a second old, else the one being computed, else a new one. Callers at once share one snapshot's
   * queries, so they cannot take every connection of the pool.
   */
  current(): Promise<DashboardSnapshot> {
    if (this.computed && Date.now() - this.computed.startedAt < FRESH_MS) {
      return Promise.resolve(this.computed.snapshot);
    }
    return this.compute();
  }

  /** Runs `close` when the API begins to stop; the returned function forgets it. */
  onShutdown(close: () => void): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  /**
   * True once the API has begun to stop. A stream opened then (a browser reconnects a second after its
   * stream ends, while later shutdown hooks may still run) would hold the HTTP server's close forever.
   */
  get stopping(): boolean {
    return this.stopped;
  }

  /** Ends the open streams before the HTTP server closes: it waits for open connections. */
  beforeApplicationShutdown(): void {
    this.stopped = true;
    for (const close of [...this.closers]) close();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private async tick(force: boolean): Promise<void> {
    if (this.ticking) {
      // A new listener needs a snapshot: take another one when this tick is done.
      if (force) this.forceAgain = true;
      return;
    }
    this.ticking = true;
    try {
      let changed = force || Date.now() - this.lastSentAt >= REFRESH_MS;
      if (!changed) changed = (await this.cursor()) !== this.latest?.cursor;
      if (!changed) return;
      const snapshot = await this.compute();
      this.latest = snapshot;
      this.lastSentAt = Date.now();
      for (const listener of this.listeners) listener(snapshot);
      this.failureLoggedAt = undefined;
    } catch (err) {
      // The database is away: listeners keep the last picture (the page marks it stale when no new one
      // comes), and the next tick tries again.
      if (this.failureLoggedAt === undefined || Date.now() - this.failureLoggedAt >= FAILURE_LOG_EVERY_MS) {
        this.failureLoggedAt = Date.now();
        this.logger.warn(`dashboard snapshot failed: ${(err as Error).message}`);
      }
    } finally {
      this.ticking = false;
      if (this.forceAgain) {
        this.forceAgain = false;
        void this.tick(true);
      }
    }
  }

  private async cursor(db: Pool | PoolClient = this.pool): Promise<string> {
    const res = await snapshotQuery(db)<{ cursor: string | null }>('SELECT max(id)::text AS cursor FROM task_events');
    return res.rows[0]?.cursor ?? '0';
  }

  private links(task: { id: string; workflow_id: string; run_id: string | null }) {
    const { self, temporalUi } = taskLinks(task, this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE);
    return { self, temporalUi };
  }

  /** A new snapshot, or the one being computed already: one at a time per process. */
  private compute(): Promise<DashboardSnapshot> {
    if (!this.computing) {
      const startedAt = Date.now();
      this.computing = this.snapshot()
        .then((snapshot) => {
          this.computed = { startedAt, snapshot };
          return snapshot;
        })
        .finally(() => {
          this.computing = undefined;
        });
    }
    return this.computing;
  }

  /**
   * One consistent picture: PostgreSQL's part is read in one read-only transaction (one moment, and
   * its clock throughout), while Temporal is asked at the same time.
   */
  private async snapshot(): Promise<DashboardSnapshot> {
    // Never rejects (each queue's error is kept in its description), so it cannot go unhandled.
    const queuesPromise = this.describeQueues();
    const {
      cursor,
      clock,
      counts,
      waiting,
      running,
      recent,
      failureClasses,
      failures,
      workerStats,
      registeredWorkers,
      series,
    } = await inReadOnlySnapshot(this.pool, (db) => this.readDatabase(db), STATEMENT_TIMEOUT_MS);
    const now = clock.rows[0]?.now ?? new Date();
    const count = (status: string, recentOnly: boolean): number =>
      counts.rows.find((r) => r.status === status && r.recent === recentOnly)?.n ?? 0;
    const queues = await queuesPromise;
    const statsByWorker = new Map(workerStats.rows.map((r) => [r.worker, r]));
    const waitingRow = waiting.rows[0];

    const queueViews: QueueView[] = (['workflows', 'agents'] as const).map((role) => {
      const name = role === 'workflows' ? this.config.ATELIER_WORKFLOW_QUEUE : this.config.ATELIER_AGENT_QUEUE;
      const described = queues.get(role);
      return {
        name,
        role,
        backlog: described?.backlog ?? null,
        backlogAgeSeconds: described?.backlogAgeSeconds ?? null,
        pollers: described?.error
          ? null
          : (described?.pollers.filter((p) => this.fresh(p.lastAccessTime, now)).length ?? null),
        waitingTasks: role === 'agents' ? (waitingRow?.n ?? 0) : null,
        oldestWaitingSeconds: role === 'agents' ? seconds(waitingRow?.oldest ?? null, now) : null,
        error: described?.error ?? null,
      };
    });

    const workers: WorkerView[] = [];
    const lastPoll = new Map<string, Date | null>();
    for (const role of ['workflows', 'agents'] as const) {
      for (const p of queues.get(role)?.pollers ?? []) lastPoll.set(`${role}:${p.identity}`, p.lastAccessTime);
    }
    const view = (identity: string, role: WorkerView['role'], taskQueue: string, healthy: boolean): WorkerView => {
      const stats = statsByWorker.get(identity);
      return {
        identity,
        role,
        taskQueue,
        lastPollAt: iso(lastPoll.get(`${role}:${identity}`)),
        healthy,
        running: stats?.running ?? 0,
        succeededLastHour: stats?.succeeded ?? 0,
        failedLastHour: stats?.failed ?? 0,
      };
    };
    // Registered workers by their heartbeats too: an agent worker with every slot taken stops polling,
    // and is as healthy as one that polls.
    const registered = new Set<string>();
    for (const w of registeredWorkers.rows) {
      const role = w.kind === 'workflow' ? 'workflows' : 'agents';
      registered.add(`${role}:${w.identity}`);
      // Stopped: not listed, nor taken for a poller that never registered while Temporal still lists it.
      if (w.stopped) continue;
      const serving = w.state === 'RUNNING' && w.heartbeat_age_seconds <= WORKER_LOST_AFTER_SECONDS;
      const polling = this.fresh(lastPoll.get(`${role}:${w.identity}`) ?? null, now);
      workers.push(view(w.identity, role, w.task_queue, serving || polling));
    }
    // Pollers that never registered (workers of another version, or not Atelier's own), by their polls.
    // Temporal forgets a poller about 5 minutes after its last poll: until then it shows as not polling.
    for (const role of ['workflows', 'agents'] as const) {
      const queue = queueViews.find((q) => q.role === role);
      for (const poller of queues.get(role)?.pollers ?? []) {
        if (registered.has(`${role}:${poller.identity}`)) continue;
        workers.push(view(poller.identity, role, queue?.name ?? '', this.fresh(poller.lastAccessTime, now)));
      }
    }
    workers.sort((a, b) => a.role.localeCompare(b.role) || a.identity.localeCompare(b.identity));

    const namespace = encodeURIComponent(this.config.TEMPORAL_NAMESPACE);
    return {
      generatedAt: now.toISOString(),
      cursor: cursor,
      temporalUi: { workflows: `${this.config.TEMPORAL_UI_URL}/namespaces/${namespace}/workflows` },
      counts: {
        queued: count('queued', false),
        running: count('running', false),
        succeededLastHour: count('succeeded', true),
        failedLastHour: count('failed', true),
        cancelledLastHour: count('cancelled', true),
      },
      queues: queueViews,
      workers,
      running: running.rows.map((t) => ({
        id: t.id,
        agent: t.agent,
        model: t.model,
        attempt: t.attempt,
        worker: t.worker,
        startedAt: iso(t.started_at),
        elapsedSeconds: seconds(t.started_at, now),
        links: this.links(t),
      })),
      recent: recent.rows.map((t) => ({
        id: t.id,
        status: t.status,
        agent: t.agent,
        createdAt: t.created_at.toISOString(),
        finishedAt: iso(t.finished_at),
        durationSeconds: t.finished_at ? seconds(t.run_started, t.finished_at) : null,
        errorClass: t.error_class,
        links: this.links(t),
      })),
      failures: {
        attemptsByClass: failureClasses.rows,
        recent: failures.rows.map((t) => ({
          id: t.id,
          errorClass: t.error_class,
          message: t.error_message,
          finishedAt: iso(t.finished_at),
          links: this.links(t),
        })),
      },
      series,
    };
  }

  /**
   * The snapshot's rows, one statement after another on the one connection: a snapshot takes a single
   * connection of the pool, however many viewers wait for it, and leaves the rest to other requests.
   */
  private async readDatabase(db: PoolClient) {
    const query = snapshotQuery(db);
    return {
      cursor: await this.cursor(db),
      clock: await query<{ now: Date }>('SELECT now() AS now'),
      counts: await query<{ status: string; recent: boolean; n: number }>(
        `SELECT status, false AS recent, count(*)::int AS n FROM tasks WHERE status IN ('queued', 'running') GROUP BY status
         UNION ALL
         SELECT status, true, count(*)::int FROM tasks
         WHERE finished_at > now() - interval '1 hour' AND status IN ('succeeded', 'failed', 'cancelled') GROUP BY status`,
      ),
      waiting: await query<{ n: number; oldest: Date | null }>(
        `SELECT count(*)::int AS n, min(since) AS oldest FROM (${QUEUED_SINCE_SQL}) queued`,
      ),
      running: await query<{
        id: string;
        agent: string;
        model: string | null;
        workflow_id: string;
        run_id: string | null;
        started_at: Date | null;
        attempt: number | null;
        worker: string | null;
      }>(
        `SELECT t.id, t.agent, t.model, t.workflow_id, t.run_id, t.started_at, a.number AS attempt, a.worker
         FROM tasks t
         LEFT JOIN LATERAL (
           SELECT number, worker FROM attempts WHERE task_id = t.id AND run = t.current_run ORDER BY number DESC LIMIT 1
         ) a ON true
         WHERE t.status = 'running'
         ORDER BY t.started_at NULLS LAST, t.id
         LIMIT 50`,
      ),
      recent: await query<{
        id: string;
        status: string;
        agent: string;
        workflow_id: string;
        run_id: string | null;
        created_at: Date;
        finished_at: Date | null;
        run_started: Date;
        error_class: string | null;
      }>(
        `SELECT t.id, t.status, t.agent, t.workflow_id, t.run_id, t.created_at, t.finished_at, t.error_class,
           COALESCE(r.created_at, t.created_at) AS run_started
         FROM tasks t LEFT JOIN task_runs r ON r.task_id = t.id AND r.number = t.current_run
         ORDER BY t.created_at DESC, t.id DESC
         LIMIT 20`,
      ),
      failureClasses: await query<{ class: string; count: number }>(
        `SELECT failure_class AS class, count(*)::int AS count FROM attempts
         WHERE finished_at > now() - interval '1 hour' AND failure_class NOT IN ('succeeded', 'cancelled')
         GROUP BY failure_class ORDER BY count DESC, failure_class`,
      ),
      failures: await query<{
        id: string;
        workflow_id: string;
        run_id: string | null;
        error_class: string | null;
        error_message: string | null;
        finished_at: Date | null;
      }>(
        `SELECT id, workflow_id, run_id, error_class, error_message, finished_at FROM tasks
         WHERE status = 'failed' AND finished_at > now() - interval '1 hour'
         ORDER BY finished_at DESC LIMIT 10`,
      ),
      workerStats: await query<{ worker: string; running: number; succeeded: number; failed: number }>(
        `SELECT worker,
           count(*) FILTER (WHERE finished_at IS NULL)::int AS running,
           count(*) FILTER (WHERE finished_at IS NOT NULL AND failure_class = 'succeeded')::int AS succeeded,
           count(*) FILTER (WHERE finished_at IS NOT NULL AND failure_class NOT IN ('succeeded', 'cancelled'))::int AS failed
         FROM attempts
         WHERE worker IS NOT NULL AND (finished_at IS NULL OR finished_at > now() - interval '1 hour')
         GROUP BY worker`,
      ),
      registeredWorkers: await query<{
        identity: string;
        kind: 'workflow' | 'agent';
        task_queue: string;
        state: string;
        heartbeat_age_seconds: number;
        stopped: boolean;
      }>(
        `SELECT identity, kind, task_queue, state, extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_seconds,
           stopped_at IS NOT NULL AS stopped
         FROM workers
         WHERE heartbeat_at > now() - make_interval(secs => $1)`,
        // As long as GET /v1/workers lists a silent worker, and about as long as Temporal lists a stopped one's poller.
        [LISTED_WITHIN_SECONDS],
      ),
      series: await this.series(db),
    };
  }

  private fresh(at: Date | null, now: Date): boolean {
    return at !== null && now.getTime() - at.getTime() < POLLER_FRESH_MS;
  }

  /** Per-minute throughput and latency over the last hour; a run's latency counts from its own start. */
  private async series(db: PoolClient): Promise<SeriesView> {
    const query = snapshotQuery(db);
    const finished = await query<{
      minute: Date;
      succeeded: number;
      failed: number;
      cancelled: number;
      p50: number | null;
      p95: number | null;
      start: Date;
    }>(
      `WITH since AS (SELECT date_trunc('minute', now()) - interval '${MINUTES - 1} minutes' AS start)
       SELECT date_trunc('minute', t.finished_at) AS minute, (SELECT start FROM since) AS start,
         count(*) FILTER (WHERE t.status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE t.status = 'failed')::int AS failed,
         count(*) FILTER (WHERE t.status = 'cancelled')::int AS cancelled,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.finished_at - COALESCE(r.created_at, t.created_at)))
           FILTER (WHERE t.status = 'succeeded') AS p50,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM t.finished_at - COALESCE(r.created_at, t.created_at)))
           FILTER (WHERE t.status = 'succeeded') AS p95
       FROM tasks t LEFT JOIN task_runs r ON r.task_id = t.id AND r.number = t.current_run
       WHERE t.finished_at >= (SELECT start FROM since)
       GROUP BY 1`,
    );
    const submitted = await query<{ minute: Date; n: number; start: Date }>(
      `WITH since AS (SELECT date_trunc('minute', now()) - interval '${MINUTES - 1} minutes' AS start)
       SELECT s.start, date_trunc('minute', t.created_at) AS minute, count(t.id)::int AS n
       FROM since s LEFT JOIN tasks t ON t.created_at >= s.start
       GROUP BY 1, 2`,
    );
    const start =
      submitted.rows[0]?.start ?? new Date(Math.floor(Date.now() / 60_000) * 60_000 - (MINUTES - 1) * 60_000);
    const minutes = Array.from({ length: MINUTES }, (_, i) => new Date(start.getTime() + i * 60_000));
    const index = (d: Date): number => Math.round((d.getTime() - start.getTime()) / 60_000);
    const series: SeriesView = {
      minutes: minutes.map((m) => m.toISOString()),
      submitted: Array<number>(MINUTES).fill(0),
      succeeded: Array<number>(MINUTES).fill(0),
      failed: Array<number>(MINUTES).fill(0),
      cancelled: Array<number>(MINUTES).fill(0),
      p50Seconds: Array<number | null>(MINUTES).fill(null),
      p95Seconds: Array<number | null>(MINUTES).fill(null),
    };
    for (const row of submitted.rows) {
      const i = row.minute ? index(row.minute) : -1;
      if (i >= 0 && i < MINUTES) series.submitted[i] = row.n;
    }
    const round = (v: number | null): number | null => (v === null ? null : Math.round(Number(v) * 100) / 100);
    for (const row of finished.rows) {
      const i = index(row.minute);
      if (i < 0 || i >= MINUTES) continue;
      series.succeeded[i] = row.succeeded;
      series.failed[i] = row.failed;
      series.cancelled[i] = row.cancelled;
      series.p50Seconds[i] = round(row.p50);
      series.p95Seconds[i] = round(row.p95);
    }
    return series;
  }

  /** Both task queues as Temporal sees them: pollers and backlog. Cached briefly; errors are per queue. */
  private describeQueues(): Promise<Map<string, QueueDescription>> {
    if (this.queueCache && Date.now() - this.queueCache.at < QUEUE_CACHE_MS) return this.queueCache.value;
    const value = (async () => {
      const entries = await Promise.all(
        (['workflows', 'agents'] as const).map(async (role): Promise<[string, QueueDescription]> => {
          const [name, type] =
            role === 'workflows'
              ? [this.config.ATELIER_WORKFLOW_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW]
              : [this.config.ATELIER_AGENT_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY];
          try {
            const res = await this.temporal.connection.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, () =>
              this.temporal.workflowService.describeTaskQueue({
                namespace: this.config.TEMPORAL_NAMESPACE,
                taskQueue: { name },
                taskQueueType: type,
                reportStats: true,
              }),
            );
            const age = res.stats?.approximateBacklogAge;
            return [
              role,
              {
                backlog: res.stats ? Number(res.stats.approximateBacklogCount ?? 0) : null,
                backlogAgeSeconds: age ? Number(age.seconds ?? 0) + (age.nanos ?? 0) / 1e9 : res.stats ? 0 : null,
                pollers: (res.pollers ?? []).map((p) => ({
                  identity: p.identity ?? 'unknown',
                  lastAccessTime: p.lastAccessTime ? new Date(Number(p.lastAccessTime.seconds ?? 0) * 1000) : null,
                })),
                error: null,
              },
            ];
          } catch (err) {
            const error = temporalUnavailableText(`could not describe task queue ${name}`, err);
            return [role, { backlog: null, backlogAgeSeconds: null, pollers: [], error }];
          }
        }),
      );
      return new Map(entries);
    })();
    this.queueCache = { at: Date.now(), value };
    return value;
  }
}
