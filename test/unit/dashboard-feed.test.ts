import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { Logger } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { DashboardService } from '../../src/api/dashboard/dashboard.service';
import type { DashboardSnapshot } from '../../src/api/dashboard/snapshot';
import { loadConfig } from '../../src/config/env';

/**
 * A pool whose statements answer at once: the change check's with `state.cursor`, every other with no
 * rows. While `state.failing`, every statement fails, as with PostgreSQL away.
 */
function stubPool(): { pool: Pool; state: { cursor: string; failing: boolean } } {
  const state = { cursor: '1', failing: false };
  const query = async (statement: string | QueryConfig) => {
    if (state.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const text = typeof statement === 'string' ? statement : statement.text;
    return { rows: text.includes('AS cursor FROM task_events') ? [{ cursor: state.cursor }] : [] };
  };
  const client = { query, release: () => undefined } as unknown as PoolClient;
  return { pool: { query, connect: async () => client } as unknown as Pool, state };
}

/** Temporal with both task queues empty. */
const temporal = {
  connection: { withDeadline: (_: number, fn: () => unknown) => fn() },
  workflowService: { describeTaskQueue: async () => ({ pollers: [] }) },
} as unknown as Client;

/** Lets the feed's check, whose statements all answer at once, run to its end. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

/** Moves the feed's clock on by `seconds`, a second (one change check) at a time. */
async function pass(seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    mock.timers.tick(1000);
    await settled();
  }
}

/** The dashboard feed of one API process, on a clock the tests move. */
describe('the dashboard feed', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.parse('2026-01-01T00:00:00Z') }));
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  it('sends a snapshot at the first check after a task event, long before the 5 s refresh', async () => {
    const { pool, state } = stubPool();
    const cursors: string[] = [];
    const unsubscribe = new DashboardService(loadConfig({}), pool, temporal).subscribe((s: DashboardSnapshot) =>
      cursors.push(s.cursor),
    );
    try {
      await settled();
      assert.deepEqual(cursors, ['1'], 'a snapshot at once');
      await pass(1);
      assert.deepEqual(cursors, ['1'], 'nothing changed: nothing sent before the refresh');
      state.cursor = '2';
      await pass(1);
      assert.deepEqual(cursors, ['1', '2'], 'the change, a second later');
    } finally {
      unsubscribe();
    }
  });

  it('logs snapshots that keep failing once a minute, not at every check, and a new failure at once', async () => {
    const warnings = mock.method(Logger.prototype, 'warn', () => undefined);
    const failures = () =>
      warnings.mock.calls.filter((c) => String(c.arguments[0]).startsWith('dashboard snapshot failed')).length;
    const { pool, state } = stubPool();
    state.failing = true;
    const snapshots: DashboardSnapshot[] = [];
    const unsubscribe = new DashboardService(loadConfig({}), pool, temporal).subscribe((s) => snapshots.push(s));
    try {
      await settled();
      assert.equal(failures(), 1);
      assert.match(String(warnings.mock.calls[0]?.arguments[0]), /ECONNREFUSED/);
      await pass(59);
      assert.equal(failures(), 1, 'a minute of failed checks, logged once');
      await pass(1);
      assert.equal(failures(), 2);

      state.failing = false;
      await pass(5);
      assert.equal(snapshots.length, 1, 'the database is back: a snapshot');
      state.failing = true;
      await pass(1);
      assert.equal(failures(), 3, 'failing again is logged at once');
      assert.equal(snapshots.length, 1);
    } finally {
      unsubscribe();
    }
  });
});
