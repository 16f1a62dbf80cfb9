import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import {
  LOCK_TABLE_SIZE_QUERY,
  workflowIdForLocks,
  type LockManagerInput,
  type LockTableSize,
} from '../../workflows/definitions';
import { call, getTask, submit, waitForEnd, type ErrorBody } from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { startStack, type Stack } from '../support/stack';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

interface LockEntry {
  taskId: string;
  runId: string;
  locks: string[];
}
interface LocksView {
  repo: string;
  workflowId: string;
  holders: LockEntry[];
  waiters: LockEntry[];
}

describe('file locks over HTTP against the whole service', () => {
  let stack: Stack;
  let repo: string;
  let temporal: Connection;
  let client: Client;
  const workflowQueue = uniqueQueue('wf-locks-e2e');

  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'atelier-locks-e2e-'));
    temporal = await Connection.connect({ address: testEnv.temporalAddress });
    client = new Client({ connection: temporal, namespace: testEnv.namespace });
    // A small lock table (the least allowed), so that two tasks fill it.
    stack = await startStack({ ATELIER_LOCK_TABLE_MAX_BYTES: '10000', ATELIER_WORKFLOW_QUEUE: workflowQueue });
  });
  after(async () => {
    try {
      if (stack) await stopStackCleanly(stack);
    } finally {
      await temporal?.close();
      rmSync(repo, { recursive: true, force: true });
    }
  });

  const locks = async (of = repo): Promise<LocksView> => {
    const res = await call(stack.baseUrl, 'GET', `/v1/locks?repo=${encodeURIComponent(of)}`);
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
    const directory = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: 'x', workdir: repo, locks: ['src/', 'lib/./'] },
    });
    assert.equal(directory.status, 400);
    assert.equal((directory.json as ErrorBody).fields?.[0]?.field, 'locks');
    assert.match(
      (directory.json as ErrorBody).message,
      /lock "src\/" names a directory: name its files, as "src\/\*\*" does/,
    );
    assert.match(
      (directory.json as ErrorBody).message,
      /lock "lib\/\.\/" names a directory: name its files, as "lib\/\*\*" does/,
    );
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

  it('refuses with 429 locks a full lock table has no room for, starting nothing, and takes them once it has', async () => {
    const full = mkdtempSync(join(tmpdir(), 'atelier-locks-full-'));
    try {
      // Ten globs of 476 characters: about half of the table's 10,000.
      const big = (dir: string) => Array.from({ length: 10 }, (_, i) => `${dir}/${i}/${'x'.repeat(470)}`);
      const holder = await submit(stack.baseUrl, { prompt: '@hang', workdir: full, locks: big('src') });
      await waitFor('the first task to hold its locks', async () => (await locks(full)).holders.length === 1);
      const label = `refused-${process.pid}-${Date.now()}`;
      const refused = await call(stack.baseUrl, 'POST', '/v1/tasks', {
        body: { prompt: 'x', workdir: full, locks: big('lib'), labels: { probe: label } },
      });
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.headers.get('retry-after'), '30');
      assert.match((refused.json as ErrorBody).message, /lock table of repository .+ is full \(1 tasks hold or wait/);
      const inPlan = await call(stack.baseUrl, 'POST', '/v1/plans', {
        body: { tasks: [{ key: 'a', prompt: 'x', workdir: full, locks: big('lib'), labels: { probe: label } }] },
      });
      assert.equal(inPlan.status, 429, inPlan.text);
      const stored = await call(stack.baseUrl, 'GET', `/v1/tasks?label=probe:${label}`);
      assert.deepEqual((stored.json as { items: unknown[] }).items, [], 'nothing was stored');
      // Small locks still fit beside the holder's.
      const small = await submit(stack.baseUrl, { prompt: 'done', workdir: full, locks: ['README.md'] });
      assert.equal((await waitForEnd(stack.baseUrl, small.id)).status, 'succeeded');
      assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${holder.id}/cancel`)).status, 202);
      await waitFor('the table to empty', async () => (await locks(full)).holders.length === 0);
      const later = await submit(stack.baseUrl, { prompt: 'done', workdir: full, locks: big('lib') });
      assert.equal((await waitForEnd(stack.baseUrl, later.id)).status, 'succeeded');
      // Its release reaches the lock manager just after its end is recorded.
      await waitFor('the table to empty again', async () => (await locks(full)).holders.length === 0);
      // A plan counts the locks of as many tasks as may run at once: two halves of the table, one at a time.
      const twoHalves = (maxParallel: number) =>
        call(stack.baseUrl, 'POST', '/v1/plans', {
          body: {
            maxParallel,
            tasks: [
              { key: 'a', prompt: 'a done', workdir: full, locks: big('src') },
              { key: 'b', prompt: 'b done', workdir: full, locks: big('lib') },
            ],
          },
        });
      const plan = await twoHalves(1);
      assert.equal(plan.status, 201, plan.text);
      // Locks that no table of this size could hold are a 400 naming the field, not a 429 for ever.
      const never = Array.from({ length: 30 }, (_, i) => `docs/${i}/${'x'.repeat(470)}`);
      const tooBig = await call(stack.baseUrl, 'POST', '/v1/tasks', {
        body: { prompt: 'x', workdir: full, locks: never },
      });
      assert.equal(tooBig.status, 400, tooBig.text);
      assert.equal((tooBig.json as ErrorBody).fields?.[0]?.field, 'locks');
      assert.match(
        (tooBig.json as ErrorBody).fields?.[0]?.problems[0] ?? '',
        /holds at most 10000 \(ATELIER_LOCK_TABLE_MAX_BYTES\)/,
      );
      const planTooBig = await twoHalves(2);
      assert.equal(planTooBig.status, 400, planTooBig.text);
      assert.equal((planTooBig.json as ErrorBody).fields?.[0]?.field, 'tasks');
      const planId = (plan.json as { id: string }).id;
      await waitFor('the plan to succeed', async () => {
        const p = await call(stack.baseUrl, 'GET', `/v1/plans/${planId}`);
        return (p.json as { status: string }).status === 'succeeded';
      });
    } finally {
      rmSync(full, { recursive: true, force: true });
    }
  });

  it('does not count the releases a lock manager remembers: a repository whose tasks all ended has room', async () => {
    const idle = realpathSync(mkdtempSync(join(tmpdir(), 'atelier-locks-idle-')));
    try {
      // 110 tasks released within the hour, none since: their releases (95 bytes each) are more than
      // the table's 10,000 bytes, and stay until another release comes.
      const earlyReleases = Object.fromEntries(
        Array.from({ length: 110 }, () => [`task-${randomUUID()}/${randomUUID()}`, Date.now()]),
      );
      const input: LockManagerInput = { repo: idle, earlyReleases };
      const manager = await client.workflow.start('lockManagerWorkflow', {
        workflowId: workflowIdForLocks(idle),
        taskQueue: workflowQueue,
        args: [input],
      });
      const size = await manager.query<LockTableSize>(LOCK_TABLE_SIZE_QUERY);
      assert.equal(size.entries, 0);
      assert.ok(size.carriedBytes > 10_000, `it carries ${size.carriedBytes} bytes`);
      const res = await call(stack.baseUrl, 'POST', '/v1/tasks', {
        body: { prompt: 'done', workdir: idle, locks: ['README.md'] },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal((await waitForEnd(stack.baseUrl, (res.json as { id: string }).id)).status, 'succeeded');
    } finally {
      rmSync(idle, { recursive: true, force: true });
    }
  });

  it('shows holders and waiters, and the waiter runs once the holder is cancelled', async () => {
    assert.deepEqual(await locks(), { repo, workflowId: `locks:${repo}`, holders: [], waiters: [] });
    // A path that is not there is made plain, as tasks make it, so it names the same lock manager.
    assert.equal((await locks('/atelier-gone/app/../app/')).workflowId, 'locks:/atelier-gone/app');
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
    assert.deepEqual(
      [...table.holders, ...table.waiters].map((r) => r.runId),
      [holder.runId, waiter.runId],
      'each names the run that asked',
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
