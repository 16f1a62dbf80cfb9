import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { SlotWaitersStore } from '../store/slot-waiters-store';
import { WAKE_SIGNAL } from '../../workflows/definitions';

/**
 * Wakes the task next in line for a slot of an agent at its concurrency limit, when an attempt frees
 * one: the task asks for admission at once instead of at its next recheck, which grows to minutes for
 * a task that waits long (so its history stays small). If another task takes the slot first, the woken
 * one simply waits again.
 */
export function slotWaiterWaker(pool: Pool, client: Client): (agent: string) => Promise<void> {
  const waiters = new SlotWaitersStore(pool);
  return async (agent) => {
    const workflowId = await waiters.next(agent);
    if (workflowId !== undefined) await client.workflow.getHandle(workflowId).signal(WAKE_SIGNAL);
  };
}
