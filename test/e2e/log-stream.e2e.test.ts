import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { TaskActivityListener } from '../../src/api/logs/task-activity-listener';
import { readSse } from '../../src/cli/sse';
import { startInProcessApi, type InProcessApi } from '../support/in-process-api';
import { stalledGet, readToItsEnd } from '../support/slow-clients';
import { insertTask } from '../support/task-rows';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor, within } from '../support/wait-for';

/** Stores `count` chunks from `seq` on, each `text`, as the task's first attempt's stdout. */
async function storeChunks(pool: Pool, taskId: string, seq: number, count: number, text: string): Promise<void> {
  await pool.query(
    `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data)
     SELECT $1, 1, 1, n, 'stdout', $4 FROM generate_series($2::int, $2::int + $3::int - 1) AS n`,
    [taskId, seq, count, text],
  );
}

/** The API's live log stream and plain log, against the API in this process. */
describe('task logs: streams and downloads', { timeout: 60_000 }, () => {
  let pool: Pool;
  let api: InProcessApi;

  before(async () => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    api = await startInProcessApi({
      DATABASE_URL: testEnv.databaseUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf-log-stream'),
    });
  });
  after(async () => {
    await api.app.close();
    await pool.end();
  });

  it('wakes a follower that wrote the task id in upper case as soon as a chunk is stored', async () => {
    const abort = new AbortController();
    try {
      // The first follower connects the API's listener; listening, a follower re-reads only every 10 s
      // unless a notification wakes it.
      const warmUp = await insertTask(pool, { prompt: 'never started' });
      await fetch(`${api.baseUrl}/v1/tasks/${warmUp}/logs?follow=1`, { signal: abort.signal });
      await waitFor('the API to listen for task activity', () => api.app.get(TaskActivityListener).listening);
      const taskId = await insertTask(pool, { prompt: 'never started' });
      await storeChunks(pool, taskId, 0, 1, 'first');
      const res = await fetch(`${api.baseUrl}/v1/tasks/${taskId.toUpperCase()}/logs?follow=1`, {
        signal: abort.signal,
      });
      assert.equal(res.status, 200);
      assert.ok(res.body);
      const events = readSse(res.body);
      const text = async (): Promise<string | undefined> => {
        const { value } = await events.next();
        return value?.event === 'log' ? (JSON.parse(value.data) as { text: string }).text : value?.event;
      };
      // Sent after the follower's first read: it now waits, for the next chunk's notification.
      assert.equal(await text(), 'first');
      await storeChunks(pool, taskId, 1, 1, 'second');
      assert.equal(await within('the next chunk to arrive', 3_000, text()), 'second');
    } finally {
      abort.abort();
    }
  });

  it('sends a log of many pages, some chunks larger than a page, whole and in order', async () => {
    const taskId = await insertTask(pool, { prompt: 'never started' });
    // A page holds at most 256 KiB: chunks of 100 KB go two to a page, and one of 300 KB alone.
    const sizes = [100_000, 100_000, 100_000, 300_000, 5, 100_000, 300_000, 300_000, 100_000, 7];
    const texts = sizes.map((size, seq) => `${seq}:`.padEnd(size, String.fromCharCode(97 + seq)));
    await pool.query(
      `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data)
       SELECT $1, 1, 1, n - 1, 'stdout', text FROM unnest($2::text[]) WITH ORDINALITY AS t(text, n)`,
      [taskId, texts],
    );
    await pool.query(`UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id = $1`, [taskId]);

    const plain = await fetch(`${api.baseUrl}/v1/tasks/${taskId}/logs`);
    assert.equal(plain.status, 200);
    assert.equal(await plain.text(), texts.join(''), 'the plain log is every chunk, in order');

    const res = await fetch(`${api.baseUrl}/v1/tasks/${taskId}/logs?follow=1`);
    assert.equal(res.status, 200);
    assert.ok(res.body);
    const sent: string[] = [];
    let end: unknown;
    for await (const event of readSse(res.body)) {
      if (event.event === 'log') sent.push((JSON.parse(event.data) as { text: string }).text);
      else if (event.event === 'end') end = JSON.parse(event.data);
    }
    assert.deepEqual(end, { status: 'succeeded', run: 1 });
    assert.equal(sent.length, texts.length, 'no chunk is missing, none repeats');
    sent.forEach((text, seq) => assert.equal(text, texts[seq], `chunk ${seq} comes in its place`));
  });

  it('cuts, when the API stops, a stream and a download whose clients stopped reading, and stops', async () => {
    const stopping = await startInProcessApi({
      DATABASE_URL: testEnv.databaseUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf-log-stream-stop'),
    });
    const taskId = await insertTask(pool, { prompt: 'never started' });
    // 48 MB, in chunks of 16 MB: a stream told to end stops between pages only, and a page (here one
    // chunk) holds far more than the sockets' buffers do.
    await storeChunks(pool, taskId, 0, 3, 'x'.repeat(16_000_000));
    const follower = await stalledGet(`${stopping.baseUrl}/v1/tasks/${taskId}/logs?follow=1`);
    const download = await stalledGet(`${stopping.baseUrl}/v1/tasks/${taskId}/logs`);
    assert.equal(follower.statusCode, 200);
    assert.equal(download.statusCode, 200);
    // Else the server would wait for both for good.
    await within('the API to stop', 20_000, stopping.app.close());
    // Read now, each ends cut short: what was sent, then no proper end.
    assert.equal(await within('the stream to close', 10_000, readToItsEnd(follower)), true, 'the stream was cut');
    assert.equal(
      await within('the download to close', 10_000, readToItsEnd(download)),
      true,
      'the download failed, not ended',
    );
  });
});
