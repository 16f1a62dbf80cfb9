import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { BudgetService } from '../../src/api/budget/budget.service';
import type { BudgetStore } from '../../src/store/budget-store';
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
    setDaily: async () => undefined,
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
      setDaily: async () => undefined,
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
