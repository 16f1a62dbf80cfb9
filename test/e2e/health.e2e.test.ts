import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Pool } from 'pg';
import { PG_POOL } from '../../src/api/tokens';
import { freePort } from '../../src/net/free-port';
import { WorkerStore } from '../../src/store/worker-store';
import { startCuttableProxy, type CuttableProxy } from '../support/cuttable-proxy';
import { startInProcessApi } from '../support/in-process-api';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

interface ReadyBody {
  status: string;
  info?: Record<string, { status: string }>;
  error?: Record<string, { status: string; message?: string }>;
  workers: Record<string, { taskQueue: string; pollers?: number; workers?: number; busy?: number; message?: string }>;
}

/**
 * The API's readiness on its own: an API process in this test, with task queues no worker polls and
 * its PostgreSQL behind a proxy whose line the test cuts.
 */
describe('GET /health/ready', () => {
  const workflowQueue = uniqueQueue('wf-health');
  const agentQueue = uniqueQueue('agents-health');
  let proxy: CuttableProxy;
  let app: NestExpressApplication;
  let baseUrl: string;

  before(async () => {
    const db = new URL(testEnv.databaseUrl);
    proxy = await startCuttableProxy(db.host);
    db.host = proxy.address;
    ({ app, baseUrl } = await startInProcessApi({
      DATABASE_URL: db.toString(),
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: workflowQueue,
      ATELIER_AGENT_QUEUE: agentQueue,
    }));
  });

  after(async () => {
    await proxy?.close();
    await app?.close();
  });

  const ready = async (): Promise<{ status: number; body: ReadyBody; ms: number }> => {
    const started = Date.now();
    // A check that hangs fails here, at this deadline, rather than holding the test.
    const res = await fetch(`${baseUrl}/health/ready`, { signal: AbortSignal.timeout(8000) });
    return { status: res.status, body: (await res.json()) as ReadyBody, ms: Date.now() - started };
  };

  it('answers ready with no worker polling, and reports the pollers as information', async () => {
    const { status, body } = await ready();
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(Object.keys(body.info ?? {}).sort(), ['postgres', 'temporal']);
    assert.deepEqual(body.workers.workflow, {
      taskQueue: workflowQueue,
      pollers: 0,
      workers: 0,
      busy: 0,
      message: 'no worker serves this queue',
    });
    assert.equal(body.workers.agent?.pollers, 0);
  });

  it('counts an agent worker with every slot taken, which Temporal no longer lists as polling', async () => {
    // What the registry holds for such a worker: running, heartbeating, its one slot taken; beside it a
    // worker silent for a minute and one draining, neither of which serves the queue.
    const store = new WorkerStore(app.get<Pool>(PG_POOL));
    const register = async (name: string, state: string, slotsUsed: number): Promise<string> => {
      const identity = `agent-worker:${name}@${agentQueue}`;
      const registration = { identity, kind: 'agent' as const, taskQueue: agentQueue, host: 'h', pid: 1 };
      await store.report(
        { ...registration, metricsUrl: null, slotMode: 'fixed', slotsTotal: 1 },
        { state, slotsUsed, running: [], completed: 0, failed: 0, cancelled: 0 },
      );
      return identity;
    };
    await register('busy', 'RUNNING', 1);
    await register('draining', 'DRAINING', 1);
    const silent = await register('silent', 'RUNNING', 0);
    await app
      .get<Pool>(PG_POOL)
      .query(`UPDATE workers SET heartbeat_at = clock_timestamp() - interval '1 minute' WHERE identity = $1`, [silent]);

    const { status, body } = await ready();
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.workers.agent, {
      taskQueue: agentQueue,
      pollers: 0,
      workers: 1,
      busy: 1,
      message: 'every worker is busy: with all its slots taken, a worker does not poll',
    });
  });

  it('answers not ready within its deadline when PostgreSQL goes silent, and frees the connection', async () => {
    const pool = app.get<Pool>(PG_POOL);
    assert.equal((await ready()).status, 200);
    assert.ok(pool.totalCount >= 1, 'the pool holds a connection through the proxy');

    proxy.cut();
    const { status, body, ms } = await ready();
    assert.equal(status, 503, JSON.stringify(body));
    assert.ok(ms < 5000, `answered in ${ms} ms`);
    assert.match(body.error?.postgres?.message ?? '', /PostgreSQL did not answer within 3000 ms/);
    assert.equal(body.info?.temporal?.status, 'up', 'Temporal is still up');
    // The silent connection is dropped, not left pinned until TCP gives up on it (minutes).
    await waitFor('the pool to drop its silent connection', () => pool.totalCount === 0, { timeoutMs: 3000 });
  });

  it('names no host, address or user of a dependency it cannot reach: the open endpoint says only which', async () => {
    // Nothing listens on these ports: PostgreSQL and Temporal refuse, with their addresses in their errors.
    const [dbPort, temporalPort] = [await freePort(), await freePort()];
    const db = new URL(testEnv.databaseUrl);
    db.host = `127.0.0.1:${dbPort}`;
    db.username = 'unreachable_user';
    const unreachable = await startInProcessApi({
      DATABASE_URL: db.toString(),
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      ATELIER_WORKFLOW_QUEUE: workflowQueue,
      ATELIER_AGENT_QUEUE: agentQueue,
    });
    try {
      const res = await fetch(`${unreachable.baseUrl}/health/ready`, { signal: AbortSignal.timeout(8000) });
      const text = await res.text();
      assert.equal(res.status, 503, text);
      const body = JSON.parse(text) as ReadyBody;
      assert.equal(body.error?.postgres?.message, "PostgreSQL unavailable (the API's log says why)");
      assert.match(body.error?.temporal?.message ?? '', /^Temporal (unavailable|did not answer)/);
      for (const secret of [String(dbPort), String(temporalPort), 'unreachable_user', 'ECONNREFUSED']) {
        assert.ok(!text.includes(secret), `the answer names ${secret}: ${text}`);
      }
    } finally {
      await unreachable.app.close();
    }
  });
});
