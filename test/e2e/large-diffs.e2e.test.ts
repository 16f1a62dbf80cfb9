import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { startInProcessApi } from '../support/in-process-api';
import { getAndLeave, readToItsEnd, stalledGet } from '../support/slow-clients';
import { insertTask } from '../support/task-rows';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

/** A task with a commit whose kept patch is `patch`. */
async function taskWithPatch(pool: Pool, patch: string): Promise<string> {
  const taskId = await insertTask(pool, { prompt: 'never started' });
  await pool.query('INSERT INTO task_diffs (task_id, base_sha, sha, patch) VALUES ($1, $2, $3, $4)', [
    taskId,
    'a'.repeat(40),
    'b'.repeat(40),
    patch,
  ]);
  return taskId;
}

/** GET /v1/tasks/:id/diff of patches too large to hold many of at once, against the API in this process. */
describe('large patches', { timeout: 90_000 }, () => {
  let pool: Pool;

  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  it('sends one large patch at a time, small ones beside it, and a stalled client does not hold the stop', async () => {
    const { app, baseUrl } = await startInProcessApi({
      DATABASE_URL: testEnv.databaseUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf-large-diffs'),
    });
    let closing: Promise<void> | undefined;
    try {
      // 48 MB: far more than the sockets' buffers hold, so the first answer stays under way.
      const large = await taskWithPatch(pool, `+${'x'.repeat(48 * 1024 * 1024)}\n`);
      const small = await taskWithPatch(pool, '+small\n');
      const stalled = await stalledGet(`${baseUrl}/v1/tasks/${large}/diff`);
      assert.equal(stalled.statusCode, 200);
      assert.equal(stalled.headers['content-type'], 'text/x-diff');

      const another = await fetch(`${baseUrl}/v1/tasks/${large}/diff`);
      assert.equal(another.status, 503);
      assert.equal(another.headers.get('retry-after'), '5');
      assert.match(((await another.json()) as { message: string }).message, /too many large patches/);
      const beside = await fetch(`${baseUrl}/v1/tasks/${small}/diff`);
      assert.equal(beside.status, 200);
      assert.equal(await beside.text(), '+small\n');

      // A client that leaves at once, while its patch is still being read, frees the slot all the same.
      stalled.destroy();
      await getAndLeave(`${baseUrl}/v1/tasks/${large}/diff`);
      const served = await waitFor('a large patch to be served again', async () => {
        const res = await fetch(`${baseUrl}/v1/tasks/${large}/diff`);
        if (res.status === 503) return void (await res.body?.cancel());
        return res;
      });
      assert.equal(served.status, 200);
      assert.equal((await served.arrayBuffer()).byteLength, 48 * 1024 * 1024 + 2);

      const stalledAgain = await stalledGet(`${baseUrl}/v1/tasks/${large}/diff`);
      closing = app.close();
      // Else the server would wait for the stalled client for good.
      await within('the API to stop', 30_000, closing);
      const cut = await within('the stalled answer to close', 10_000, readToItsEnd(stalledAgain));
      assert.equal(cut, true, 'the stalled answer was cut, not ended');
    } finally {
      await (closing ?? app.close());
    }
  });
});
