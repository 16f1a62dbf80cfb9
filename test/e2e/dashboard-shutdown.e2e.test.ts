import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DashboardService } from '../../src/api/dashboard/dashboard.service';
import { readSse } from '../../src/cli/sse';
import { startInProcessApi } from '../support/in-process-api';
import { testEnv, uniqueQueue } from '../support/test-env';
import { within } from '../support/wait-for';

/**
 * The API stopping while a browser holds a dashboard stream: the browser reconnects a second after its
 * stream ends, and other shutdown hooks may still be running then, the HTTP server still accepting.
 */
describe('the dashboard stream while the API stops', { timeout: 60_000 }, () => {
  it('ends the open stream, answers a reconnect 503 with Retry-After, and the API stops', async () => {
    const { app, baseUrl } = await startInProcessApi({
      DATABASE_URL: testEnv.databaseUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf-dashboard-stop'),
    });
    const clients = new AbortController();
    const stream = (): Promise<Response> => fetch(`${baseUrl}/v1/dashboard/stream`, { signal: clients.signal });
    // The dashboard's hook, then the browser's reconnect while the shutdown is still going on: the hook
    // waits for its answer, as a slower hook elsewhere would keep the server open meanwhile.
    const dashboard = app.get(DashboardService);
    const hook = dashboard.beforeApplicationShutdown.bind(dashboard);
    let reconnected: Promise<Response> | undefined;
    dashboard.beforeApplicationShutdown = async () => {
      hook();
      reconnected = stream();
      await reconnected;
    };
    let closing: Promise<void> | undefined;
    try {
      const open = await stream();
      assert.equal(open.status, 200);
      assert.ok(open.body);
      const events = readSse(open.body);
      assert.equal((await events.next()).value?.event, 'snapshot');

      closing = app.close();
      assert.equal((await events.next()).done, true, 'the open stream ended');
      assert.ok(reconnected, 'the hook ran');
      const again = await reconnected;
      // Status first: the body of a stream wrongly opened would never end.
      assert.equal(again.status, 503);
      assert.equal(again.headers.get('retry-after'), '5');
      assert.match(((await again.json()) as { message: string }).message, /stopping/);

      // The client keeps its connections: nothing left open may hold the server's close.
      await within('the API stopping', 15_000, closing);
    } finally {
      clients.abort();
      await (closing ?? app.close());
    }
  });
});
