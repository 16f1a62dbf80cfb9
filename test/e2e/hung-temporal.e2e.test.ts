import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ServiceUnavailableException } from '@nestjs/common';
import { Pool } from 'pg';
import { LOCKED_TEMPORAL_CALL_MS } from '../../src/api/http/locked-temporal-call';
import { LOST_START_LOOKUP_MS } from '../../src/api/http/start-stored-workflow';
import { TEMPORAL_CALL_MS } from '../../src/api/infrastructure.module';
import { PlansService } from '../../src/api/plans/plans.service';
import { TasksService } from '../../src/api/tasks/tasks.service';
import { PlanStore } from '../../src/store/plan-store';
import { TaskStore } from '../../src/store/task-store';
import { workflowIdForPlan } from '../../workflows/definitions';
import { call, type ErrorBody } from '../support/http-api';
import { startCuttableProxy } from '../support/cuttable-proxy';
import { startInProcessApi } from '../support/in-process-api';
import { testEnv, uniqueQueue } from '../support/test-env';
import { newTask } from '../support/task-rows';
import { waitFor, within } from '../support/wait-for';

/**
 * An API process in this test whose Temporal is behind a proxy that goes silent, without a reset, from
 * the first request naming the API's workflow task queue: only workflow starts do. Nobody polls that queue.
 */
async function apiBehindSilentTemporal(prefix: string) {
  const workflowQueue = uniqueQueue(prefix);
  const pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  const proxy = await startCuttableProxy(testEnv.temporalAddress, { cutOnSend: workflowQueue });
  const { app, baseUrl } = await startInProcessApi({
    DATABASE_URL: testEnv.databaseUrl,
    TEMPORAL_ADDRESS: proxy.address,
    ATELIER_WORKFLOW_QUEUE: workflowQueue,
  });
  return {
    app,
    baseUrl,
    pool,
    close: async () => {
      // Closing the proxy first fails whatever still waits on it, so the app can close.
      await proxy.close();
      await app.close();
      await pool.end();
    },
  };
}
type SilentTemporalApi = Awaited<ReturnType<typeof apiBehindSilentTemporal>>;

/**
 * The Temporal calls the API makes while it holds a row lock (and the pool connection of its
 * transaction) have a deadline.
 */
describe('a Temporal that stops answering while the API holds a row lock', { timeout: 120_000 }, () => {
  let api: SilentTemporalApi;
  before(async () => {
    api = await apiBehindSilentTemporal('wf-hung');
  });
  after(() => api?.close());

  it('answers a retry 503 after the deadline, and the starts of stranded submissions fail: no lock is kept', async () => {
    // A failed task whose run Temporal does not know (so its retry is rebuilt from the row).
    const failed = (await new TaskStore(api.pool).create(newTask('@print never runs'))).task.id;
    await api.pool.query(`UPDATE tasks SET status = 'failed', run_id = $2, finished_at = now() WHERE id = $1`, [
      failed,
      randomUUID(),
    ]);
    const strandedTask = (await new TaskStore(api.pool).create(newTask('@print never runs'))).task.id;
    const strandedPlan = randomUUID();
    await new PlanStore(api.pool).create({
      id: strandedPlan,
      maxParallel: 1,
      onFailure: 'stop',
      workflowId: workflowIdForPlan(strandedPlan),
      tasks: [{ ...newTask('@print never runs'), key: 'only', dependsOn: [] }],
    });

    const bound = LOCKED_TEMPORAL_CALL_MS + 10_000;
    const retrying = Promise.allSettled([
      within('the retry', bound, call(api.baseUrl, 'POST', `/v1/tasks/${failed}/retry`)),
    ]);
    // The retry reads its run's history first, with no lock held: the starts below silence the line
    // only once it holds the task's row lock, for its own start.
    await waitFor('the retry to hold the row lock of its task', async () => {
      const free = await api.pool.query('SELECT id FROM tasks WHERE id = $1 FOR UPDATE SKIP LOCKED', [failed]);
      return free.rowCount === 0;
    });
    const [task, plan] = await Promise.allSettled([
      within("the stranded task's start", bound, api.app.get(TasksService).startStranded(strandedTask)),
      within("the stranded plan's start", bound, api.app.get(PlansService).startStranded(strandedPlan)),
    ]);
    const [retry] = await retrying;

    assert.equal(retry.status, 'fulfilled', retry.status === 'rejected' ? String(retry.reason) : '');
    assert.equal(retry.value.status, 503, retry.value.text);
    assert.match((retry.value.json as ErrorBody).message, /could not start the new run/);
    for (const [what, started] of [
      ['task', task],
      ['plan', plan],
    ] as const) {
      assert.equal(started.status, 'rejected', `the stranded ${what} was not started`);
      assert.ok(started.reason instanceof ServiceUnavailableException, String(started.reason));
      assert.match(started.reason.message, new RegExp(`could not start the ${what} workflow`));
    }

    // Every transaction ended: the rows are free, and none records a run.
    const db = await api.pool.connect();
    try {
      await db.query('BEGIN');
      const tasks = await db.query<{ id: string; status: string; current_run: number; run_id: string | null }>(
        'SELECT id, status, current_run, run_id FROM tasks WHERE id = ANY($1) FOR UPDATE NOWAIT',
        [[failed, strandedTask]],
      );
      const byId = new Map(tasks.rows.map((r) => [r.id, r]));
      assert.deepEqual([byId.get(failed)?.status, byId.get(failed)?.current_run], ['failed', 1]);
      assert.equal(byId.get(strandedTask)?.run_id, null);
      const plans = await db.query<{ run_id: string | null }>(
        'SELECT run_id FROM plans WHERE id = $1 FOR UPDATE NOWAIT',
        [strandedPlan],
      );
      assert.equal(plans.rows[0]?.run_id, null);
    } finally {
      await db.query('ROLLBACK');
      db.release();
    }
  });
});

/**
 * Every other Temporal call the API makes for a request has a deadline too: a submission through a
 * Temporal that goes silent (the same proxy) is answered, not left hanging while its client gives up
 * and submits again.
 */
describe('a Temporal that stops answering a submission', { timeout: 90_000 }, () => {
  let api: SilentTemporalApi;
  before(async () => {
    api = await apiBehindSilentTemporal('wf-hung-submit');
  });
  after(() => api?.close());

  it('answers after the deadlines that a start without a key may have got through, keeps it, and says not to submit it again', async () => {
    const prompt = `@print never runs ${randomUUID()}`;
    const res = await within(
      'the submission',
      TEMPORAL_CALL_MS + LOST_START_LOOKUP_MS + 10_000,
      call(api.baseUrl, 'POST', '/v1/tasks', { body: { prompt } }),
    );
    // Temporal could not say whether the start got through: removed, a task that did start would fail.
    assert.equal(res.status, 500, res.text);
    assert.match(
      (res.json as ErrorBody).message,
      /is stored and its workflow may have started.*do not submit it again/,
    );
    const kept = await api.pool.query<{ id: string }>('SELECT id FROM tasks WHERE prompt = $1', [prompt]);
    assert.equal(kept.rowCount, 1, 'the stranded-submission sweeper starts it, or finds it started');
    // Not left for another test's sweeper to start.
    await api.pool.query('DELETE FROM tasks WHERE id = $1', [kept.rows[0]?.id]);
  });
});
