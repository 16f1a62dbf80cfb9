import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { AGENT_HEARTBEAT_TIMEOUT_SECONDS } from '../../workflows/definitions';
import { call, type Submitted, type TaskView } from '../support/http-api';
import { startStack, type Stack } from '../support/stack';
import { testEnv } from '../support/test-env';
import { processAlive, waitFor } from '../support/wait-for';

async function submit(stack: Stack, body: Record<string, unknown>): Promise<Submitted> {
  const res = await call(stack.baseUrl, 'POST', '/v1/tasks', { body });
  assert.equal(res.status, 201, res.text);
  return res.json as Submitted;
}

async function finished(stack: Stack, id: string, timeoutMs = 60_000): Promise<TaskView> {
  return waitFor(
    `task ${id} to finish`,
    async () => {
      const res = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}`);
      const task = res.json as TaskView;
      return ['succeeded', 'failed', 'cancelled'].includes(task.status) ? task : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

const readPid = (file: string): number | undefined => {
  try {
    return Number(readFileSync(file, 'utf8')) || undefined;
  } catch {
    return undefined;
  }
};

/**
 * The short fault tests: processes of a running service are killed with SIGKILL mid-task, and every
 * task still ends exactly once. `npm run chaos` runs the long versions.
 */
describe('faults: killed processes mid-task', () => {
  let stack: Stack;
  let pool: Pool;
  const files: string[] = [];

  before(async () => {
    stack = await startStack();
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });

  after(async () => {
    await stack?.stop();
    await pool?.end();
    for (const f of files) rmSync(f, { force: true });
  });

  const terminalEvents = async (id: string): Promise<number> =>
    Number(
      (await pool.query<{ n: string }>('SELECT count(*) AS n FROM task_events WHERE task_id = $1 AND terminal', [id]))
        .rows[0]?.n,
    );

  it('kill -9 of the agent worker: no agent survives, the task finishes on the restarted worker', async () => {
    const pidFile = join(tmpdir(), `atelier-fault-${randomUUID()}`);
    files.push(pidFile);
    const task = await submit(stack, { prompt: `@pidfile ${pidFile}\n@sleep 2`, maxAttempts: 2 });
    const agentPid = await waitFor('the agent to start', () => readPid(pidFile));
    const workerPid = stack.servicePid('workers/agent-worker');
    assert.ok(workerPid, 'the agent worker runs');
    rmSync(pidFile);
    const killedAt = Date.now();
    process.kill(workerPid, 'SIGKILL');

    await waitFor('the orphaned agent to die with its worker', () => !processAlive(agentPid), { timeoutMs: 5000 });
    await waitFor('the supervisor to restart the agent worker', () => {
      const pid = stack.servicePid('workers/agent-worker');
      return pid !== undefined && pid !== workerPid;
    });
    const done = await finished(stack, task.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(
      done.attempts.map((a) => a.failureClass),
      ['crash', 'succeeded'],
    );
    const secondStart = Date.parse(done.attempts[1]?.startedAt ?? '');
    const recoverySeconds = (secondStart - killedAt) / 1000;
    assert.ok(
      recoverySeconds <= AGENT_HEARTBEAT_TIMEOUT_SECONDS + 5,
      `the next attempt started ${recoverySeconds}s after the kill (heartbeat timeout ${AGENT_HEARTBEAT_TIMEOUT_SECONDS}s)`,
    );
    assert.equal(await terminalEvents(task.id), 1);
  });

  it('kill -9 of the workflow worker: the running attempt completes and the task ends once', async () => {
    const pidFile = join(tmpdir(), `atelier-fault-${randomUUID()}`);
    files.push(pidFile);
    const task = await submit(stack, { prompt: `@pidfile ${pidFile}\n@sleep 2\n@print survived`, maxAttempts: 1 });
    await waitFor('the agent to start', () => readPid(pidFile));
    const workerPid = stack.servicePid('workers/workflow-worker');
    assert.ok(workerPid, 'the workflow worker runs');
    process.kill(workerPid, 'SIGKILL');

    const done = await finished(stack, task.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.attempts.length, 1, 'the agent ran exactly once');
    assert.equal(done.result?.output, 'survived\n');
    assert.equal(await terminalEvents(task.id), 1);
  });

  it('kill -9 of the API: tasks keep running and the restarted API reports them', async () => {
    const pidFile = join(tmpdir(), `atelier-fault-${randomUUID()}`);
    files.push(pidFile);
    const task = await submit(stack, { prompt: `@pidfile ${pidFile}\n@sleep 1\n@print after-api-restart` });
    await waitFor('the agent to start', () => readPid(pidFile));
    const apiPid = stack.servicePid('api/main');
    assert.ok(apiPid, 'the API runs');
    process.kill(apiPid, 'SIGKILL');

    const done = await finished(stack, task.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result?.output, 'after-api-restart\n');
    const restarted = stack.servicePid('api/main');
    assert.ok(restarted !== undefined && restarted !== apiPid, `a new API process answered (pid ${restarted})`);
    await waitFor('ready again', async () => (await call(stack.baseUrl, 'GET', '/health/ready')).status === 200);
  });
});
