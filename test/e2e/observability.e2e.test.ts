import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/net/free-port';
import { call, getTask, submit, waitForEnd, type ErrorBody } from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { hasMetric, sample, scrape } from '../support/prometheus';
import { openSse, readAll, type SseEvent } from '../support/sse';
import { startStack, type Stack } from '../support/stack';
import { ROOT, TEST_AGENTS_FILE, testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

interface WorkerView {
  identity: string;
  kind: 'workflow' | 'agent';
  status: string;
  registered: boolean;
  host: string;
  pid: number;
  taskQueues: string[];
  startedAt: string | null;
  lastHeartbeatAt: string | null;
  lastPollAt: string | null;
  slots: { mode: string; total: number; used: number; free: number };
  runningTasks: { taskId: string; workflowId: string; attempt: number; agent: string; startedAt: string }[];
  completed: number;
  failed: number;
  cancelled: number;
  successRate: number | null;
  metricsUrl: string | null;
}

interface QueueView {
  name: string;
  type: 'workflow' | 'activity';
  backlog: number | null;
  backlogAgeSeconds: number | null;
  addRate: number | null;
  dispatchRate: number | null;
  pollers: number | null;
  error: string | null;
}

interface WorkersBody {
  workers: WorkerView[];
  queues: QueueView[];
}

async function listWorkers(stack: Stack): Promise<WorkersBody> {
  const res = await call(stack.baseUrl, 'GET', '/v1/workers');
  assert.equal(res.status, 200, res.text);
  return res.json as WorkersBody;
}

/** Workers of every stack of the test run share the database: each test looks at its own queue's. */
const runningOn = (body: WorkersBody, kind: WorkerView['kind'], queue: string): WorkerView | undefined =>
  body.workers.find((w) => w.kind === kind && w.registered && w.status === 'running' && w.taskQueues.includes(queue));

/** A second API process on the stack's database and Temporal: another replica behind the same load balancer. */
async function startApiReplica(
  env: NodeJS.ProcessEnv,
): Promise<{ baseUrl: string; stop: () => Promise<void>; kill: () => void }> {
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(process.execPath, [resolve(ROOT, 'dist/src/api/main.js')], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor(
    `the API replica to listen\n${output}`,
    async () => child.exitCode === null && (await fetch(`${baseUrl}/health/live`)).ok,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return {
    baseUrl,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

const logEvents = (events: SseEvent[]): { id: string; text: string; stream: string; attempt: number }[] =>
  events
    .filter((e) => e.event === 'log')
    .map((e) => {
      const data = JSON.parse(e.data) as { text: string; stream: string; attempt: number };
      return { id: e.id ?? '', text: data.text, stream: data.stream, attempt: data.attempt };
    });

/** Compares `run.attempt.seq` event ids. */
const idOrder = (a: string, b: string): number => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < 3; i += 1) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

describe('observability of the whole service: metrics, workers, live logs', () => {
  let stack: Stack;
  let replica: { baseUrl: string; stop: () => Promise<void> } | undefined;
  const workflowQueue = uniqueQueue('wf-obs');
  const agentQueue = uniqueQueue('agents-obs');
  const agentWorker = (body: WorkersBody): WorkerView | undefined => runningOn(body, 'agent', agentQueue);
  const workflowWorker = (body: WorkersBody): WorkerView | undefined => runningOn(body, 'workflow', workflowQueue);
  const SLOTS = 2;

  before(async () => {
    stack = await startStack({
      ATELIER_WORKFLOW_QUEUE: workflowQueue,
      ATELIER_AGENT_QUEUE: agentQueue,
      ATELIER_AGENT_SLOTS: String(SLOTS),
    });
  });

  after(async () => {
    try {
      await replica?.stop();
    } finally {
      if (stack) await stopStackCleanly(stack);
    }
  });

  describe('GET /metrics on the API', () => {
    it('is Prometheus text with tasks by status, queue backlogs and process metrics', async () => {
      const { contentType, samples } = await scrape(`${stack.baseUrl}/metrics`);
      assert.match(contentType, /^text\/plain/);
      assert.match(contentType, /version=0\.0\.4/);
      for (const status of ['queued', 'running', 'succeeded', 'failed', 'cancelled']) {
        assert.ok(samples.has(`atelier_tasks{status="${status}"}`), `atelier_tasks has status ${status}`);
      }
      assert.ok(samples.has(`atelier_task_queue_backlog{task_queue="${agentQueue}",type="activity"}`));
      assert.ok(samples.has(`atelier_task_queue_backlog{task_queue="${workflowQueue}",type="workflow"}`));
      assert.ok(sample(samples, 'atelier_task_queue_pollers', { task_queue: agentQueue }) >= 1);
      assert.equal(sample(samples, 'atelier_metrics_source_up', { source: 'postgres' }), 1);
      assert.equal(sample(samples, 'atelier_metrics_source_up', { source: 'temporal' }), 1);
      assert.ok(hasMetric(samples, 'process_cpu_user_seconds_total'), 'default process metrics');
      // Breakers are shared by every stack of the run: whatever its state, exactly one is current.
      assert.equal(sample(samples, 'atelier_agent_breaker_state', { agent: 'stand-in' }), 1);
      assert.ok(samples.has('atelier_agent_breaker_state{agent="stand-in",state="half_open"}'));
      assert.ok(samples.has('atelier_spend_today_usd'), 'spend today');
      assert.ok(samples.has('atelier_agent_spend_today_usd{agent="stand-in"}'), 'spend by agent');
    });

    it('counts submissions and tasks as they happen', async () => {
      const before = (await scrape(`${stack.baseUrl}/metrics`)).samples;
      const created = sample(before, 'atelier_task_submissions_total', { agent: 'stand-in', outcome: 'created' });
      const rejected = sample(before, 'atelier_task_submissions_total', { outcome: 'rejected' });
      const succeeded = sample(before, 'atelier_tasks', { status: 'succeeded' });
      const failed = sample(before, 'atelier_tasks_failed_by_class', { failure_class: 'nonzero_exit' });

      const ok = await submit(stack.baseUrl, { prompt: '@print counted' });
      const bad = await submit(stack.baseUrl, { prompt: '@exit 3', maxAttempts: 1 });
      const refused = await call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt: 'x', agent: 'no-such-agent' } });
      assert.equal(refused.status, 400);
      // Refused by the body parser, before any route: counted all the same.
      const unparsed = await call(stack.baseUrl, 'POST', '/v1/tasks', { rawBody: '{"prompt": ' });
      assert.equal(unparsed.status, 400);
      const unmatched = await call(stack.baseUrl, 'GET', '/v1/no-such-thing');
      assert.equal(unmatched.status, 404);
      await Promise.all([waitForEnd(stack.baseUrl, ok.id), waitForEnd(stack.baseUrl, bad.id)]);

      const after = await waitFor(
        'the task counts to move',
        async () => {
          const s = (await scrape(`${stack.baseUrl}/metrics`)).samples;
          return sample(s, 'atelier_tasks', { status: 'succeeded' }) >= succeeded + 1 &&
            sample(s, 'atelier_tasks_failed_by_class', { failure_class: 'nonzero_exit' }) >= failed + 1
            ? s
            : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 500 },
      );
      assert.equal(
        sample(after, 'atelier_task_submissions_total', { agent: 'stand-in', outcome: 'created' }),
        created + 2,
      );
      assert.equal(sample(after, 'atelier_task_submissions_total', { outcome: 'rejected' }), rejected + 1);
      assert.ok(
        sample(after, 'atelier_http_requests_total', { method: 'GET', route: '/v1/tasks/:id', status: '200' }) >= 2,
        'requests are counted by route pattern, not by path',
      );
      const counted = (route: string, status: string) =>
        sample(after, 'atelier_http_requests_total', { method: route === 'unmatched' ? 'GET' : 'POST', route, status });
      assert.ok(counted('other', '400') >= 1, 'a body the parser refused');
      assert.ok(counted('unmatched', '404') >= 1, 'a path no route matches');
    });

    it('stays open without a token, like the health checks', async () => {
      const res = await fetch(`${stack.baseUrl}/metrics`);
      assert.equal(res.status, 200);
    });
  });

  describe('GET /metrics on each worker', () => {
    it('serves agent durations by agent and failure class, slots, and the Temporal SDK metrics', async () => {
      const workers = await waitFor('both workers to register', async () => {
        const body = await listWorkers(stack);
        return agentWorker(body)?.metricsUrl && workflowWorker(body)?.metricsUrl ? body : undefined;
      });
      const agentUrl = agentWorker(workers)?.metricsUrl as string;
      const workflowUrl = workflowWorker(workers)?.metricsUrl as string;
      assert.match(agentUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

      const before = (await scrape(agentUrl)).samples;
      const labels = { agent: 'stand-in', failure_class: 'succeeded' };
      const runs = sample(before, 'atelier_agent_run_duration_seconds_count', labels);
      const exits = sample(before, 'atelier_agent_run_duration_seconds_count', {
        agent: 'stand-in',
        failure_class: 'nonzero_exit',
      });
      const waits = sample(before, 'atelier_agent_schedule_to_start_seconds_count', { agent: 'stand-in' });

      const slow = await submit(stack.baseUrl, { prompt: '@print slow\n@sleep 2' });
      await waitFor(
        'the running agent to take a slot',
        async () => {
          const s = (await scrape(agentUrl)).samples;
          return sample(s, 'atelier_worker_slots_used', { worker_kind: 'agent', task_queue: agentQueue }) === 1 &&
            sample(s, 'atelier_agent_runs_active', { agent: 'stand-in' }) === 1
            ? true
            : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      const failing = await submit(stack.baseUrl, { prompt: '@exit 4', maxAttempts: 1 });
      await Promise.all([waitForEnd(stack.baseUrl, slow.id), waitForEnd(stack.baseUrl, failing.id)]);

      // A task without a worktree is recorded as ended by its activity, which is counted when it returns.
      const after = await waitFor(
        'both attempts to be counted',
        async () => {
          const s = (await scrape(agentUrl)).samples;
          return sample(s, 'atelier_agent_runs_active', { agent: 'stand-in' }) === 0 ? s : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      assert.equal(sample(after, 'atelier_agent_run_duration_seconds_count', labels), runs + 1);
      assert.ok(sample(after, 'atelier_agent_run_duration_seconds_sum', labels) >= 2, 'the 2 s run is timed');
      assert.equal(
        sample(after, 'atelier_agent_run_duration_seconds_count', { agent: 'stand-in', failure_class: 'nonzero_exit' }),
        exits + 1,
      );
      assert.equal(sample(after, 'atelier_agent_schedule_to_start_seconds_count', { agent: 'stand-in' }), waits + 2);
      assert.equal(sample(after, 'atelier_worker_slots_used', { worker_kind: 'agent' }), 0);
      assert.equal(sample(after, 'atelier_worker_slots_total', { worker_kind: 'agent', slot_mode: 'fixed' }), SLOTS);
      assert.ok(hasMetric(after, 'temporal_worker_task_slots_available'), 'the SDK metrics are forwarded');
      assert.ok(hasMetric(after, 'temporal_activity_execution_latency_bucket'), 'the SDK activity latency');
      assert.ok(hasMetric(after, 'nodejs_heap_size_used_bytes'), 'process metrics');

      const wf = (await scrape(workflowUrl)).samples;
      assert.equal(sample(wf, 'atelier_worker_slots_total', { worker_kind: 'workflow' }), 40);
      assert.ok(hasMetric(wf, 'temporal_workflow_task_execution_latency_bucket'), 'the SDK workflow latency');
    });

    it('answers 404 on other paths', async () => {
      const url = agentWorker(await listWorkers(stack))?.metricsUrl as string;
      assert.equal((await fetch(url.replace(/\/metrics$/, '/other'))).status, 404);
    });
  });

  describe('GET /v1/workers', () => {
    it('lists each worker of the stack with its queue, last poll, slots and identity', async () => {
      const body = await waitFor('both workers with a poll', async () => {
        const b = await listWorkers(stack);
        return agentWorker(b)?.lastPollAt && workflowWorker(b)?.lastPollAt ? b : undefined;
      });
      const agent = agentWorker(body) as WorkerView;
      assert.match(agent.identity, /^agent-worker:\d+-[0-9a-f]+@/);
      assert.deepEqual(agent.taskQueues, [agentQueue]);
      assert.deepEqual(agent.slots, { mode: 'fixed', total: SLOTS, used: 0, free: SLOTS });
      assert.ok(agent.pid > 0);
      assert.ok(Date.now() - Date.parse(agent.lastPollAt as string) < 90_000, 'polled recently');
      assert.ok(Date.now() - Date.parse(agent.lastHeartbeatAt as string) < 30_000, 'heartbeat recently');
      const workflow = workflowWorker(body) as WorkerView;
      assert.match(workflow.identity, /^workflow-worker:\d+-[0-9a-f]+@/);
      assert.deepEqual(workflow.taskQueues, [workflowQueue]);
      assert.equal(workflow.slots.total, 40);

      const queue = body.queues.find((q) => q.name === agentQueue && q.type === 'activity');
      assert.ok(queue, JSON.stringify(body.queues));
      assert.equal(queue.error, null);
      assert.ok((queue.pollers ?? 0) >= 1);
      assert.equal(typeof queue.backlog, 'number');
      assert.ok(body.queues.some((q) => q.name === workflowQueue && q.type === 'workflow'));
    });

    it('shows a running task on its worker, then counts it', async () => {
      const before = agentWorker(await listWorkers(stack)) as WorkerView;
      const task = await submit(stack.baseUrl, { prompt: '@print on-a-worker\n@sleep 2' });
      const during = await waitFor('the task on the worker', async () => {
        const w = agentWorker(await listWorkers(stack));
        return w?.runningTasks.some((t) => t.taskId === task.id) ? w : undefined;
      });
      const running = during.runningTasks.find((t) => t.taskId === task.id);
      assert.equal(running?.workflowId, task.workflowId);
      assert.equal(running?.attempt, 1);
      assert.equal(running?.agent, 'stand-in');
      assert.equal(during.slots.used, 1);
      assert.equal(during.slots.free, SLOTS - 1);

      const failing = await submit(stack.baseUrl, { prompt: '@exit 5', maxAttempts: 1 });
      await Promise.all([waitForEnd(stack.baseUrl, task.id), waitForEnd(stack.baseUrl, failing.id)]);
      const after = await waitFor('the counts to move', async () => {
        const w = agentWorker(await listWorkers(stack));
        return w && w.completed >= before.completed + 1 && w.failed >= before.failed + 1 ? w : undefined;
      });
      assert.equal(after.completed, before.completed + 1);
      assert.equal(after.failed, before.failed + 1);
      assert.deepEqual(after.runningTasks, []);
      assert.equal(after.successRate, after.completed / (after.completed + after.failed));
    });

    it("reports the agent queue's backlog: waiting attempts, not running ones", async () => {
      // Temporal refreshes a queue's statistics every few seconds, so the waiting has to last longer.
      const tasks = await Promise.all(
        Array.from({ length: SLOTS + 2 }, (_, i) => submit(stack.baseUrl, { prompt: `@print queued-${i}\n@sleep 30` })),
      );
      const seen = await waitFor(
        'a backlog of 2 on the agent queue',
        async () => {
          const s = (await scrape(`${stack.baseUrl}/metrics`)).samples;
          const backlog = sample(s, 'atelier_task_queue_backlog', { task_queue: agentQueue, type: 'activity' });
          // Two attempts hold the slots and two wait: only the waiting ones are backlog.
          return backlog === 2 ? { backlog, s } : undefined;
        },
        { timeoutMs: 25_000, intervalMs: 250 },
      );
      assert.ok(sample(seen.s, 'atelier_task_queue_backlog_age_seconds', { task_queue: agentQueue }) > 0);
      const queue = (await listWorkers(stack)).queues.find((q) => q.name === agentQueue);
      assert.equal(queue?.backlog, 2);

      for (const t of tasks) assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${t.id}/cancel`)).status, 202);
      await Promise.all(tasks.map((t) => waitForEnd(stack.baseUrl, t.id, 30_000)));
      await waitFor(
        'the backlog to drain',
        async () => {
          const s = (await scrape(`${stack.baseUrl}/metrics`)).samples;
          return sample(s, 'atelier_task_queue_backlog', { task_queue: agentQueue, type: 'activity' }) === 0;
        },
        { timeoutMs: 25_000, intervalMs: 500 },
      );
    });

    it('refuses unknown or malformed query parameters', async () => {
      assert.equal((await call(stack.baseUrl, 'GET', '/v1/workers?all=maybe')).status, 400);
      assert.equal((await call(stack.baseUrl, 'GET', '/v1/workers?bogus=1')).status, 400);
      const all = await call(stack.baseUrl, 'GET', '/v1/workers?all=true');
      assert.equal(all.status, 200);
      assert.ok((all.json as WorkersBody).workers.length >= 2);
    });
  });

  describe('GET /v1/tasks/:id/logs?follow=1', () => {
    it("streams a running task's output live, in order, and ends when the task ends", async () => {
      const task = await submit(stack.baseUrl, {
        prompt: '@print line-1\n@sleep 1\n@stderr line-2\n@sleep 1\n@print line-3',
      });
      const stream = await openSse(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=1`);
      assert.equal(stream.status, 200);
      assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
      const first = await stream.next(15_000);
      assert.equal(first?.event, 'log');
      assert.deepEqual(JSON.parse(first?.data ?? '{}'), {
        run: 1,
        attempt: 1,
        seq: 0,
        stream: 'stdout',
        text: 'line-1\n',
      });
      assert.equal((await getTask(stack.baseUrl, task.id)).status, 'running', 'the first line came while it ran');

      const rest = await readAll(stream, 30_000);
      const logs = logEvents([first as SseEvent, ...rest]);
      assert.equal(logs.map((l) => l.text).join(''), 'line-1\nline-2\nline-3\n');
      assert.deepEqual(
        logs.map((l) => l.stream),
        ['stdout', 'stderr', 'stdout'],
      );
      const ids = logs.map((l) => l.id);
      assert.deepEqual([...ids].sort(idOrder), ids, 'ids increase');
      assert.equal(new Set(ids).size, ids.length, 'ids are unique');
      const end = rest[rest.length - 1];
      assert.equal(end?.event, 'end');
      assert.deepEqual(JSON.parse(end?.data ?? '{}'), { status: 'succeeded', run: 1 });
      assert.equal((await getTask(stack.baseUrl, task.id)).status, 'succeeded');
    });

    it('resumes after Last-Event-ID on another API replica, and replays a finished log', async () => {
      replica = await startApiReplica({
        TEMPORAL_ADDRESS: testEnv.temporalAddress,
        DATABASE_URL: testEnv.databaseUrl,
        ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
        ATELIER_WORKFLOW_QUEUE: workflowQueue,
        ATELIER_AGENT_QUEUE: agentQueue,
      });
      const task = await submit(stack.baseUrl, {
        prompt: '@print part-1\n@sleep 1\n@print part-2\n@sleep 1\n@print part-3',
      });
      const a = await openSse(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=true`);
      const first = await a.next(15_000);
      assert.equal(first?.event, 'log');
      await a.close();
      assert.ok(first?.id);

      const b = await openSse(`${replica.baseUrl}/v1/tasks/${task.id}/logs?follow=1`, { 'Last-Event-ID': first.id });
      assert.equal(b.status, 200);
      const resumed = await readAll(b, 30_000);
      const texts = logEvents(resumed).map((l) => l.text);
      assert.equal([JSON.parse(first.data).text as string, ...texts].join(''), 'part-1\npart-2\npart-3\n');
      assert.equal(resumed[resumed.length - 1]?.event, 'end');

      // After the end, a new follower gets the stored log and the end at once, from either replica.
      const again = await readAll(await openSse(`${replica.baseUrl}/v1/tasks/${task.id}/logs?follow=1`), 10_000);
      assert.equal(
        logEvents(again)
          .map((l) => l.text)
          .join(''),
        'part-1\npart-2\npart-3\n',
      );
      assert.deepEqual(JSON.parse(again[again.length - 1]?.data ?? '{}'), { status: 'succeeded', run: 1 });
    });

    it('ends with the failure of a failed task, and follows one attempt with ?attempt=N', async () => {
      const task = await submit(stack.baseUrl, { prompt: '@print before-exit\n@exit 2', maxAttempts: 2 });
      const events = await readAll(await openSse(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=1`), 30_000);
      const logs = logEvents(events);
      assert.deepEqual(
        logs.map((l) => [l.attempt, l.text]),
        [
          [1, 'before-exit\n'],
          [2, 'before-exit\n'],
        ],
      );
      assert.deepEqual(JSON.parse(events[events.length - 1]?.data ?? '{}'), { status: 'failed', run: 1 });
      const second = await readAll(
        await openSse(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=1&attempt=2`),
        10_000,
      );
      assert.deepEqual(
        logEvents(second).map((l) => l.attempt),
        [2],
      );
    });

    it('ends a follower of one attempt once that attempt has ended, while the next one runs', async () => {
      const counter = join(tmpdir(), `atelier-fail-until-${randomUUID()}`);
      const task = await submit(stack.baseUrl, {
        prompt: `@print attempt-output\n@fail-until 2 ${counter}\n@sleep 600`,
        maxAttempts: 2,
      });
      try {
        await waitFor('the second attempt to run', async () => {
          const t = (await getTask(stack.baseUrl, task.id)) as unknown as { attempts: unknown[]; status: string };
          return t.status === 'running' && t.attempts.length === 2;
        });
        const events = await readAll(
          await openSse(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=1&attempt=1`),
          15_000,
        );
        assert.deepEqual(
          // Its two streams, in the order they reached the worker: compared as a set.
          logEvents(events)
            .map((l) => [l.attempt, l.stream, l.text])
            .sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
          [
            [1, 'stderr', 'failing run 1 of 1\n'],
            [1, 'stdout', 'attempt-output\n'],
          ],
        );
        const end = events[events.length - 1];
        assert.equal(end?.event, 'end', 'the stream ended');
        assert.deepEqual(JSON.parse(end?.data ?? '{}'), { status: 'attempt_ended', run: 1, attempt: 1 });
      } finally {
        await call(stack.baseUrl, 'POST', `/v1/tasks/${task.id}/cancel`);
        rmSync(counter, { force: true });
      }
    });

    it('keeps a quiet stream open with a keep-alive comment 15 s after the last thing it sent', async () => {
      // LISTEN is up here, so the follower wakes every 10 s when nothing happens: the keep-alive is
      // due between two such wakes, not at the second one.
      const task = await submit(stack.baseUrl, { prompt: '@sleep 60' });
      const abort = new AbortController();
      try {
        const res = await fetch(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=1`, { signal: abort.signal });
        const opened = Date.now();
        const reader = res.body?.getReader();
        assert.ok(reader);
        let text = '';
        const decoder = new TextDecoder();
        const deadline = opened + 25_000;
        while (!text.includes(': keep-alive') && Date.now() < deadline) {
          const read = await Promise.race([
            reader.read(),
            new Promise<undefined>((r) => setTimeout(() => r(undefined), deadline - Date.now()).unref()),
          ]);
          if (!read || read.done) break;
          text += decoder.decode(read.value, { stream: true });
        }
        const after = Date.now() - opened;
        assert.ok(text.includes(': keep-alive'), `a keep-alive within 25 s: ${JSON.stringify(text)}`);
        assert.ok(after >= 14_500 && after < 18_000, `the first keep-alive came ${after} ms after the stream opened`);
      } finally {
        abort.abort();
        await call(stack.baseUrl, 'POST', `/v1/tasks/${task.id}/cancel`);
      }
    });

    it('refuses a bad Last-Event-ID or follow value, and unknown tasks, as JSON', async () => {
      const { id } = await submit(stack.baseUrl, { prompt: 'short' });
      const badId = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs?follow=1`, {
        headers: { 'last-event-id': 'not-an-id' },
      });
      assert.equal(badId.status, 400, badId.text);
      assert.match(badId.headers.get('content-type') ?? '', /^application\/json/);
      // Well formed, but no event the stream sent: a run the task never had, an attempt it never ran.
      for (const lastEventId of ['999.1.0', '1.99.0']) {
        const never = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs?follow=1`, {
          headers: { 'last-event-id': lastEventId },
        });
        assert.equal(never.status, 400, `${lastEventId}: ${never.text}`);
        assert.deepEqual(
          (never.json as ErrorBody).fields?.map((f) => f.field),
          ['Last-Event-ID'],
        );
      }
      assert.equal((await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs?follow=yes`)).status, 400);
      const missing = await call(stack.baseUrl, 'GET', '/v1/tasks/6b164171-b029-4597-b729-14ee9d951aec/logs?follow=1');
      assert.equal(missing.status, 404);
      assert.match(missing.headers.get('content-type') ?? '', /^application\/json/);
    });

    it('a replica stopping (SIGTERM) ends its open streams and exits; the follower resumes on another', async () => {
      const leaving = await startApiReplica({
        TEMPORAL_ADDRESS: testEnv.temporalAddress,
        DATABASE_URL: testEnv.databaseUrl,
        ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
        ATELIER_WORKFLOW_QUEUE: workflowQueue,
        ATELIER_AGENT_QUEUE: agentQueue,
      });
      const task = await submit(stack.baseUrl, { prompt: '@print before-shutdown\n@hang' });
      try {
        const followed = await openSse(`${leaving.baseUrl}/v1/tasks/${task.id}/logs?follow=1`);
        const first = await followed.next(15_000);
        assert.equal(first?.event, 'log');
        assert.ok(first?.id);
        let timer: NodeJS.Timeout | undefined;
        const stopped = await Promise.race([
          leaving.stop().then(() => 'stopped'),
          new Promise((r) => (timer = setTimeout(() => r('still running'), 15_000))),
        ]);
        clearTimeout(timer);
        assert.equal(stopped, 'stopped', 'the replica exits within 15 s of SIGTERM with a stream open');
        assert.equal(await followed.next(5_000), undefined, 'the stream was closed');

        const resumed = await openSse(`${stack.baseUrl}/v1/tasks/${task.id}/logs?follow=1`, {
          'Last-Event-ID': first.id,
        });
        const cancel = await call(stack.baseUrl, 'POST', `/v1/tasks/${task.id}/cancel`);
        assert.equal(cancel.status < 300, true, cancel.text);
        const rest = await readAll(resumed, 30_000);
        assert.deepEqual(logEvents(rest), [], 'nothing is sent twice');
        assert.equal(JSON.parse(rest[rest.length - 1]?.data ?? '{}').status, 'cancelled');
      } finally {
        leaving.kill();
        await call(stack.baseUrl, 'POST', `/v1/tasks/${task.id}/cancel`);
      }
    });

    it('leaves the plain text endpoint as it was', async () => {
      const { id } = await submit(stack.baseUrl, { prompt: '@print plain' });
      await waitForEnd(stack.baseUrl, id);
      for (const query of ['', '?follow=0', '?follow=false']) {
        const res = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs${query}`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
        assert.equal(res.text, 'plain\n');
      }
    });
  });
});

describe('an agent worker with ATELIER_AGENT_SLOTS=auto', () => {
  let stack: Stack;
  const agentQueue = uniqueQueue('agents-auto');

  before(async () => {
    stack = await startStack({
      ATELIER_AGENT_SLOTS: 'auto',
      ATELIER_AGENT_MAX_SLOTS: '3',
      ATELIER_AGENT_QUEUE: agentQueue,
    });
  });

  after(async () => {
    if (stack) await stopStackCleanly(stack);
  });

  it("sizes its slots with Temporal's resource-based tuner and runs tasks", async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@print tuned' });
    const task = await waitForEnd(stack.baseUrl, id);
    assert.equal(task.status, 'succeeded', JSON.stringify(task));
    const worker = await waitFor('the agent worker to register', async () =>
      runningOn(await listWorkers(stack), 'agent', agentQueue),
    );
    assert.equal(worker.slots.mode, 'resource-based');
    assert.equal(worker.slots.total, 3);
    const samples = (await scrape(worker.metricsUrl as string)).samples;
    assert.equal(sample(samples, 'atelier_worker_slots_total', { slot_mode: 'resource-based' }), 3);
  });
});
