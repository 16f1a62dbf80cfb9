import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentsFile } from '../../config/agents-file';
import { AgentStatusStore, type AgentStatusRow } from '../../store/agent-status-store';
import { BudgetStore, type DailyBudget } from '../../store/budget-store';
import { TaskStatsStore, type TaskStats } from '../../store/task-stats-store';
import { TASK_STATUSES } from '../../../workflows/definitions';
import { LogStreamService } from '../logs/log-stream.service';
import { AGENTS, PG_POOL } from '../tokens';
import { QueueStatsService, type QueueStats } from '../workers/queue-stats.service';

const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;

interface GateStats {
  agents: AgentStatusRow[];
  budget: DailyBudget;
}

/** Aggregates over the tasks table are cached this long, so several scrapers cost one query. */
const TASK_STATS_CACHE_MS = 5000;

type Source = 'postgres' | 'temporal';

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
  private readonly logger = new Logger(ApiMetrics.name);
  private readonly stats: TaskStatsStore;
  private statsCache: { at: number; value: Promise<TaskStats> } | undefined;
  private readonly agentStatus: AgentStatusStore;
  private readonly budget: BudgetStore;
  private gateCache: { at: number; value: Promise<GateStats> } | undefined;
  private readonly sourceUp: Gauge<'source'>;

  constructor(
    @Inject(PG_POOL) pool: Pool,
    @Inject(AGENTS) private readonly agents: AgentsFile,
    private readonly queues: QueueStatsService,
    streams: LogStreamService,
  ) {
    this.stats = new TaskStatsStore(pool);
    this.agentStatus = new AgentStatusStore(pool);
    this.budget = new BudgetStore(pool);
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
    // Collectors run side by side; this one waits for the same (cached) reads the others make.
    const readSources = (): Promise<unknown> => Promise.all([this.taskStats(), this.gateStats(), this.queueStats()]);
    this.sourceUp = new Gauge({
      name: 'atelier_metrics_source_up',
      help: '1 when this scrape could read the source (postgres, temporal), 0 when it failed.',
      labelNames: ['source'],
      registers,
      async collect() {
        await readSources();
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
      help: 'Age of the oldest task that is still queued (no attempt started yet).',
      registers,
      async collect() {
        const s = await taskStats();
        this.reset();
        if (s) this.set(s.oldestQueuedSeconds);
      },
    });

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

    const queueStats = (): Promise<QueueStats[]> => this.queueStats();
    const queueGauge = (name: string, help: string, value: (q: QueueStats) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['task_queue', 'type'],
        registers,
        async collect() {
          const all = await queueStats();
          this.reset();
          for (const q of all) this.set({ task_queue: q.name, type: q.type }, value(q));
        },
      });
    };
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
      'Workers Temporal saw polling the queue recently.',
      (q) => q.pollers.filter((p) => p.lastAccessTime && Date.now() - p.lastAccessTime.getTime() < 90_000).length,
    );
  }

  /** The exposition text, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private async taskStats(): Promise<TaskStats | undefined> {
    if (!this.statsCache || Date.now() - this.statsCache.at > TASK_STATS_CACHE_MS) {
      this.statsCache = { at: Date.now(), value: this.stats.stats() };
    }
    const cached = this.statsCache;
    try {
      const value = await cached.value;
      this.up('postgres', true);
      return value;
    } catch (err) {
      if (this.statsCache === cached) this.statsCache = undefined;
      this.up('postgres', false, err);
      return undefined;
    }
  }

  /** Breakers and spend per agent (every agent of the agents file, and any other with a record), and the budget. */
  private async gateStats(): Promise<GateStats | undefined> {
    if (!this.gateCache || Date.now() - this.gateCache.at > TASK_STATS_CACHE_MS) {
      const read = async (): Promise<GateStats> => {
        const [status, budget] = await Promise.all([this.agentStatus.all(), this.budget.daily()]);
        const names = new Set([...Object.keys(this.agents.agents), ...status.agents.keys()]);
        const agents = [...names].sort().map(
          (agent): AgentStatusRow =>
            status.agents.get(agent) ?? {
              agent,
              breaker: { state: 'closed', failures: 0, openUntil: null, openedAt: null },
              recent: { finished: 0, succeeded: 0 },
              running: 0,
              startsLastMinute: 0,
              spendTodayUsd: 0,
            },
        );
        return { agents, budget };
      };
      this.gateCache = { at: Date.now(), value: read() };
    }
    const cached = this.gateCache;
    try {
      const value = await cached.value;
      this.up('postgres', true);
      return value;
    } catch (err) {
      if (this.gateCache === cached) this.gateCache = undefined;
      this.up('postgres', false, err);
      return undefined;
    }
  }

  private async queueStats(): Promise<QueueStats[]> {
    const results = await Promise.allSettled(
      this.queues.configuredQueues().map((q) => this.queues.describe(q.name, q.type)),
    );
    const failed = results.find((r) => r.status === 'rejected');
    this.up('temporal', failed === undefined, failed?.reason);
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  private up(source: Source, ok: boolean, err?: unknown): void {
    this.sourceUp.set({ source }, ok ? 1 : 0);
    if (!ok)
      this.logger.warn(`metrics could not read ${source}: ${(err as Error | undefined)?.message ?? 'unknown error'}`);
  }
}
