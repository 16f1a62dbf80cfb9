import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Pool } from 'pg';
import { BudgetService } from '../../src/api/budget/budget.service';
import { BudgetStore } from '../../src/store/budget-store';
import { workflowIdForTask } from '../../workflows/definitions';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';
import { insertTask } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

/**
 * A budget service over `waiting` tasks whose wake signals are counted and held until `release()`.
 */
function heldWakes(waiting: number): { service: BudgetService; signalled: () => number; release: () => void } {
  let signalled = 0;
  let release = (): void => undefined;
  const held = new Promise<void>((r) => (release = r));
  const temporal = {
    withDeadline: <R>(_deadline: number, fn: () => Promise<R>) => fn(),
    workflow: { getHandle: () => ({ signal: async () => void ((signalled += 1), await held) }) },
  } as unknown as Client;
  const store = {
    setDaily: async () => true,
    waitingForDailyBudget: async () => Array.from({ length: waiting }, (_, i) => `task-${i}`),
    daily: async () => ({ dailyUsd: 10, spentTodayUsd: 0, day: '2026-12-06', resetsAt: new Date() }),
  } as unknown as BudgetStore;
  return { service: new BudgetService(temporal, store), signalled: () => signalled, release };
}

describe('a change of the daily budget', () => {
  it('answers at once, then wakes its waiting tasks a few at a time, those that ended meanwhile aside', async () => {
    const waiting = Array.from({ length: 100 }, (_, i) => `task-${i}`);
    let inFlight = 0;
    let most = 0;
    const woken: string[] = [];
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    const temporal = {
      withDeadline: <R>(_deadline: number, fn: () => Promise<R>) => fn(),
      workflow: {
        getHandle: (workflowId: string) => ({
          signal: async () => {
            inFlight += 1;
            most = Math.max(most, inFlight);
            await held;
            inFlight -= 1;
            if (workflowId === 'task-7') throw new WorkflowNotFoundError('ended', workflowId, undefined);
            woken.push(workflowId);
          },
        }),
      },
    } as unknown as Client;
    const store = {
      setDaily: async () => true,
      waitingForDailyBudget: async () => waiting,
      daily: async () => ({ dailyUsd: 10, spentTodayUsd: 0, day: '2026-12-06', resetsAt: new Date() }),
    } as unknown as BudgetStore;
    const warnings: string[] = [];
    const service = new BudgetService(temporal, store);
    (service as unknown as { logger: Pick<Logger, 'warn'> }).logger = { warn: (m: string) => void warnings.push(m) };

    const answer = await service.putDaily(10);
    assert.equal(answer.dailyUsd, 10, 'answered while the wakes are held');
    assert.equal(woken.length, 0);
    release();
    await waitFor('every waiting task to be woken', () => woken.length === 99);
    assert.ok(most <= 32, `${most} signals at once`);
    assert.deepEqual(warnings, [], 'a task that ended needs no waking');
  });

  it('follows changes made during a wake with one more wake, not one per change', async () => {
    const { service, signalled, release } = heldWakes(10);
    for (const cap of [10, 11, 12]) await service.putDaily(cap);
    assert.equal(signalled(), 10, 'the first wake alone is under way');
    release();
    await waitFor('the wake after the changes', () => signalled() >= 20);
    await service.beforeApplicationShutdown();
    assert.equal(signalled(), 20, 'one wake for the two changes made during the first');
  });

  it('stops waking after the batch in flight when the API stops', async () => {
    const { service, signalled, release } = heldWakes(100);
    await service.putDaily(10);
    const stopped = service.beforeApplicationShutdown();
    release();
    await stopped;
    assert.equal(signalled(), 32, 'the first batch only');
  });
});

/**
 * Which changes wake: over the real store, in a database of its own (the daily cap is global to one),
 * with the wake signals counted. A wake starts its signals before the change is answered.
 */
describe('a budget change wakes its waiting tasks only when it may let one start', { timeout: 30_000 }, () => {
  let db: ScratchDatabase;
  let pool: Pool;
  let service: BudgetService;
  const signalled: string[] = [];

  before(async () => {
    db = await createScratchDatabase('budget_wake');
    pool = new Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    const temporal = {
      withDeadline: <R>(_deadline: number, fn: () => Promise<R>) => fn(),
      workflow: { getHandle: (workflowId: string) => ({ signal: async () => void signalled.push(workflowId) }) },
    } as unknown as Client;
    service = new BudgetService(temporal, new BudgetStore(pool));
  });
  after(async () => {
    await service?.beforeApplicationShutdown();
    await pool?.end();
    await db?.drop();
  });

  /** The workflow ids each change signalled, one list per change. */
  const wakesOf = async (changes: (() => Promise<unknown>)[]): Promise<string[][]> => {
    const wakes: string[][] = [];
    for (const change of changes) {
      signalled.length = 0;
      await change();
      wakes.push([...signalled]);
    }
    return wakes;
  };

  it("the daily cap: lifted, or raised above today's spend", async () => {
    const taskId = await insertTask(pool, { prompt: 'waits for the day' });
    await pool.query(
      `UPDATE tasks SET waiting_reason = '{"kind": "daily_budget", "agent": "stand-in"}' WHERE id = $1`,
      [taskId],
    );
    await pool.query(
      `INSERT INTO agent_spend (day, agent, cost_usd) VALUES ((clock_timestamp() AT TIME ZONE 'UTC')::date, 'stand-in', 5)`,
    );
    const waiter = [workflowIdForTask(taskId)];
    const set = (cap: number | null) => () => service.putDaily(cap);
    assert.deepEqual(
      await wakesOf([set(null), set(3), set(3), set(2), set(4), set(8), set(8), set(6), set(null), set(null)]),
      [[], [], [], [], [], waiter, [], [], waiter, []],
      'null→null, none→3, 3→3, 3→2, 2→4 (spent 5) wake none; 4→8 and 6→none wake; 8→8, 8→6, none→none none',
    );
  });

  it("a task's cap: lifted, or raised above what it has spent, while it is queued", async () => {
    const taskId = await insertTask(pool, { prompt: 'waits for its budget', budgetUsd: 1 });
    await pool.query(`INSERT INTO attempts (task_id, number, agent, cost_usd) VALUES ($1, 1, 'stand-in', 2)`, [taskId]);
    const waiter = [workflowIdForTask(taskId)];
    const set = (cap: number | null) => () => service.putTask(taskId, cap);
    assert.deepEqual(
      await wakesOf([set(1), set(0.5), set(1.5), set(3), set(3), set(null), set(null), set(2.5)]),
      [[], [], [], waiter, [], waiter, [], []],
      '1→1, 1→0.5, 0.5→1.5 (spent 2) wake none; 1.5→3 and 3→none wake; 3→3, none→none, none→2.5 none',
    );
  });
});
