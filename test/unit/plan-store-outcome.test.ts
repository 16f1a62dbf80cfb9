import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { PlanStore } from '../../src/store/plan-store';
import { testEnv } from '../support/test-env';

describe('PlanStore.recordOutcome', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 3 });
  });
  after(() => pool.end());

  async function runningPlan(): Promise<string> {
    const id = randomUUID();
    await pool.query(
      `INSERT INTO plans (id, status, max_parallel, on_failure, workflow_id) VALUES ($1, 'running', 2, 'continue', $2)`,
      [id, `plan-${id}`],
    );
    return id;
  }

  it('records the first end and answers it to a second', async () => {
    const store = new PlanStore(pool);
    const id = await runningPlan();
    assert.equal(await store.recordOutcome({ planId: id, status: 'succeeded' }), 'succeeded');
    assert.equal(await store.recordOutcome({ planId: id, status: 'cancelled' }), 'succeeded');
  });

  it('says whether it wrote the end: the first write did, a second that found it did not', async () => {
    const store = new PlanStore(pool);
    const id = await runningPlan();
    assert.deepEqual(await store.writeOutcome({ planId: id, status: 'failed' }), { status: 'failed', written: true });
    assert.deepEqual(await store.writeOutcome({ planId: id, status: 'failed' }), { status: 'failed', written: false });
  });

  it("answers the end another transaction wrote while it waited, not the snapshot's running", async () => {
    const store = new PlanStore(pool);
    const id = await runningPlan();
    const other = await pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE plans SET status = 'cancelled', finished_at = clock_timestamp() WHERE id = $1`, [id]);
      const answer = store.recordOutcome({ planId: id, status: 'succeeded' });
      // The outcome's statement waits for the other transaction's row lock before it is committed.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const waiting = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM plans WHERE id = $1%'`,
        );
        if ((waiting.rows[0]?.n ?? 0) > 0) break;
        assert.ok(Date.now() < deadline, 'the outcome never waited for the lock');
        await new Promise((r) => setTimeout(r, 10));
      }
      await other.query('COMMIT');
      assert.equal(await answer, 'cancelled');
      const row = await pool.query<{ status: string }>('SELECT status FROM plans WHERE id = $1', [id]);
      assert.equal(row.rows[0]?.status, 'cancelled');
    } finally {
      other.release();
    }
  });
});
