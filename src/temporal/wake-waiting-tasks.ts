import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WAKE_SIGNAL } from '../../workflows/definitions';

/** Tasks signalled at once: thousands may wait, each signal a call to Temporal. */
const WAKE_AT_ONCE = 32;
/** How long one wake signal may take: a task that misses it still looks again at its next recheck. */
const WAKE_DEADLINE_MS = 5000;

/**
 * Sends the `wake` signal to tasks waiting for admission, a few at a time, so they ask again at once
 * rather than at their next recheck. Best effort: a task that misses it still looks again then, and one
 * that ended meanwhile needs none. Stops after the batch in flight once `stopping()` (the API stops).
 * Answers how many were woken; the misses are logged, as waiting for `what`.
 */
export async function wakeWaitingTasks(
  temporal: Client,
  workflowIds: string[],
  opts: { what: string; logger: { warn: (message: string) => void }; stopping?: () => boolean },
): Promise<number> {
  let woken = 0;
  let missed = 0;
  let reason = '';
  for (let at = 0; at < workflowIds.length && !opts.stopping?.(); at += WAKE_AT_ONCE) {
    const signals = workflowIds
      .slice(at, at + WAKE_AT_ONCE)
      .map((workflowId) =>
        temporal.withDeadline(Date.now() + WAKE_DEADLINE_MS, () =>
          temporal.workflow.getHandle(workflowId).signal(WAKE_SIGNAL),
        ),
      );
    for (const result of await Promise.allSettled(signals)) {
      if (result.status === 'fulfilled') woken += 1;
      else if (!(result.reason instanceof WorkflowNotFoundError)) {
        missed += 1;
        reason = (result.reason as Error).message;
      }
    }
  }
  if (missed > 0) {
    opts.logger.warn(
      `could not wake ${missed} of ${workflowIds.length} task(s) waiting for ${opts.what} (${reason}): they look again at their next recheck`,
    );
  }
  return woken;
}
