import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { BreakerResetStore } from '../store/breaker-reset-store';
import { wakeWaitingTasks } from '../temporal/wake-waiting-tasks';

/**
 * Wakes the tasks waiting for an agent whose half-open breaker its probe has just closed, as the
 * operator's reset does: they ask for admission at once instead of at their next look, which comes
 * every 30 s while a probe runs and, for a task that waited long, minutes apart. Each signal has a
 * deadline (wakeWaitingTasks), and `logger` hears of the ones missed: those tasks look again then.
 */
export function breakerWaiterWaker(
  pool: Pool,
  client: Client,
  logger: { warn: (message: string) => void },
): (agent: string) => Promise<void> {
  const breakers = new BreakerResetStore(pool);
  return async (agent) => {
    const workflowIds = await breakers.waitingFor(agent);
    await wakeWaitingTasks(client, workflowIds, { what: `${agent}'s breaker`, logger });
  };
}
