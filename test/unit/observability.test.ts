import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure, log } from '@temporalio/activity';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Registry } from 'prom-client';
import { ConfigError, loadConfig } from '../../src/config/env';
import { ActivityTracker, failureClassOf, taskIdsOf } from '../../src/observability/activity-tracker';
import { startMetricsServer } from '../../src/observability/metrics-server';
import { agentSlots } from '../../src/workers/agent-slots';
import { parseMetrics, sample } from '../support/prometheus';

function refusal(env: NodeJS.ProcessEnv, variable: string): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const line = err.message.split('\n').find((l) => l.trim().startsWith(`${variable}:`));
    assert.ok(line, `the error names ${variable}: ${err.message}`);
    return line;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
}

describe('observability settings', () => {
  it('defaults the worker metrics ports to 9464 (workflow) and 9465 (agent)', () => {
    const config = loadConfig({});
    assert.equal(config.ATELIER_WORKFLOW_WORKER_METRICS_PORT, 9464);
    assert.equal(config.ATELIER_AGENT_WORKER_METRICS_PORT, 9465);
  });

  it('takes a port, 0 for any free port, or off', () => {
    assert.equal(loadConfig({ ATELIER_AGENT_WORKER_METRICS_PORT: '0' }).ATELIER_AGENT_WORKER_METRICS_PORT, 0);
    assert.equal(loadConfig({ ATELIER_AGENT_WORKER_METRICS_PORT: '19465' }).ATELIER_AGENT_WORKER_METRICS_PORT, 19465);
    assert.equal(
      loadConfig({ ATELIER_WORKFLOW_WORKER_METRICS_PORT: 'OFF' }).ATELIER_WORKFLOW_WORKER_METRICS_PORT,
      'off',
    );
    assert.match(
      refusal({ ATELIER_AGENT_WORKER_METRICS_PORT: '70000' }, 'ATELIER_AGENT_WORKER_METRICS_PORT'),
      /0 to 65535/,
    );
    assert.match(refusal({ ATELIER_WORKFLOW_WORKER_METRICS_PORT: 'x' }, 'ATELIER_WORKFLOW_WORKER_METRICS_PORT'), /off/);
  });

  it('takes ATELIER_AGENT_SLOTS=auto with CPU and memory targets', () => {
    const config = loadConfig({ ATELIER_AGENT_SLOTS: 'auto', ATELIER_AGENT_TARGET_CPU: '0.6' });
    assert.equal(config.ATELIER_AGENT_SLOTS, 'auto');
    assert.equal(config.ATELIER_AGENT_TARGET_CPU, 0.6);
    assert.equal(config.ATELIER_AGENT_TARGET_MEMORY, 0.8);
    assert.equal(config.ATELIER_AGENT_MAX_SLOTS, 50);
    assert.match(refusal({ ATELIER_AGENT_SLOTS: 'many' }, 'ATELIER_AGENT_SLOTS'), /auto/);
    assert.match(refusal({ ATELIER_AGENT_TARGET_CPU: '0' }, 'ATELIER_AGENT_TARGET_CPU'), />0/);
    assert.match(refusal({ ATELIER_AGENT_TARGET_MEMORY: '1.5' }, 'ATELIER_AGENT_TARGET_MEMORY'), /<=1/);
  });
});

describe('agentSlots', () => {
  it('gives a fixed number of agent slots', () => {
    assert.deepEqual(agentSlots(loadConfig({ ATELIER_AGENT_SLOTS: '6' })), { mode: 'fixed', total: 6 });
  });

  it("gives auto to Temporal's resource-based tuner, bounded by the maximum", () => {
    const slots = agentSlots(
      loadConfig({
        ATELIER_AGENT_SLOTS: 'auto',
        ATELIER_AGENT_TARGET_CPU: '0.7',
        ATELIER_AGENT_TARGET_MEMORY: '0.75',
        ATELIER_AGENT_MAX_SLOTS: '12',
      }),
    );
    assert.deepEqual(slots, {
      mode: 'resource-based',
      total: 12,
      targets: { targetCpuUsage: 0.7, targetMemoryUsage: 0.75 },
    });
  });
});

/** A logger that keeps what it is given, for assertions. */
function recordingLogger(): Logger & { lines: { level: LogLevel; message: string; meta: LogMetadata }[] } {
  const lines: { level: LogLevel; message: string; meta: LogMetadata }[] = [];
  const at =
    (level: LogLevel) =>
    (message: string, meta: LogMetadata = {}): void => {
      lines.push({ level, message, meta });
    };
  return {
    lines,
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}

describe('activity tracking', () => {
  it('maps an activity outcome to its failure class', () => {
    assert.equal(failureClassOf(ApplicationFailure.create({ type: 'nonzero_exit', message: 'x' })), 'nonzero_exit');
    assert.equal(failureClassOf(ApplicationFailure.create({ type: 'timeout', message: 'x' })), 'timeout');
    assert.equal(failureClassOf(new CancelledFailure('cancelled')), 'cancelled');
    assert.equal(failureClassOf(ApplicationFailure.create({ type: 'SomethingElse', message: 'x' })), 'crash');
    assert.equal(failureClassOf(new Error('boom')), 'crash');
  });

  it('finds the task id in the argument, or else in the workflow id', () => {
    const id = '6b164171-b029-4597-b729-14ee9d951aec';
    assert.deepEqual(taskIdsOf([{ taskId: id, attempt: 2, agent: 'claude' }], 'other'), {
      taskId: id,
      attempt: 2,
      agent: 'claude',
    });
    assert.deepEqual(taskIdsOf([], `task-${id}`), { taskId: id, attempt: undefined, agent: undefined });
    assert.deepEqual(taskIdsOf(['text'], undefined), { taskId: undefined, attempt: undefined, agent: undefined });
  });

  it('times agent attempts by agent and failure class, and lists them while they run', async () => {
    const registry = new Registry();
    let changes = 0;
    const tracker = new ActivityTracker(registry, () => (changes += 1));
    const logger = recordingLogger();
    const env = new MockActivityEnvironment(
      { activityType: 'runAgent', currentAttemptScheduledTimestampMs: Date.now() - 1500 },
      { interceptors: [tracker.interceptors], logger },
    );
    let during: ReturnType<ActivityTracker['snapshot']> | undefined;
    const input = { taskId: 'a1b2', attempt: 1, agent: 'stand-in', timeoutSeconds: 5 };
    await env.run(async () => {
      during = tracker.snapshot();
      log.info('from the activity');
      return { exitCode: 0 };
    }, input);
    await assert.rejects(
      env.run(async () => {
        throw ApplicationFailure.create({ type: 'nonzero_exit', message: 'exit 3' });
      }, input),
    );
    assert.equal(during?.running.length, 1);
    assert.equal(during?.running[0]?.taskId, 'a1b2');
    assert.equal(during?.running[0]?.agent, 'stand-in');
    assert.equal(changes, 4, 'each start and each end is reported');
    const own = logger.lines.find((l) => l.message === 'from the activity');
    assert.equal(own?.meta.taskId, 'a1b2', "the activity's own log lines carry the task id");
    assert.equal(own?.meta.attempt, 1);
    const finished = logger.lines.filter((l) => l.message === 'agent attempt finished').map((l) => l.meta);
    assert.deepEqual(
      finished.map((m) => [m.taskId, m.agent, m.failureClass]),
      [
        ['a1b2', 'stand-in', 'succeeded'],
        ['a1b2', 'stand-in', 'nonzero_exit'],
      ],
    );
    const after = tracker.snapshot();
    assert.deepEqual([after.running, after.completed, after.failed, after.cancelled], [[], 1, 1, 0]);

    const samples = parseMetrics(await registry.metrics());
    const ok = { agent: 'stand-in', failure_class: 'succeeded' };
    assert.equal(sample(samples, 'atelier_agent_run_duration_seconds_count', ok), 1);
    assert.equal(
      sample(samples, 'atelier_agent_run_duration_seconds_count', { agent: 'stand-in', failure_class: 'nonzero_exit' }),
      1,
    );
    assert.equal(sample(samples, 'atelier_agent_schedule_to_start_seconds_count', { agent: 'stand-in' }), 2);
    assert.ok(sample(samples, 'atelier_agent_schedule_to_start_seconds_sum', { agent: 'stand-in' }) >= 3);
  });

  it('neither times nor counts an attempt held back before its agent started (a breaker, a limit, a budget)', async () => {
    const registry = new Registry();
    const tracker = new ActivityTracker(registry);
    const logger = recordingLogger();
    const env = new MockActivityEnvironment(
      { activityType: 'runAgent', currentAttemptScheduledTimestampMs: Date.now() },
      { interceptors: [tracker.interceptors], logger },
    );
    const input = { taskId: 'a1b2', attempt: 1, agent: 'stand-in', timeoutSeconds: 5 };
    await env.run(async () => ({ exitCode: 0, waiting: { kind: 'breaker_open', until: null } }), input);
    assert.deepEqual(tracker.snapshot(), { running: [], completed: 0, failed: 0, cancelled: 0 });
    const samples = parseMetrics(await registry.metrics());
    assert.equal(sample(samples, 'atelier_agent_run_duration_seconds_count'), 0);
    assert.deepEqual(
      logger.lines.filter((l) => l.message.startsWith('agent attempt')).map((l) => l.message),
      ['agent attempt started', 'agent attempt held back'],
    );
  });

  it('counts other activities without timing them as agents', async () => {
    const registry = new Registry();
    const tracker = new ActivityTracker(registry);
    const env = new MockActivityEnvironment(
      { activityType: 'recordTaskOutcome' },
      { interceptors: [tracker.interceptors], logger: recordingLogger() },
    );
    await env.run(async () => undefined, { taskId: 'x' });
    assert.deepEqual(tracker.snapshot(), { running: [], completed: 1, failed: 0, cancelled: 0 });
    const samples = parseMetrics(await registry.metrics());
    assert.equal(sample(samples, 'atelier_agent_run_duration_seconds_count'), 0);
  });
});

describe('a worker metrics endpoint', () => {
  it('serves GET /metrics, 404 elsewhere, and 500 when rendering fails', async () => {
    let fail = false;
    const errors: string[] = [];
    const server = await startMetricsServer(
      {
        host: '127.0.0.1',
        port: 0,
        render: async () => {
          if (fail) throw new Error('broken');
          return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'up 1\n' };
        },
        onError: (err) => errors.push(err.message),
        ready: () => !fail,
      },
      'machine',
    );
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const ok = await fetch(server.url);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'up 1\n');
      assert.equal((await fetch(server.url.replace('/metrics', '/'))).status, 404);
      assert.equal((await fetch(server.url.replace('/metrics', '/health/live'))).status, 200);
      assert.equal((await fetch(server.url.replace('/metrics', '/health/ready'))).status, 200);
      fail = true;
      assert.equal((await fetch(server.url)).status, 500);
      assert.equal((await fetch(server.url.replace('/metrics', '/health/ready'))).status, 503);
      assert.equal((await fetch(server.url.replace('/metrics', '/health/live'))).status, 200);
      assert.deepEqual(errors, ['broken']);
    } finally {
      await server.close();
    }
  });

  it("on loopback, refuses a call for another site's page (Host or Origin), and serves this machine's", async () => {
    const listen = (host: string) =>
      startMetricsServer(
        {
          host,
          port: 0,
          render: async () => ({ contentType: 'text/plain', body: 'up 1\n' }),
          onError: () => undefined,
          ready: () => true,
        },
        'machine',
      );
    /** A GET with headers fetch would not send as given (Host). */
    const get = (port: number, path: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    const [loopback, everywhere] = [await listen('127.0.0.1'), await listen('0.0.0.0')];
    try {
      for (const path of ['/metrics', '/health/live', '/health/ready']) {
        assert.equal(await get(loopback.port, path, { host: `evil.example:${loopback.port}` }), 403, path);
        assert.equal(await get(loopback.port, path, { origin: 'https://evil.example' }), 403, path);
        assert.equal(await get(loopback.port, path, { host: `127.0.0.1:${loopback.port}` }), 200, path);
        assert.equal(await get(loopback.port, path, { host: `localhost:${loopback.port}` }), 200, path);
      }
      // On every address the Host is whatever name reaches the machine: not checked.
      assert.equal(await get(everywhere.port, '/metrics', { host: `worker-7.example:${everywhere.port}` }), 200);
    } finally {
      await Promise.all([loopback.close(), everywhere.close()]);
    }
  });

  it('names the machine in its URL when it listens on every address', async () => {
    const server = await startMetricsServer(
      {
        host: '0.0.0.0',
        port: 0,
        render: async () => ({ contentType: 'text/plain', body: '' }),
        onError: () => undefined,
        ready: () => true,
      },
      'worker-7',
    );
    try {
      assert.match(server.url, /^http:\/\/worker-7:\d+\/metrics$/);
    } finally {
      await server.close();
    }
  });
});
