import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WAKE_SIGNAL } from '../../workflows/definitions';

/** Tasks signalled at once: thousands may wait, each signal a call to Temporal. */
const WAKE_AT_ONCE = 32;
/** How long one wake signal may take: a task that misses it still looks again at its next recheck. */
const WAKE_DEADLINE_MS = 5000;

/**
 * Sends the `wake` signal to tasks waiting for admission, a few at a time, so they ask again at once
 * rather than at their next recheck. Best effort: a task that misses it still looks again then, and one
 * that ended meanwhile needs none. Stops after the batch in flight once `stopping()` (the API stops);
 * with a `deadline` (epoch ms), stops there, the signals under way included, so that a request that
 * wakes tasks answers in time however slow Temporal is. Answers how many were woken; the misses (the
 * tasks it had no time for too) are logged, as waiting for `what`.
 */
export async function wakeWaitingTasks(
  temporal: Client,
  workflowIds: string[],
  opts: { what: string; logger: { warn: (message: string) => void }; stopping?: () => boolean; deadline?: number },
): Promise<number> {
  const deadline = opts.deadline ?? Infinity;
  let woken = 0;
  let missed = 0;
  let reason = '';
  let at = 0;
  for (; at < workflowIds.length && !opts.stopping?.() && Date.now() < deadline; at += WAKE_AT_ONCE) {
    const signalDeadline = Math.min(Date.now() + WAKE_DEADLINE_MS, deadline);
    const signals = workflowIds
      .slice(at, at + WAKE_AT_ONCE)
      .map((workflowId) =>
        temporal.withDeadline(signalDeadline, () => temporal.workflow.getHandle(workflowId).signal(WAKE_SIGNAL)),
      );
    for (const result of await Promise.allSettled(signals)) {
      if (result.status === 'fulfilled') woken += 1;
      else if (!(result.reason instanceof WorkflowNotFoundError)) {
        missed += 1;
        reason = (result.reason as Error).message;
      }
    }
  }
  // Left for lack of time (not for stopping: the API's shutdown says why of itself).
  if (at < workflowIds.length && !opts.stopping?.()) {
    missed += workflowIds.length - at;
    reason ||= 'out of time';
  }
  if (missed > 0) {
    opts.logger.warn(
      `could not wake ${missed} of ${workflowIds.length} task(s) waiting for ${opts.what} (${reason}): they look again at their next recheck`,
    );
  }
  return woken;
}
