import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pool } from 'pg';
import { PG_POOL } from '../../src/api/tokens';
import { PeriodicRun } from '../../src/api/periodic-run';
import { StrandedSubmissionsSweeper } from '../../src/api/stranded/stranded-submissions.sweeper';
import { readSse } from '../../src/cli/sse';
import { startInProcessApi } from '../support/in-process-api';
import { insertTask } from '../support/task-rows';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

/** LogStreamService's grace for open streams, and some slack. */
const STREAMS_CLOSED_MS = 5000 + 2000;

/**
 * The API stopping while a sweep still runs (its start waits on a Temporal or PostgreSQL that does not
 * answer): the log followers are let go at once, to reconnect elsewhere, and the sweep is waited for
 * after, before the database pool closes.
 */
describe('a sweep under way while the API stops', { timeout: 60_000 }, () => {
  it('holds neither the end of the open log streams nor, once it ends, the stop', async () => {
    const pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    const { app, baseUrl } = await startInProcessApi({
      DATABASE_URL: testEnv.databaseUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf-sweep-stop'),
    });
    // The sweeper's runs replaced by one that begins at once and, when told, ends with a statement on
    // the API's pool (its real ones would start rows other tests leave unstarted on purpose).
    const sweeper = app.get(StrandedSubmissionsSweeper) as unknown as { periodic: PeriodicRun };
    const apiPool = app.get<Pool>(PG_POOL);
    sweeper.periodic.stop();
    let release = (): void => undefined;
    const hung = new Promise<void>((resolve) => (release = resolve));
    let began = false;
    let ended: string | undefined;
    sweeper.periodic = new PeriodicRun(
      1,
      async () => {
        began = true;
        await hung;
        await apiPool.query('SELECT 1');
        ended = 'with its statement answered';
      },
      (err) => (ended = err.message),
    );
    sweeper.periodic.start();
    const clients = new AbortController();
    let closing: Promise<void> | undefined;
    try {
      await waitFor('the sweep to begin', () => began);
      const taskId = await insertTask(pool, { prompt: 'never started' });
      const res = await fetch(`${baseUrl}/v1/tasks/${taskId}/logs?follow=1`, { signal: clients.signal });
      assert.equal(res.status, 200);
      assert.ok(res.body);
      const events = readSse(res.body);

      closing = app.close();
      const last = await within('the log stream to end', STREAMS_CLOSED_MS, events.next());
      assert.equal(last.done, true, 'the open stream ended');
      release();
      await within('the API stopping', 15_000, closing);
      assert.equal(ended, 'with its statement answered', 'the pool closed only after the sweep');
    } finally {
      release();
      clients.abort();
      await (closing ?? app.close());
      await pool.end();
    }
  });
});
