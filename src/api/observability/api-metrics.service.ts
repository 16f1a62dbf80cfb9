import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentsFile } from '../../config/agents-file';
import { breakerNow, DEFAULT_BREAKER } from '../../gate/breaker';
import { AgentStatusStore, idleAgentStatus, type AgentStatusRow } from '../../store/agent-status-store';
import { BudgetStore, type DailyBudget } from '../../store/budget-store';
import { NotificationStore, type OutboxStats } from '../../notifications/notification-store';
import { TaskStatsStore, type TaskStats } from '../../store/task-stats-store';
import { WorkerStore, type QueueWorkers, WORKER_LOST_AFTER_SECONDS } from '../../store/worker-store';
import { TASK_STATUSES } from '../../../workflows/definitions';
import { LogStreamService } from '../logs/log-stream.service';
import { AGENTS, PG_POOL } from '../tokens';
import { CachedRead } from './cached-read';
import { QueueStatsService, type QueueStats, type QueueType } from '../workers/queue-stats.service';

const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;

interface GateStats {
  agents: AgentStatusRow[];
  budget: DailyBudget;
}

/** Aggregates over PostgreSQL are cached this long, so several scrapers cost one query. */
const TASK_STATS_CACHE_MS = 5000;
/**
 * How long each of those queries may wait for its answer, within Prometheus's default 10 s scrape
 * timeout: a server gone silent makes the scrape report atelier_metrics_source_up 0 rather than hang,
 * and the next scrape reads again on a fresh connection rather than wait for the same read.
 */
const READ_TIMEOUT_MS = 5000;

/** Whether this scrape could read a source, and why not. */
type SourceRead = { ok: true } | { ok: false; error: unknown };
type SourceReads = Record<'postgres' | 'temporal', SourceRead>;

/**
 * The API's Prometheus registry. Task counts and queue backlogs are read when scraped (from PostgreSQL
 * and Temporal, so every API replica reports the same cluster-wide values: aggregate them with max,
 * not sum); request and submission counters are this replica's own (sum them).
 */
@Injectable()
export class ApiMetrics {
  readonly registry = new Registry();
  readonly submissions: Counter<'agent' | 'outcome'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly strandedStarts: Counter<'kind'>;
  readonly closedRunsRecorded: Counter<'kind'>;
  readonly closedRunSweeps: Counter;
  private readonly logger = new Logger(ApiMetrics.name);
  private readonly stats: CachedRead<TaskStats>;
  private readonly gates: CachedRead<GateStats>;
  private readonly serving: CachedRead<QueueWorkers[]>;
  private readonly outbox: CachedRead<OutboxStats>;

  constructor(
    @Inject(PG_POOL) pool: Pool,
    @Inject(AGENTS) private readonly agents: AgentsFile,
    private readonly queues: QueueStatsService,
    streams: LogStreamService,
  ) {
    const taskStatsStore = new TaskStatsStore(pool);
    this.stats = new CachedRead(() => taskStatsStore.stats(READ_TIMEOUT_MS), TASK_STATS_CACHE_MS);
    const agentStatus = new AgentStatusStore(pool);
    const budget = new BudgetStore(pool);
    this.gates = new CachedRead(() => this.readGateStats(agentStatus, budget), TASK_STATS_CACHE_MS);
    const workerStore = new WorkerStore(pool);
    this.serving = new CachedRead(() => workerStore.serving(WORKER_LOST_AFTER_SECONDS), TASK_STATS_CACHE_MS);
    const notifications = new NotificationStore(pool);
    this.outbox = new CachedRead(() => notifications.outboxStats(READ_TIMEOUT_MS), TASK_STATS_CACHE_MS);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    this.submissions = new Counter({
      name: 'atelier_task_submissions_total',
      help: 'POST /v1/tasks on this API replica, by agent and outcome (created, replayed, rejected, error).',
      labelNames: ['agent', 'outcome'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'atelier_http_requests_total',
      help: 'HTTP requests answered by this API replica, by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'atelier_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (event streams excluded), by method and route.',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.strandedStarts = new Counter({
      name: 'atelier_stranded_submissions_started_total',
      help: 'Tasks and plans this API replica started because they were stored and never started (an API stopped in between), by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.closedRunsRecorded = new Counter({
      name: 'atelier_closed_runs_recorded_total',
      help: 'Task and plan runs this API replica recorded failed because their workflow closed in Temporal (terminated, timed out) without recording an end, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.closedRunSweeps = new Counter({
      name: 'atelier_closed_run_sweeps_total',
      help: 'Sweeps for runs closed in Temporal without recording their end that this API replica completed.',
      registers,
    });
    // Collectors run side by side; this one waits for the same (cached) reads the others make, and alone
    // reports them: postgres is up when both of its reads were, and a failing scrape is logged once.
    const readSources = (): Promise<SourceReads> => this.readSources();
    const logger = this.logger;
    new Gauge({
      name: 'atelier_metrics_source_up',
      help: '1 when this scrape could read the source (postgres, temporal), 0 when it failed.',
      labelNames: ['source'],
      registers,
      async collect() {
        const failures: string[] = [];
        for (const [source, read] of Object.entries(await readSources())) {
          this.set({ source }, read.ok ? 1 : 0);
          if (!read.ok) failures.push(`${source}: ${(read.error as Error | undefined)?.message ?? 'unknown error'}`);
        }
        if (failures.length > 0) logger.warn(`metrics could not read ${failures.join('; ')}`);
      },
    });
    new Gauge({
      name: 'atelier_log_streams_active',
      help: 'Clients following task logs (GET /v1/tasks/:id/logs?follow=1) on this API replica.',
      registers,
      collect() {
        this.set(streams.active);
      },
    });

    const taskStats = (): Promise<TaskStats | undefined> => this.taskStats();
    new Gauge({
      name: 'atelier_tasks',
      help: 'Tasks in PostgreSQL by status.',
      labelNames: ['status'],
      registers,
      async collect() {
        const s = await taskStats();
        this.reset();
        if (s) for (const status of TASK_STATUSES) this.set({ status }, s.byStatus[status] ?? 0);
      },
    });
    new Gauge({
      name: 'atelier_tasks_failed_by_class',
      help: 'Failed tasks in PostgreSQL by the failure class of their last attempt.',
      labelNames: ['failure_class'],
      registers,
      async collect() {
        const s = await taskStats();
        this.reset();
        if (s) for (const [cls, n] of Object.entries(s.failedByClass)) this.set({ failure_class: cls }, n);
      },
    });
    new Gauge({
      name: 'atelier_task_queued_oldest_age_seconds',
      help: 'Seconds since the longest-queued task last became queued (its run began, or its last attempt ended).',
      registers,
      async collect() {
        const s = await taskStats();
        this.reset();
        if (s) this.set(s.oldestQueuedSeconds);
      },
    });

    const outboxStats = async (): Promise<OutboxStats | undefined> => {
      const result = await this.outbox.get();
      return result.ok ? result.value : undefined;
    };
    const outboxGauge = (name: string, help: string, value: (o: OutboxStats) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const o = await outboxStats();
          this.reset();
          if (o) this.set(value(o));
        },
      });
    };
    outboxGauge(
      'atelier_webhooks_pending',
      'Webhook events not yet accepted by every URL, still to be tried (cluster-wide).',
      (o) => o.pending,
    );
    outboxGauge(
      'atelier_webhooks_oldest_pending_age_seconds',
      'Age of the oldest webhook event still to be delivered; 0 when none is.',
      (o) => o.oldestPendingSeconds,
    );
    outboxGauge(
      'atelier_webhooks_given_up',
      'Webhook events given up (not delivered within 24 h of the event), among the events kept.',
      (o) => o.givenUp,
    );

    const gateStats = (): Promise<GateStats | undefined> => this.gateStats();
    new Gauge({
      name: 'atelier_agent_breaker_state',
      help: "Each agent's circuit breaker: 1 for its current state (closed, open, half_open), 0 for the others.",
      labelNames: ['agent', 'state'],
      registers,
      async collect() {
        const g = await gateStats();
        this.reset();
        for (const a of g?.agents ?? []) {
          for (const state of BREAKER_STATES) this.set({ agent: a.agent, state }, a.breaker.state === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'atelier_agent_breaker_failures',
      help: "Failures counted in each agent breaker's current window.",
      labelNames: ['agent'],
      registers,
      async collect() {
        const g = await gateStats();
        this.reset();
        for (const a of g?.agents ?? []) this.set({ agent: a.agent }, a.breaker.failures);
      },
    });
    new Gauge({
      name: 'atelier_agent_spend_today_usd',
      help: 'Cost reported by agents today (UTC day), in USD, by agent.',
      labelNames: ['agent'],
      registers,
      async collect() {
        const g = await gateStats();
        this.reset();
        for (const a of g?.agents ?? []) this.set({ agent: a.agent }, a.spendTodayUsd);
      },
    });
    new Gauge({
      name: 'atelier_spend_today_usd',
      help: 'Cost reported by all agents today (UTC day), in USD.',
      registers,
      async collect() {
        const g = await gateStats();
        this.reset();
        if (g) this.set(g.budget.spentTodayUsd);
      },
    });
    new Gauge({
      name: 'atelier_budget_daily_usd',
      help: 'The daily spending cap in USD (absent when there is none).',
      registers,
      async collect() {
        const g = await gateStats();
        this.reset();
        if (g && g.budget.dailyUsd !== null) this.set(g.budget.dailyUsd);
      },
    });

    /** A gauge per task queue, set at each scrape to what `read` gives. */
    const perQueueGauge = (
      name: string,
      help: string,
      read: () => Promise<{ name: string; type: QueueType; value: number }[]>,
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ['task_queue', 'type'],
        registers,
        async collect() {
          const values = await read();
          this.reset();
          for (const q of values) this.set({ task_queue: q.name, type: q.type }, q.value);
        },
      });
    };
    const queueStats = async (): Promise<QueueStats[]> => (await this.queueStats()).stats;
    const queueGauge = (name: string, help: string, value: (q: QueueStats) => number): void =>
      perQueueGauge(name, help, async () => (await queueStats()).map((q) => ({ ...q, value: value(q) })));
    queueGauge(
      'atelier_task_queue_backlog',
      'Tasks waiting on a Temporal task queue for a worker (running ones excluded); approximate.',
      (q) => q.backlog,
    );
    queueGauge(
      'atelier_task_queue_backlog_age_seconds',
      'Age of the oldest task waiting on a Temporal task queue.',
      (q) => q.backlogAgeSeconds,
    );
    queueGauge('atelier_task_queue_add_rate', 'Tasks added to the queue per second, recently.', (q) => q.addRate);
    queueGauge(
      'atelier_task_queue_dispatch_rate',
      'Tasks handed to workers from the queue per second, recently.',
      (q) => q.dispatchRate,
    );
    queueGauge(
      'atelier_task_queue_pollers',
      'Workers Temporal saw polling the queue recently (an agent worker with every slot taken does not poll).',
      (q) => q.pollers.filter((p) => p.lastAccessTime && Date.now() - p.lastAccessTime.getTime() < 90_000).length,
    );

    // From the worker registry: a busy worker is counted, though it does not poll.
    const servingWorkers = (): Promise<QueueWorkers[] | undefined> => this.servingWorkers();
    const configured = this.queues.configuredQueues();
    const registryGauge = (name: string, help: string, value: (w: QueueWorkers | undefined) => number): void =>
      perQueueGauge(name, help, async () => {
        const rows = await servingWorkers();
        if (!rows) return [];
        return configured.map((q) => {
          const kind = q.type === 'activity' ? 'agent' : 'workflow';
          return { ...q, value: value(rows.find((r) => r.kind === kind && r.taskQueue === q.name)) };
        });
      });
    registryGauge(
      'atelier_task_queue_workers',
      'Workers running for the queue that heartbeat in the last 30 s (worker registry), busy ones included.',
      (w) => w?.workers ?? 0,
    );
    registryGauge(
      'atelier_task_queue_workers_busy',
      'Of atelier_task_queue_workers, those with every slot taken.',
      (w) => w?.busy ?? 0,
    );
  }

  /** The exposition text, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private async taskStats(): Promise<TaskStats | undefined> {
    const result = await this.stats.get();
    return result.ok ? result.value : undefined;
  }

  private async servingWorkers(): Promise<QueueWorkers[] | undefined> {
    const result = await this.serving.get();
    return result.ok ? result.value : undefined;
  }

  private async gateStats(): Promise<GateStats | undefined> {
    const result = await this.gates.get();
    return result.ok ? result.value : undefined;
  }

  /** Breakers and spend per agent (every agent of the agents file, and any other with a record), and the budget. */
  private async readGateStats(agentStatus: AgentStatusStore, budget: BudgetStore): Promise<GateStats> {
    const [status, daily] = await Promise.all([agentStatus.all(READ_TIMEOUT_MS), budget.daily(READ_TIMEOUT_MS)]);
    const names = new Set([...Object.keys(this.agents.agents), ...status.agents.keys()]);
    const agents = [...names].sort().map((agent) => {
      const row = status.agents.get(agent) ?? idleAgentStatus(agent);
      const config = { ...DEFAULT_BREAKER, ...this.agents.agents[agent]?.breaker };
      return { ...row, breaker: { ...row.breaker, ...breakerNow(row.breaker, status.now, config) } };
    });
    return { agents, budget: daily };
  }

  /** Every configured queue that could be described; the read failed when any could not be. */
  private async queueStats(): Promise<{ stats: QueueStats[]; read: SourceRead }> {
    const results = await Promise.allSettled(
      this.queues.configuredQueues().map((q) => this.queues.describe(q.name, q.type)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    return {
      stats: results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
      read: failed ? { ok: false, error: failed.reason } : { ok: true },
    };
  }

  /** This scrape's reads of each source: PostgreSQL's four (tasks, gates, worker registry, outbox) count as one. */
  private async readSources(): Promise<SourceReads> {
    const [tasks, gates, serving, outbox, queues] = await Promise.all([
      this.stats.get(),
      this.gates.get(),
      this.serving.get(),
      this.outbox.get(),
      this.queueStats(),
    ]);
    return { postgres: [tasks, gates, serving, outbox].find((r) => !r.ok) ?? tasks, temporal: queues.read };
  }
}
