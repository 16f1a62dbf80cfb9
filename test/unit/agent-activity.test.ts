import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { ActivityCancellationDetails, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { Pool } from 'pg';
import { createAgentActivities, type AgentActivityDeps } from '../../activities';
import { FRESH_START_MS } from '../../activities/agent/agent.activities';
import { fitToStartToClose } from '../../activities/agent/fit-to-start-to-close';
import { loadAgentsFile } from '../../src/config/agents-file';
import { AdmissionStore } from '../../src/store/admission-store';
import { AttemptStore } from '../../src/store/attempt-store';
import { AttemptUsageStore } from '../../src/store/attempt-usage-store';
import type { RunAgentInput, RunAgentOutput } from '../../workflows/definitions';
import { attemptRows, insertTask, storedLogs } from '../support/task-rows';
import { TEST_AGENTS_FILE, testEnv } from '../support/test-env';
import { processAlive, waitFor, within } from '../support/wait-for';

/** A heartbeat's details: `starting` alone while the attempt is being opened. */
interface Progress {
  starting?: boolean;
  elapsedMs?: number;
  outputBytes?: number;
  lastLine?: string;
}

const WORKER = 'agent-activity-test';

/**
 * The SDK logs every failed activity as a warning; here failing is what most tests ask for. The
 * start-to-close timeout leaves these tests' agents their whole time limit and kill grace.
 */
const mockEnvironment = (
  startToCloseTimeoutMs = 10 * 60_000,
  logger = new DefaultLogger('ERROR'),
): MockActivityEnvironment => new MockActivityEnvironment({ startToCloseTimeoutMs }, { logger });

/** Waits until the stand-in agent has written its pid to `file`, and returns it. */
const agentStarted = (file: string): Promise<number> =>
  waitFor('the agent to start', () => (existsSync(file) ? Number(readFileSync(file, 'utf8')) || undefined : undefined));

/** Asserts that `promise` rejects with an ApplicationFailure of `type` and the given retryability. */
async function rejectsWithType(
  promise: Promise<unknown>,
  type: string,
  nonRetryable: boolean,
): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => assert.fail(`expected a ${type} failure, the activity succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, type);
  assert.equal(err.nonRetryable, nonRetryable);
  return err;
}

describe('runAgent activity', { timeout: 30_000 }, () => {
  let pool: Pool;
  let dir: string;
  let runAgent: (input: RunAgentInput) => Promise<unknown>;

  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 4 });
    dir = mkdtempSync(join(tmpdir(), 'atelier-agent-activity-'));
    ({ runAgent } = activities());
  });
  after(async () => {
    await pool.end();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The agent activities on the test database, with `deps` in place of the defaults. */
  const activities = (deps: Partial<AgentActivityDeps> = {}) =>
    createAgentActivities({
      agents: loadAgentsFile(TEST_AGENTS_FILE),
      store: new AttemptStore(pool),
      admission: new AdmissionStore(pool),
      usage: new AttemptUsageStore(pool),
      workerIdentity: WORKER,
      env: process.env,
      heartbeatIntervalMs: 50,
      ...deps,
    });

  const input = (taskId: string, fields: Partial<RunAgentInput> = {}): RunAgentInput => ({
    taskId,
    attempt: 1,
    agent: 'stand-in',
    timeoutSeconds: 20,
    ...fields,
  });

  it('runs the agent, heartbeats its progress and stores the attempt and its output', async () => {
    // The agent waits after its first line until a heartbeat has reported it, however slow the machine.
    const go = join(dir, `go-${randomUUID()}`);
    const taskId = await insertTask(pool, {
      prompt: `@print first line\n@wait-file ${go}\n@stderr a warning\n@print second line`,
    });
    const env = mockEnvironment();
    const heartbeats: Progress[] = [];
    env.on('heartbeat', (details: Progress) => {
      heartbeats.push(details);
      if (details.lastLine === 'first line') writeFileSync(go, '');
    });

    const result = await env.run(runAgent, input(taskId));

    assert.deepEqual(result, {
      exitCode: 0,
      outputBytes: 'first line\na warning\nsecond line\n'.length,
      outputTail: 'first line\nsecond line\n',
      agent: 'stand-in',
    });
    // While the agent waited after its first line, heartbeats carried that line and its byte count.
    assert.ok(
      heartbeats.some((h) => h.lastLine === 'first line' && h.outputBytes === 'first line\n'.length),
      `no heartbeat reported the first line: ${JSON.stringify(heartbeats)}`,
    );
    // (The heartbeats sent while the attempt is being opened say only `starting`.)
    const elapsed = heartbeats.flatMap((h) => (h.elapsedMs === undefined ? [] : [h.elapsedMs]));
    assert.deepEqual(
      elapsed,
      [...elapsed].sort((a, b) => a - b),
      'elapsed time never goes back',
    );

    const [attempt, ...more] = await attemptRows(pool, taskId);
    assert.equal(more.length, 0);
    assert.equal(attempt?.number, 1);
    assert.equal(attempt?.worker, WORKER);
    assert.equal(attempt?.exit_code, 0);
    assert.equal(attempt?.failure_class, 'succeeded');
    assert.equal(attempt?.output, 'first line\nsecond line\n');
    assert.ok(attempt?.finished_at instanceof Date);
    assert.deepEqual(await storedLogs(pool, taskId, 1), { stdout: 'first line\nsecond line\n', stderr: 'a warning\n' });
  });

  it('stores and answers the end of an output longer than it keeps, where a text agent prints its last words', async () => {
    const taskId = await insertTask(pool, { prompt: '@bytes 9000000\n@print DONE' });
    const result = await mockEnvironment().run(runAgent, input(taskId));
    const { outputBytes, outputTail } = result as RunAgentOutput;
    assert.equal(outputBytes, 9_000_000 + 'DONE\n'.length);
    assert.equal(outputTail, `${'x'.repeat(2048 - 'DONE\n'.length)}DONE\n`);
    const output = (await attemptRows(pool, taskId))[0]?.output ?? '';
    assert.equal(output.length, 8 * 1024 * 1024);
    assert.ok(output.endsWith('xDONE\n'), `the stored output ends with ${JSON.stringify(output.slice(-20))}`);
  });

  it('kills an agent that ignores SIGTERM before Temporal times its attempt out, whatever its kill grace', async () => {
    const agents = loadAgentsFile(TEST_AGENTS_FILE);
    const standIn = agents.agents['stand-in'] as (typeof agents.agents)[string];
    const slowToDie = { ...standIn, killGraceSeconds: 600 };
    const { runAgent: run } = activities({
      agents: { ...agents, agents: { ...agents.agents, 'slow-to-die': slowToDie } },
    });
    const warnings: LogEntry[] = [];
    const logger = new DefaultLogger('WARN', (entry) => warnings.push(entry));
    // The attempt's start-to-close timeout leaves a few seconds for the grace after the agent's 1 s time limit.
    const startToCloseMs = 8_000;
    const graceLeft = fitToStartToClose({ timeoutMs: 1_000, killGraceMs: 600_000 }, startToCloseMs).killGraceMs;
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const taskId = await insertTask(pool, { prompt: `@ignore-term\n@pidfile ${pidFile}\n@hang`, agent: 'slow-to-die' });
    const running = mockEnvironment(startToCloseMs, logger).run(
      run,
      input(taskId, { agent: 'slow-to-die', timeoutSeconds: 1 }),
    );
    running.catch(() => undefined);
    const pid = await agentStarted(pidFile);
    try {
      await within('the attempt', startToCloseMs, rejectsWithType(running, 'timeout', false));
      assert.equal(processAlive(pid), false, 'the agent outlived its attempt');
    } finally {
      if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    // Said once for the agent, not for each of its attempts.
    const next = await insertTask(pool, { prompt: '@print done', agent: 'slow-to-die' });
    await mockEnvironment(startToCloseMs, logger).run(run, input(next, { agent: 'slow-to-die', timeoutSeconds: 1 }));
    const cuts = warnings.filter((w) => /kill grace is cut/.test(w.message));
    assert.equal(cuts.length, 1, JSON.stringify(warnings.map((w) => w.message)));
    assert.equal(cuts[0]?.meta?.agent, 'slow-to-die');
    assert.equal(cuts[0]?.meta?.killGraceSeconds, 600);
    assert.ok(graceLeft < 600_000);
    assert.ok(Number(cuts[0]?.meta?.killGraceMs) <= graceLeft, `grace used: ${String(cuts[0]?.meta?.killGraceMs)} ms`);
  });

  describe("with a secret in the agent's environment", () => {
    // It begins with "xx", which `@bytes 2` prints last: held back as its possible start until the agent exits.
    const SECRET = 'xx-test-8f3a9c1e7b2d4605';
    /** The agent activities, the worker holding SECRET in ATELIER_TEST_KEY, which `agent` passes through. */
    const withSecret = (agent: string) => {
      const agents = loadAgentsFile(TEST_AGENTS_FILE);
      const profile = agents.agents[agent] as (typeof agents.agents)[string];
      const passing = { ...profile, envPassthrough: [...profile.envPassthrough, 'ATELIER_TEST_KEY'] };
      return activities({
        agents: { ...agents, agents: { ...agents.agents, [agent]: passing } },
        env: { ...process.env, ATELIER_TEST_KEY: SECRET },
      });
    };

    it('masks it in what the agent prints: stored logs, heartbeats, the attempt and its result', async () => {
      const taskId = await insertTask(pool, {
        prompt: `@print before\n@echo-env ATELIER_TEST_KEY\n@sleep 0.5\n@stderr key ${SECRET} refused\n@print after\n@bytes 2`,
      });
      const env = mockEnvironment();
      const heartbeats: Progress[] = [];
      env.on('heartbeat', (details: Progress) => heartbeats.push(details));

      const result = await env.run(withSecret('stand-in').runAgent, input(taskId));

      const stdout = 'before\nATELIER_TEST_KEY=[redacted:ATELIER_TEST_KEY]\nafter\nxx';
      const stderr = 'key [redacted:ATELIER_TEST_KEY] refused\n';
      const printed = `before\nATELIER_TEST_KEY=${SECRET}\nkey ${SECRET} refused\nafter\nxx`;
      assert.deepEqual(result, {
        exitCode: 0,
        outputBytes: printed.length,
        outputTail: stdout,
        agent: 'stand-in',
      });
      assert.deepEqual(await storedLogs(pool, taskId, 1), { stdout, stderr });
      assert.equal((await attemptRows(pool, taskId))[0]?.output, stdout);
      // While the agent slept after printing the key, heartbeats carried that line, masked.
      assert.ok(
        heartbeats.some((h) => h.lastLine === 'ATELIER_TEST_KEY=[redacted:ATELIER_TEST_KEY]'),
        `no heartbeat reported the masked line: ${JSON.stringify(heartbeats)}`,
      );
      assert.ok(!JSON.stringify(heartbeats).includes(SECRET), 'a heartbeat carried the secret');
    });

    it("masks it inside an agent's JSON lines, which still parse, and in the failure its output describes", async () => {
      const jsonTask = await insertTask(pool, { prompt: '@echo-env ATELIER_TEST_KEY', agent: 'claude-stream' });
      const result = await mockEnvironment().run(
        withSecret('claude-stream').runAgent,
        input(jsonTask, { agent: 'claude-stream' }),
      );
      assert.equal((result as { outputTail: string }).outputTail, 'ATELIER_TEST_KEY=[redacted:ATELIER_TEST_KEY]');

      // Aider reports a failed API call in words, which become the failure's message.
      const failedTask = await insertTask(pool, {
        prompt: `@print litellm.AuthenticationError: invalid x-api-key ${SECRET}\n@no-final`,
        agent: 'aider',
      });
      const err = await rejectsWithType(
        mockEnvironment().run(withSecret('aider').runAgent, input(failedTask, { agent: 'aider' })),
        'auth',
        false,
      );
      assert.equal(err.message, 'litellm.AuthenticationError: invalid x-api-key [redacted:ATELIER_TEST_KEY]');
      assert.equal((await attemptRows(pool, failedTask))[0]?.error, err.message);
    });
  });

  it('heartbeats right before an agent that starts late, so a cut-off worker stops it in time, and not otherwise', async () => {
    const heartbeatsOf = async (startDelayMs: number): Promise<unknown[]> => {
      const { runAgent: run } = activities({
        heartbeatIntervalMs: 60_000,
        cutOff: {
          signal: new AbortController().signal,
          killGraceMs: () => 5_000,
          confirm: () => new Promise((resolve) => setTimeout(resolve, startDelayMs)),
        },
      });
      const env = mockEnvironment();
      const heartbeats: unknown[] = [];
      env.on('heartbeat', (details: unknown) => heartbeats.push(details));
      await env.run(run, input(await insertTask(pool, { prompt: '@print hi' })));
      return heartbeats;
    };
    assert.deepEqual(await heartbeatsOf(FRESH_START_MS + 100), [{ elapsedMs: 0, outputBytes: 0, lastLine: '' }]);
    // A loaded machine may take longer than FRESH_START_MS to get from the activity's start to its
    // agent's, with no delay of the test's: there the activity's clock runs ten times slower.
    const real = performance.now.bind(performance);
    const from = real();
    const slowClock = mock.method(performance, 'now', () => from + (real() - from) / 10);
    try {
      assert.deepEqual(await heartbeatsOf(0), [], "the activity's start stands in for a heartbeat");
    } finally {
      slowClock.mock.restore();
    }
  });

  it('with deferSuccess, commits the worktree before closing the attempt and leaves ending the task to the workflow', async () => {
    const taskId = await insertTask(pool, { prompt: '@print done' });
    const saved: { path: string; task: string; agent: string; attemptClosed: boolean }[] = [];
    const { runAgent: run } = activities({
      saveWork: async (path, task, agent) => {
        const rows = await attemptRows(pool, taskId);
        saved.push({ path, task, agent, attemptClosed: rows[0]?.finished_at instanceof Date });
      },
    });
    await mockEnvironment().run(run, input(taskId, { workdir: dir, deferSuccess: true }));
    assert.deepEqual(saved, [{ path: dir, task: taskId, agent: 'stand-in', attemptClosed: false }]);
    assert.equal((await attemptRows(pool, taskId))[0]?.failure_class, 'succeeded');
    const task = await pool.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId]);
    assert.equal(task.rows[0]?.status, 'running', 'the workflow records the outcome once the work is committed');
  });

  it('with deferSuccess, closes the attempt as succeeded and logs why when the commit fails (the workflow commits again)', async () => {
    const taskId = await insertTask(pool, { prompt: '@print done' });
    const warnings: LogEntry[] = [];
    const logger = new DefaultLogger('WARN', (entry) => warnings.push(entry));
    const { runAgent: run } = activities({
      saveWork: () => Promise.reject(new Error('git commit failed (128): No space left on device')),
    });
    const result = (await mockEnvironment(undefined, logger).run(
      run,
      input(taskId, { workdir: dir, deferSuccess: true }),
    )) as RunAgentOutput;
    assert.equal(result.exitCode, 0);
    assert.equal((await attemptRows(pool, taskId))[0]?.failure_class, 'succeeded');
    // Marked unsaved: a later attempt, should this answer be lost, runs the agent again.
    const unsaved = await pool.query<{ work_unsaved: boolean }>(
      'SELECT work_unsaved FROM attempts WHERE task_id = $1',
      [taskId],
    );
    assert.deepEqual(
      unsaved.rows.map((r) => r.work_unsaved),
      [true],
    );
    const saves = warnings.filter((w) => /could not commit the agent's work/.test(w.message));
    assert.deepEqual(
      saves.map((w) => [w.meta?.taskId, w.meta?.error]),
      [[taskId, 'git commit failed (128): No space left on device']],
    );
  });

  it("hands the worker's slot on once the agent exits, before its records; a limited agent or a breaker probe only after the release", async () => {
    const agents = loadAgentsFile(TEST_AGENTS_FILE);
    const standIn = agents.agents['stand-in'] as (typeof agents.agents)[string];
    const limited = { ...standIn, limits: { maxConcurrent: 3 } };
    /** Runs one gated attempt and returns the order of the slot hand-off, the attempt's end and the release. */
    const order = async (agent: string, asProbe: boolean): Promise<string[]> => {
      const calls: string[] = [];
      const store = new AttemptStore(pool);
      const finish = store.finishAttempt.bind(store);
      store.finishAttempt = async (e) => (calls.push('attempt closed'), finish(e));
      const admission = new AdmissionStore(pool);
      const [acquire, release] = [admission.acquire.bind(admission), admission.release.bind(admission)];
      // The gate's answer for an attempt that probes a half-open breaker.
      admission.acquire = async (...args) => {
        const admitted = await acquire(...args);
        return admitted.admitted && asProbe ? { ...admitted, probe: true } : admitted;
      };
      admission.release = async (...args) => (calls.push('cluster slot released'), release(...args));
      const { runAgent: run } = activities({
        agents: { ...agents, agents: { ...agents.agents, 'stand-in-limited': limited } },
        store,
        admission,
        agentExited: () => calls.push('slot handed on'),
      });
      const taskId = await insertTask(pool, { prompt: '@print done', agent });
      await mockEnvironment().run(run, input(taskId, { agent, gated: true }));
      return calls;
    };
    assert.deepEqual(await order('stand-in', false), ['slot handed on', 'attempt closed', 'cluster slot released']);
    const afterRelease = ['attempt closed', 'cluster slot released', 'slot handed on'];
    assert.deepEqual(await order('stand-in-limited', false), afterRelease, 'a limited agent');
    assert.deepEqual(await order('stand-in', true), afterRelease, "a half-open breaker's probe");
  });

  it("answers a limited agent's attempt without waiting for the wake of the next task in line", async () => {
    const agents = loadAgentsFile(TEST_AGENTS_FILE);
    const standIn = agents.agents['stand-in'] as (typeof agents.agents)[string];
    const limited = { ...standIn, limits: { maxConcurrent: 1 } };
    let woken: string | undefined;
    let wakeAnswered = (): void => undefined;
    const { runAgent: run } = activities({
      agents: { ...agents, agents: { ...agents.agents, 'stand-in-limited': limited } },
      // Temporal's frontend does not answer the wake signal until the test ends.
      wakeSlotWaiter: (agent) => ((woken = agent), new Promise<void>((resolve) => (wakeAnswered = resolve))),
    });
    const taskId = await insertTask(pool, { prompt: '@print done', agent: 'stand-in-limited' });
    const answer = mockEnvironment().run(run, input(taskId, { agent: 'stand-in-limited', gated: true }));
    try {
      assert.equal(((await within('the attempt', 20_000, answer)) as RunAgentOutput).exitCode, 0);
      assert.equal(woken, 'stand-in-limited', 'the wake was sent');
    } finally {
      wakeAnswered();
      await answer;
    }
  });

  it('heartbeats while it waits on the database before its agent starts', async () => {
    const store = new AttemptStore(pool);
    const read = store.taskToRun.bind(store);
    // The database is slow to answer (restarting, say): longer than several heartbeat intervals.
    store.taskToRun = async (...args) => {
      await new Promise((r) => setTimeout(r, 400));
      return read(...args);
    };
    const taskId = await insertTask(pool, { prompt: '@print done' });
    const env = mockEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => heartbeats.push(details));
    await env.run(activities({ store }).runAgent, input(taskId));
    assert.ok(
      heartbeats.filter((h) => JSON.stringify(h) === '{"starting":true}').length >= 3,
      `heartbeats: ${JSON.stringify(heartbeats)}`,
    );
  });

  it('does not start the agent of an attempt the workflow closed meanwhile (taken for lost)', async () => {
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const taskId = await insertTask(pool, { prompt: `@pidfile ${pidFile}\n@print ran` });
    const env = mockEnvironment();
    const runId = env.context.info.workflowExecution?.runId;
    await new AttemptStore(pool).recordAttemptFailure(
      { taskId, attempt: 1, agent: 'stand-in', failureClass: 'crash', message: 'agent worker stopped heartbeating' },
      runId,
    );
    const err = await rejectsWithType(env.run(runAgent, input(taskId)), 'crash', false);
    assert.match(err.message, /attempt 1 was closed before its agent could start/);
    assert.equal(existsSync(pidFile), false, 'the agent ran');
    const [attempt] = await attemptRows(pool, taskId);
    assert.deepEqual([attempt?.failure_class, attempt?.worker], ['crash', null]);
  });

  it('starts nothing for an attempt cancelled while it read its task: no slot, attempt or agent', async () => {
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const taskId = await insertTask(pool, { prompt: `@pidfile ${pidFile}\n@print ran` });
    const env = mockEnvironment();
    const store = new AttemptStore(pool);
    // The cancel arrives (on a heartbeat) while the first read waits on a slow database.
    const taskToRun = store.taskToRun.bind(store);
    store.taskToRun = async (...args) => {
      env.cancel();
      return taskToRun(...args);
    };
    await assert.rejects(env.run(activities({ store }).runAgent, input(taskId, { gated: true })), CancelledFailure);
    assert.equal(existsSync(pidFile), false, 'the agent ran');
    assert.deepEqual(await attemptRows(pool, taskId), [], 'an attempt was opened');
    const leases = await pool.query('SELECT 1 FROM agent_leases WHERE key LIKE $1', [`${taskId}%`]);
    assert.equal(leases.rowCount, 0, 'a slot was taken');
  });

  it("renews a running attempt's lease well within the lease, however short", async () => {
    const admission = new AdmissionStore(pool, { leaseSeconds: 0.9 });
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const taskId = await insertTask(pool, { prompt: `@pidfile ${pidFile}\n@sleep 1.5\n@print done` });
    const running = mockEnvironment().run(activities({ admission }).runAgent, input(taskId, { gated: true }));
    running.catch(() => undefined);
    await agentStarted(pidFile);
    await waitFor(
      'the lease to be renewed before it lapses',
      async () => {
        const lease = await pool.query<{ renewed: boolean }>(
          `SELECT expires_at > acquired_at + interval '0.95 seconds' AS renewed FROM agent_leases WHERE key LIKE $1`,
          [`${taskId}%`],
        );
        return lease.rows[0]?.renewed === true;
      },
      { timeoutMs: 1_200, intervalMs: 50 },
    );
    await running;
  });

  it('kills the agent when the workflow cancels it and fails with CancelledFailure', async () => {
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const taskId = await insertTask(pool, { prompt: `@pidfile ${pidFile}\n@hang` });
    const env = mockEnvironment();
    const running = env.run(runAgent, input(taskId));
    running.catch(() => undefined);
    const pid = await agentStarted(pidFile);
    assert.ok(processAlive(pid));

    env.cancel();

    await assert.rejects(running, CancelledFailure);
    // The activity returns only once the agent has exited.
    assert.equal(processAlive(pid), false, 'the agent outlived its cancelled activity');
    const [attempt] = await attemptRows(pool, taskId);
    assert.equal(attempt?.failure_class, 'cancelled');
    assert.equal(attempt?.exit_code, null);
  });

  it('records a stop the workflow did not ask for (worker shutdown) as a retryable crash', async () => {
    const pidFile = join(dir, `agent-${randomUUID()}`);
    const taskId = await insertTask(pool, { prompt: `@pidfile ${pidFile}\n@hang` });
    const env = mockEnvironment();
    const running = env.run(runAgent, input(taskId));
    running.catch(() => undefined);
    const pid = await agentStarted(pidFile);

    env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));

    await rejectsWithType(running, 'crash', false);
    assert.equal(processAlive(pid), false);
    const [attempt] = await attemptRows(pool, taskId);
    assert.equal(attempt?.failure_class, 'crash');
  });

  it('fails a non-zero exit as retryable nonzero_exit, keeping the exit code', async () => {
    const taskId = await insertTask(pool, { prompt: '@stderr broken\n@exit 4' });
    const env = mockEnvironment();
    const err = await rejectsWithType(env.run(runAgent, input(taskId)), 'nonzero_exit', false);
    assert.match(err.message, /code 4/);
    const [attempt] = await attemptRows(pool, taskId);
    assert.equal(attempt?.exit_code, 4);
    assert.equal(attempt?.failure_class, 'nonzero_exit');
    assert.deepEqual(await storedLogs(pool, taskId, 1), { stdout: '', stderr: 'broken\n' });
  });

  it('rejects an unknown agent as non-retryable unknown_agent without starting an attempt', async () => {
    // Names every object has are no agents either.
    for (const agent of ['no-such-agent', 'toString', 'constructor']) {
      const taskId = await insertTask(pool, { prompt: 'hello', agent });
      const env = mockEnvironment();
      await rejectsWithType(env.run(runAgent, input(taskId, { agent })), 'unknown_agent', true);
      assert.deepEqual(await attemptRows(pool, taskId), []);
    }
  });

  it('stops heartbeating when starting the agent throws', async () => {
    const { runAgent: run } = activities({
      spawn: () => {
        throw new Error('the spawner is broken');
      },
    });
    const env = mockEnvironment();
    let heartbeats = 0;
    env.on('heartbeat', () => (heartbeats += 1));
    await assert.rejects(env.run(run, input(await insertTask(pool, { prompt: '@print hi' }))), /spawner is broken/);
    const afterFailure = heartbeats;
    // Ten heartbeat intervals: a heartbeat left running would have beaten several times by now.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(heartbeats, afterFailure, 'the activity failed, but its heartbeat went on');
  });

  it('fails an agent whose program is missing as non-retryable agent_not_found', async () => {
    const taskId = await insertTask(pool, { prompt: 'hello', agent: 'missing' });
    const env = mockEnvironment();
    await rejectsWithType(env.run(runAgent, input(taskId, { agent: 'missing' })), 'agent_not_found', true);
    const [attempt] = await attemptRows(pool, taskId);
    assert.equal(attempt?.failure_class, 'agent_not_found');
  });

  it('rejects a task that is not in the database or a workdir that is not a directory as invalid_input', async () => {
    const env = mockEnvironment();
    await rejectsWithType(env.run(runAgent, input(randomUUID())), 'invalid_input', true);
    const taskId = await insertTask(pool, { prompt: 'hello' });
    await rejectsWithType(env.run(runAgent, input(taskId, { workdir: join(dir, 'absent') })), 'invalid_input', true);
    assert.deepEqual(await attemptRows(pool, taskId), []);
  });

  it('rejects a model that begins with "-" as invalid_input without opening an attempt', async () => {
    const taskId = await insertTask(pool, { prompt: 'hello', agent: 'stand-in-arg' });
    const env = mockEnvironment();
    const refused = input(taskId, { agent: 'stand-in-arg', model: '--approval-mode=yolo' });
    await rejectsWithType(env.run(runAgent, refused), 'invalid_input', true);
    assert.deepEqual(await attemptRows(pool, taskId), []);
  });
});
