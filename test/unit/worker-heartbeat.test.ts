import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createPool } from '../../src/db/pool';
import { WorkerObservability } from '../../src/observability/worker-observability';
import { WorkerStore } from '../../src/store/worker-store';
import { startCuttableProxy } from '../support/cuttable-proxy';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

describe('worker heartbeats', () => {
  it('go on after one whose connection went silent: it fails within seconds instead of holding the next', async () => {
    const proxy = await startCuttableProxy(new URL(testEnv.databaseUrl).host);
    const url = new URL(testEnv.databaseUrl);
    url.host = proxy.address;
    const pool = createPool(url.toString(), () => undefined);
    const direct = createPool(testEnv.databaseUrl, () => undefined);
    const identity = `agent-worker:${uniqueQueue('heartbeat')}`;
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (fields: { error?: string }, message: string) => warnings.push(`${message}: ${fields.error}`),
    } as unknown as Logger;
    const observability = new WorkerObservability({
      kind: 'agent',
      identity,
      taskQueue: uniqueQueue('agents-heartbeat'),
      slots: { mode: 'fixed', total: 1 },
      metricsHost: '127.0.0.1',
      metricsPort: 'off',
      store: new WorkerStore(pool),
      temporal: { scrape: () => Promise.resolve('') },
      logger,
    });
    const heartbeatAt = async (): Promise<Date | undefined> =>
      (await direct.query<{ heartbeat_at: Date }>('SELECT heartbeat_at FROM workers WHERE identity = $1', [identity]))
        .rows[0]?.heartbeat_at;
    try {
      await observability.attach({ getState: () => 'RUNNING' } as unknown as Worker);
      assert.ok(await heartbeatAt(), 'the worker registered');
      assert.equal(pool.totalCount, 1, 'the pool keeps the connection that wrote the row');

      // A NAT forgets that connection (a failover would leave it as silent): the next heartbeat, sent on
      // it, is never answered, while new connections pass.
      proxy.cutWhere(identity);
      const cutAt = (await direct.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]?.now;
      assert.ok(cutAt);
      await waitFor(
        'a heartbeat written after the silent one',
        async () => ((await heartbeatAt()) ?? 0) > cutAt,
        // The silent one fails at 3 s; the next goes out at the next 5 s tick.
        { timeoutMs: 25_000 },
      );
      assert.match(warnings.join('\n'), /could not record worker heartbeat: Query read timeout/);
    } finally {
      // Closing the proxy first ends a write still waiting on the silent connection, which stop() awaits.
      await proxy.close();
      await observability.stop();
      await Promise.all([pool.end(), direct.end()]);
    }
  });
});
