import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Pool } from 'pg';
import { PG_POOL } from '../../src/api/tokens';
import { startCuttableProxy, type CuttableProxy } from '../support/cuttable-proxy';
import { startInProcessApi } from '../support/in-process-api';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

interface ReadyBody {
  status: string;
  info?: Record<string, { status: string }>;
  error?: Record<string, { status: string; message?: string }>;
  workers: Record<string, { taskQueue: string; pollers?: number; message?: string }>;
}

/**
 * The API's readiness on its own: an API process in this test, with task queues no worker polls and
 * its PostgreSQL behind a proxy whose line the test cuts.
 */
describe('GET /health/ready', () => {
  const workflowQueue = uniqueQueue('wf-health');
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
    assert.deepEqual(body.workers.workflow, { taskQueue: workflowQueue, pollers: 0, message: 'no worker is polling' });
    assert.equal(body.workers.agent?.pollers, 0);
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
});
