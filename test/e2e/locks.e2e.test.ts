import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, getTask, submit, waitForEnd, type ErrorBody } from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { startStack, type Stack } from '../support/stack';
import { waitFor } from '../support/wait-for';

interface LockEntry {
  taskId: string;
  locks: string[];
}
interface LocksView {
  repo: string;
  holders: LockEntry[];
  waiters: LockEntry[];
}

describe('file locks over HTTP against the whole service', () => {
  let stack: Stack;
  let repo: string;

  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'atelier-locks-e2e-'));
    stack = await startStack();
  });
  after(async () => {
    try {
      if (stack) await stopStackCleanly(stack);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  const locks = async (): Promise<LocksView> => {
    const res = await call(stack.baseUrl, 'GET', `/v1/locks?repo=${encodeURIComponent(repo)}`);
    assert.equal(res.status, 200, res.text);
    return res.json as LocksView;
  };

  it('rejects locks without a workdir or outside the repository, naming the field', async () => {
    const noWorkdir = await call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt: 'x', locks: ['src/**'] } });
    assert.equal(noWorkdir.status, 400);
    assert.equal((noWorkdir.json as ErrorBody).fields?.[0]?.field, 'locks');
    const escaping = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', workdir: repo, locks: ['../other/**'] },
    });
    assert.equal(escaping.status, 400);
    assert.match((escaping.json as ErrorBody).message, /must not leave the repository/);
    const inPlan = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: { tasks: [{ key: 'a', prompt: 'x', locks: ['/abs'], workdir: repo }] },
    });
    assert.equal(inPlan.status, 400);
    assert.equal((inPlan.json as ErrorBody).fields?.[0]?.field, 'tasks.0.locks');
    const relative = await call(stack.baseUrl, 'GET', '/v1/locks?repo=relative/path');
    assert.equal(relative.status, 400);
    // Its lock manager's workflow id could not hold it: a 400, not a 503 that no retry mends.
    const long = await call(stack.baseUrl, 'GET', `/v1/locks?repo=/${'x'.repeat(1000)}`);
    assert.equal(long.status, 400, long.text);
    assert.match((long.json as ErrorBody).message, /repo must be 1 to 994 bytes long/);
  });

  it('shows holders and waiters, and the waiter runs once the holder is cancelled', async () => {
    assert.deepEqual(await locks(), { repo, workflowId: `locks:${repo}`, holders: [], waiters: [] });
    const holder = await submit(stack.baseUrl, { prompt: '@hang', workdir: repo, locks: ['src/**'] });
    await waitFor('the holder to run', async () => (await getTask(stack.baseUrl, holder.id)).status === 'running');
    const waiter = await submit(stack.baseUrl, { prompt: 'done', workdir: repo, locks: ['src/a.ts', 'README.md'] });
    const table = await waitFor('the waiter to queue', async () => {
      const t = await locks();
      return t.waiters.length === 1 && t;
    });
    assert.deepEqual(
      table.holders.map((h) => [h.taskId, h.locks]),
      [[holder.id, ['src/**']]],
    );
    assert.deepEqual(
      table.waiters.map((w) => [w.taskId, w.locks]),
      [[waiter.id, ['src/a.ts', 'README.md']]],
    );
    assert.equal((await getTask(stack.baseUrl, waiter.id)).status, 'queued');
    assert.deepEqual(((await getTask(stack.baseUrl, waiter.id)) as unknown as { locks: string[] }).locks, [
      'src/a.ts',
      'README.md',
    ]);
    assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${holder.id}/cancel`)).status, 202);
    assert.equal((await waitForEnd(stack.baseUrl, waiter.id)).status, 'succeeded');
    assert.equal((await getTask(stack.baseUrl, holder.id)).status, 'cancelled');
    await waitFor('the table to empty', async () => {
      const t = await locks();
      return t.holders.length === 0 && t.waiters.length === 0;
    });
  });
});
