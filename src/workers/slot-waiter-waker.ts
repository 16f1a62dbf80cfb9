import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { SlotWaitersStore } from '../store/slot-waiters-store';
import { wakeWaitingTasks } from '../temporal/wake-waiting-tasks';

/**
 * Wakes the tasks next in line for the free slots of an agent at its concurrency limit, when an attempt
 * frees one: they ask for admission at once instead of at their next recheck, which grows to minutes
 * for a task that waits long (so its history stays small). If another task takes a slot first, the
 * woken one simply waits again. Each signal has a deadline (wakeWaitingTasks), and `logger` hears of
 * the ones missed: those tasks look again at their next recheck.
 */
export function slotWaiterWaker(
  pool: Pool,
  client: Client,
  logger: { warn: (message: string) => void },
): (agent: string, maxConcurrent: number) => Promise<void> {
  const waiters = new SlotWaitersStore(pool);
  return async (agent, maxConcurrent) => {
    const workflowIds = await waiters.next(agent, maxConcurrent);
    await wakeWaitingTasks(client, workflowIds, { what: `a slot of ${agent}`, logger });
  };
}
