import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { Logger } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import { Pool } from 'pg';
import { DashboardService } from '../../src/api/dashboard/dashboard.service';
import type { QueueStatsService } from '../../src/api/workers/queue-stats.service';
import { WorkersService } from '../../src/api/workers/workers.service';
import { loadConfig } from '../../src/config/env';
import type { WorkerStore } from '../../src/store/worker-store';
import { testEnv } from '../support/test-env';

/** What Temporal's client says when its server is away: its address, which clients must not see. */
const TEMPORAL_ERROR = '14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.1.2.3:7233';
const FIXED = "Temporal unavailable (the API's log says why)";

afterEach(() => mock.restoreAll());

describe("a task queue Temporal cannot describe: its error names no Temporal's text, which goes to the log", () => {
  it('in GET /v1/workers', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const service = new WorkersService(
      { list: () => Promise.resolve([]) } as unknown as WorkerStore,
      {
        configuredQueues: () => [{ name: 'agents', type: 'activity' }],
        describe: () => Promise.reject(new Error(TEMPORAL_ERROR)),
      } as unknown as QueueStatsService,
    );
    const answer = await service.list(false);
    assert.equal(answer.queues[0]?.error, FIXED);
    assert.ok(!JSON.stringify(answer).includes('10.1.2.3'), JSON.stringify(answer));
    assert.match(String(warnings.mock.calls[0]?.arguments[0]), /could not describe task queue agents: .*10\.1\.2\.3/);
  });

  it('in GET /v1/dashboard', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const pool = new Pool({ connectionString: testEnv.databaseUrl });
    const temporal = { connection: { withDeadline: () => Promise.reject(new Error(TEMPORAL_ERROR)) } };
    try {
      const snapshot = await new DashboardService(loadConfig({}), pool, temporal as unknown as Client).current();
      assert.deepEqual(
        snapshot.queues.map((q) => q.error),
        [FIXED, FIXED],
      );
      assert.ok(!JSON.stringify(snapshot).includes('10.1.2.3'));
      assert.ok(
        warnings.mock.calls.some((c) => /could not describe task queue .*10\.1\.2\.3/.test(String(c.arguments[0]))),
      );
    } finally {
      await pool.end();
    }
  });
});
