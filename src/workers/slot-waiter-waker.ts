import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { SlotWaitersStore } from '../store/slot-waiters-store';
import { WAKE_SIGNAL } from '../../workflows/definitions';

/**
 * Wakes the tasks next in line for the free slots of an agent at its concurrency limit, when an attempt
 * frees one: they ask for admission at once instead of at their next recheck, which grows to minutes
 * for a task that waits long (so its history stays small). If another task takes a slot first, the
 * woken one simply waits again.
 */
export function slotWaiterWaker(pool: Pool, client: Client): (agent: string, maxConcurrent: number) => Promise<void> {
  const waiters = new SlotWaitersStore(pool);
  return async (agent, maxConcurrent) => {
    const workflowIds = await waiters.next(agent, maxConcurrent);
    await Promise.all(workflowIds.map((id) => client.workflow.getHandle(id).signal(WAKE_SIGNAL)));
  };
}
