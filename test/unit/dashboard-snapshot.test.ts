import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { Pool } from 'pg';
import { DashboardController } from '../../src/api/dashboard/dashboard.controller';
import { DashboardService } from '../../src/api/dashboard/dashboard.service';
import { loadConfig } from '../../src/config/env';
import { countingPool } from '../support/counting-pool';
import { testEnv } from '../support/test-env';

describe('GET /v1/dashboard', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 20 });
  });
  after(() => pool.end());

  /** The endpoint over a pool that counts statements. No Temporal: its queue descriptions fail, harmlessly. */
  const dashboard = (statements: string[]): DashboardController =>
    new DashboardController(new DashboardService(loadConfig({}), countingPool(pool, statements), {} as Client));

  it("shares one snapshot's queries among callers at once, whatever their number", async () => {
    const alone: string[] = [];
    await dashboard(alone).snapshot();
    assert.ok(alone.length > 1, 'a snapshot takes several statements');

    const statements: string[] = [];
    const controller = dashboard(statements);
    const answers = await Promise.all(Array.from({ length: 20 }, () => controller.snapshot()));
    assert.equal(statements.length, alone.length, '20 callers cost the statements of one snapshot');
    assert.equal(new Set(answers).size, 1, 'they all get the same snapshot');
  });
});
