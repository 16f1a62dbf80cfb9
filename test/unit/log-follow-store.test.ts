import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { LogFollowStore } from '../../src/store/log-follow-store';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

/** Stores one chunk of the task's first run and attempt per size, each that many 'x'. */
async function storeChunks(pool: Pool, taskId: string, sizes: number[]): Promise<void> {
  await pool.query(
    `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data)
     SELECT $1, 1, 1, n - 1, 'stdout', repeat('x', size) FROM unnest($2::int[]) WITH ORDINALITY AS s(size, n)`,
    [taskId, sizes],
  );
}

describe('the pages a log reader reads', () => {
  let pool: Pool;
  let store: LogFollowStore;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    store = new LogFollowStore(pool);
  });
  after(() => pool.end());

  const start = { attempt: 0, seq: -1 };

  it('hold at most the bound in bytes, and say whether chunks follow', async () => {
    const taskId = await insertTask(pool, { prompt: 'p' });
    await storeChunks(pool, taskId, [400, 500, 200, 300]);
    const bound = { rows: 200, bytes: 1000 };
    const first = await store.chunksAfter(taskId, 1, start, undefined, bound);
    // 400 + 500 fits; 400 + 500 + 200 would not.
    assert.deepEqual(
      first.chunks.map((c) => [c.seq, c.data.length]),
      [
        [0, 400],
        [1, 500],
      ],
    );
    assert.equal(first.more, true, 'a page cut by bytes says that chunks follow');
    const second = await store.chunksAfter(taskId, 1, { attempt: 1, seq: 1 }, undefined, bound);
    assert.deepEqual(
      second.chunks.map((c) => c.seq),
      [2, 3],
    );
    assert.equal(second.more, false, 'the last page says none follows');
  });

  it('hold one chunk larger than the bound, alone', async () => {
    const taskId = await insertTask(pool, { prompt: 'p' });
    await storeChunks(pool, taskId, [3000, 10]);
    const page = await store.chunksAfter(taskId, 1, start, undefined, { rows: 200, bytes: 1000 });
    assert.deepEqual(
      page.chunks.map((c) => c.data.length),
      [3000],
    );
    assert.equal(page.more, true);
  });

  it('count bytes, not characters', async () => {
    const taskId = await insertTask(pool, { prompt: 'p' });
    // 'é' is two bytes in UTF-8: the first chunk's 400 characters are 800 bytes.
    await pool.query(
      `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data)
       VALUES ($1, 1, 1, 0, 'stdout', repeat('é', 400)), ($1, 1, 1, 1, 'stdout', repeat('x', 400))`,
      [taskId],
    );
    const page = await store.chunksAfter(taskId, 1, start, undefined, { rows: 200, bytes: 1000 });
    assert.equal(page.chunks.length, 1);
    assert.equal(page.more, true);
  });

  it('hold at most the bound in rows, and say so when it cut them', async () => {
    const taskId = await insertTask(pool, { prompt: 'p' });
    await storeChunks(pool, taskId, [1, 1, 1]);
    const cut = await store.chunksAfter(taskId, 1, start, undefined, { rows: 2, bytes: 1000 });
    assert.deepEqual([cut.chunks.length, cut.more], [2, true]);
    const exact = await store.chunksAfter(taskId, 1, start, undefined, { rows: 3, bytes: 1000 });
    assert.deepEqual(
      [exact.chunks.length, exact.more],
      [3, false],
      'a page that took the last chunk says none follows',
    );
  });
});
