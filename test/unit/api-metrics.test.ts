import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { afterEach, describe, it, mock } from 'node:test';
import { Logger, type CallHandler, type ExecutionContext } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { Pool } from 'pg';
import { lastValueFrom, of } from 'rxjs';
import type { LogStreamService } from '../../src/api/logs/log-stream.service';
import { ApiMetrics } from '../../src/api/observability/api-metrics.service';
import { HttpMetricsMiddleware } from '../../src/api/observability/http-metrics.middleware';
import { SubmissionsInterceptor } from '../../src/api/observability/submissions.interceptor';
import type { QueueStatsService, QueueType } from '../../src/api/workers/queue-stats.service';
import { loadAgentsFile } from '../../src/config/agents-file';
import { createPool } from '../../src/db/pool';
import { AgentStatusStore, idleAgentStatus, type AgentStatusRow } from '../../src/store/agent-status-store';
import { NotificationStore } from '../../src/notifications/notification-store';
import { BudgetStore } from '../../src/store/budget-store';
import { TaskStatsStore } from '../../src/store/task-stats-store';
import { WorkerStore } from '../../src/store/worker-store';
import { startCuttableProxy } from '../support/cuttable-proxy';
import { parseMetrics, sample } from '../support/prometheus';
import { TEST_AGENTS_FILE, testEnv } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

const agentsFile = loadAgentsFile(TEST_AGENTS_FILE);

/** The API's metrics with no source behind them: tests stub the stores' reads they need. */
const apiMetrics = (queues: { name: string; type: QueueType }[] = []): ApiMetrics =>
  new ApiMetrics(
    {} as Pool,
    agentsFile,
    {
      configuredQueues: () => queues,
      describe: () => Promise.reject(new Error('no Temporal here')),
    } as unknown as QueueStatsService,
    { active: 0 } as LogStreamService,
  );

/** A counter's samples as `label=value,…` → value. */
async function counted(counter: ApiMetrics['httpRequests'] | ApiMetrics['submissions']): Promise<Map<string, number>> {
  const { values } = await counter.get();
  return new Map(
    values.map((v) => [
      Object.entries(v.labels)
        .map(([k, l]) => `${k}=${l}`)
        .join(','),
      v.value,
    ]),
  );
}

afterEach(() => mock.restoreAll());

describe('atelier_http_requests_total', () => {
  /** A request through the middleware; the test then ends it as a client or server would. */
  function request(metrics: ApiMetrics): EventEmitter & { writableFinished: boolean; statusCode: number } {
    const res = Object.assign(new EventEmitter(), {
      statusCode: 200,
      writableFinished: false,
      getHeader: () => 'text/event-stream',
    });
    const req = { method: 'GET', route: { path: '/v1/dashboard/stream' } };
    let passedOn = false;
    const next: NextFunction = () => (passedOn = true);
    new HttpMetricsMiddleware(metrics).use(req as Request, res as unknown as Response, next);
    assert.ok(passedOn);
    return res;
  }

  it('counts a request the client closed before its end (a dashboard stream) once, as 499', async () => {
    const metrics = apiMetrics();
    const res = request(metrics);
    res.emit('close');
    res.emit('close');
    assert.deepEqual(
      await counted(metrics.httpRequests),
      new Map([['method=GET,route=/v1/dashboard/stream,status=499', 1]]),
    );
  });

  it('counts a finished request once with its status, though its connection closes after', async () => {
    const metrics = apiMetrics();
    const res = request(metrics);
    res.writableFinished = true;
    res.emit('finish');
    res.emit('close');
    assert.deepEqual(
      await counted(metrics.httpRequests),
      new Map([['method=GET,route=/v1/dashboard/stream,status=200', 1]]),
    );
  });
});

describe('atelier_task_submissions_total', () => {
  /** The agent label of one created submission with `body`. */
  async function agentOf(body: Record<string, unknown>, statusCode = 201): Promise<string[]> {
    const metrics = apiMetrics();
    const req = { method: 'POST', route: { path: '/v1/tasks' }, body: { prompt: 'p', ...body } };
    const res = { statusCode, locals: {} };
    const context = {
      switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
    } as unknown as ExecutionContext;
    const next: CallHandler = { handle: () => of({ id: 'a-task' }) };
    await lastValueFrom(new SubmissionsInterceptor(metrics, agentsFile).intercept(context, next));
    return [...(await counted(metrics.submissions)).keys()];
  }

  it('labels a submission with the agent it starts with: agent, else the head of agents, else the default', async () => {
    assert.equal(agentsFile.defaultAgent, 'stand-in');
    assert.deepEqual(await agentOf({ agents: ['codex', 'stand-in'] }), ['agent=codex,outcome=created']);
    assert.deepEqual(await agentOf({ agent: 'codex', agents: ['codex', 'aider'] }), ['agent=codex,outcome=created']);
    assert.deepEqual(await agentOf({ agent: 'aider' }), ['agent=aider,outcome=created']);
    assert.deepEqual(await agentOf({}), ['agent=stand-in,outcome=created']);
  });

  it('labels a replay naming no agent of the agents file `unknown`: its fields were never checked', async () => {
    const replayed = (body: Record<string, unknown>) => agentOf({ idempotencyKey: 'k', ...body }, 200);
    assert.deepEqual(await replayed({ agent: 'x'.repeat(100) }), ['agent=unknown,outcome=replayed']);
    assert.deepEqual(await replayed({ agents: ['minted-1', 'codex'] }), ['agent=unknown,outcome=replayed']);
    assert.deepEqual(await replayed({ agents: [{ not: 'a name' }] }), ['agent=unknown,outcome=replayed']);
    assert.deepEqual(await replayed({ agent: 'toString' }), ['agent=unknown,outcome=replayed']);
    assert.deepEqual(await replayed({ agent: 'codex' }), ['agent=codex,outcome=replayed']);
  });
});

describe('atelier_metrics_source_up', () => {
  it('is 0 for postgres when one of its reads fails, whichever ends last, and a failing scrape logs once', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    // The breakers' read fails first; the task counts' read succeeds after it has.
    let gatesFailed = (): void => undefined;
    const afterGates = new Promise<void>((r) => (gatesFailed = r));
    const gateReads = mock.method(AgentStatusStore.prototype, 'all', () => {
      gatesFailed();
      return Promise.reject(new Error('connection refused'));
    });
    mock.method(BudgetStore.prototype, 'daily', () => Promise.resolve({ dailyUsd: null, spentTodayUsd: 0 }));
    mock.method(WorkerStore.prototype, 'serving', () => Promise.resolve([]));
    mock.method(TaskStatsStore.prototype, 'stats', async () => {
      await afterGates;
      await new Promise((r) => setImmediate(r));
      return { byStatus: { queued: 2 }, failedByClass: {}, oldestQueuedSeconds: 5 };
    });
    const metrics = apiMetrics();

    const first = parseMetrics((await metrics.render()).body);
    assert.equal(sample(first, 'atelier_metrics_source_up', { source: 'postgres' }), 0);
    assert.equal(sample(first, 'atelier_metrics_source_up', { source: 'temporal' }), 1);
    assert.equal(sample(first, 'atelier_tasks', { status: 'queued' }), 2, 'what could be read is served');
    assert.equal(warnings.mock.callCount(), 1, warnings.mock.calls.map((c) => String(c.arguments[0])).join('\n'));
    assert.match(String(warnings.mock.calls[0]?.arguments[0]), /postgres: connection refused/);

    // A failed read is not kept: the next scrape reads again.
    await metrics.render();
    assert.equal(gateReads.mock.callCount(), 2);
    assert.equal(warnings.mock.callCount(), 2);
  });
});

describe('a scrape while PostgreSQL is silent', () => {
  it('answers within seconds with postgres down, and the next scrape reads again rather than wait for the hung read', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    // A failover that leaves the pool's connections open and silent: idle connections to reuse, then the cut.
    const proxy = await startCuttableProxy(new URL(testEnv.databaseUrl).host);
    const url = new URL(testEnv.databaseUrl);
    url.host = proxy.address;
    const pool = createPool(url.toString(), () => undefined);
    try {
      const clients = await Promise.all(Array.from({ length: 8 }, () => pool.connect()));
      clients.forEach((c) => c.release());
      proxy.cut();
      const metrics = new ApiMetrics(
        pool,
        agentsFile,
        { configuredQueues: () => [] } as unknown as QueueStatsService,
        { active: 0 } as LogStreamService,
      );
      for (const scrape of ['first', 'second']) {
        const scraped = parseMetrics((await within(`the ${scrape} scrape`, 15_000, metrics.render())).body);
        assert.equal(sample(scraped, 'atelier_metrics_source_up', { source: 'postgres' }), 0);
        assert.equal(sample(scraped, 'atelier_metrics_source_up', { source: 'temporal' }), 1);
      }
      assert.match(String(warnings.mock.calls[0]?.arguments[0]), /postgres: Query read timeout/);
      // The silent connections are dropped, not left pinned until TCP gives up on them.
      await waitFor('the pool to drop its silent connections', () => pool.totalCount === 0, { timeoutMs: 10_000 });
    } finally {
      await proxy.close();
      await pool.end();
    }
  });
});

describe('atelier_task_queue_workers', () => {
  it("counts the registry's running workers of each configured queue, busy ones too, and 0 for a queue none serves", async () => {
    mock.method(Logger.prototype, 'warn', () => undefined); // Temporal cannot be read here
    mock.method(WorkerStore.prototype, 'serving', () =>
      Promise.resolve([
        { kind: 'agent', taskQueue: 'agents', workers: 2, busy: 2 },
        // Another deployment's queue, or a workflow worker on the agent queue's name: not counted.
        { kind: 'workflow', taskQueue: 'agents', workers: 5, busy: 0 },
      ]),
    );
    const metrics = apiMetrics([
      { name: 'workflows', type: 'workflow' },
      { name: 'agents', type: 'activity' },
    ]);

    const scraped = parseMetrics((await metrics.render()).body);
    assert.equal(sample(scraped, 'atelier_task_queue_workers', { task_queue: 'agents', type: 'activity' }), 2);
    assert.equal(sample(scraped, 'atelier_task_queue_workers_busy', { task_queue: 'agents', type: 'activity' }), 2);
    assert.equal(sample(scraped, 'atelier_task_queue_workers', { task_queue: 'workflows', type: 'workflow' }), 0);
    assert.equal(sample(scraped, 'atelier_task_queue_workers_busy', { task_queue: 'workflows', type: 'workflow' }), 0);
  });
});

describe('atelier_agent_breaker_state', () => {
  it('reports a breaker as an attempt would find it now: half-open once its cooldown passed, no failures of an ended window', async () => {
    mock.method(Logger.prototype, 'warn', () => undefined); // Temporal cannot be read here
    const now = new Date('2026-12-06T12:00:00Z');
    const ago = (s: number) => new Date(now.getTime() - s * 1000);
    const row = (agent: string, breaker: AgentStatusRow['breaker']): AgentStatusRow => ({
      ...idleAgentStatus(agent),
      breaker,
    });
    mock.method(AgentStatusStore.prototype, 'all', () =>
      Promise.resolve({
        now,
        agents: new Map([
          // Opened 2 minutes ago for a minute.
          [
            'codex',
            row('codex', {
              state: 'open',
              failures: 5,
              windowStartedAt: ago(150),
              openedAt: ago(120),
              openUntil: ago(60),
            }),
          ],
          // Four failures yesterday, none since.
          [
            'aider',
            row('aider', {
              state: 'closed',
              failures: 4,
              windowStartedAt: ago(86_400),
              openedAt: null,
              openUntil: null,
            }),
          ],
        ]),
      }),
    );
    mock.method(BudgetStore.prototype, 'daily', () => Promise.resolve({ dailyUsd: null, spentTodayUsd: 0 }));
    mock.method(WorkerStore.prototype, 'serving', () => Promise.resolve([]));
    mock.method(TaskStatsStore.prototype, 'stats', () =>
      Promise.resolve({ byStatus: {}, failedByClass: {}, oldestQueuedSeconds: 0 }),
    );

    const scraped = parseMetrics((await apiMetrics().render()).body);
    assert.equal(sample(scraped, 'atelier_agent_breaker_state', { agent: 'codex', state: 'open' }), 0);
    assert.equal(sample(scraped, 'atelier_agent_breaker_state', { agent: 'codex', state: 'half_open' }), 1);
    assert.equal(sample(scraped, 'atelier_agent_breaker_failures', { agent: 'aider' }), 0);
  });
});

describe('atelier_webhooks_pending', () => {
  it("reports the outbox: events still to deliver, the oldest one's age, and those given up", async () => {
    mock.method(Logger.prototype, 'warn', () => undefined); // Temporal cannot be read here
    mock.method(NotificationStore.prototype, 'outboxStats', () =>
      Promise.resolve({ pending: 3, oldestPendingSeconds: 42.5, givenUp: 1 }),
    );
    const scraped = parseMetrics((await apiMetrics().render()).body);
    assert.equal(sample(scraped, 'atelier_webhooks_pending', {}), 3);
    assert.equal(sample(scraped, 'atelier_webhooks_oldest_pending_age_seconds', {}), 42.5);
    assert.equal(sample(scraped, 'atelier_webhooks_given_up', {}), 1);
  });
});
