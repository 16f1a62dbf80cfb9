import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { LockActivities } from '../activities';
import { workflowIdForLocks, type TaskLocks } from './definitions';
import { locksGrantedSignal, releaseLocksSignal } from './lock-manager.workflow';

const lockActivities = proxyActivities<LockActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * Runs `work` holding all of the task's file locks: asks its repository's lock manager for every glob
 * at once, waits (durably, as long as it takes) for the grant, and releases in a non-cancellable
 * `finally`, so success, failure and cancellation all release. A terminated or timed-out workflow runs
 * no `finally`: the lock manager reaps its locks.
 *
 * When no lock manager runs yet, the task was cancelled while its request, which would start the
 * manager, was on its way: then, if `releaseStartsManager()` (the task takes the patch), the release
 * starts the manager, which remembers it and ignores the request when it comes. Before, the request
 * started the manager after the release and was granted to a task that would never release it, until
 * the manager's next reap.
 */
export async function withFileLocks<T>(
  locks: TaskLocks,
  taskId: string,
  releaseStartsManager: () => boolean,
  work: () => Promise<T>,
): Promise<T> {
  const { workflowId, runId } = workflowInfo();
  const requestId = `${workflowId}/${runId}`;
  let granted = false;
  // The manager signals this run only, and a run asks once: any grant is ours. (Comparing request ids
  // would not replay: a replayed run may carry another run id.)
  setHandler(locksGrantedSignal, () => {
    granted = true;
  });
  try {
    await lockActivities.requestLocks({
      repo: locks.repo,
      request: { requestId, workflowId, runId, taskId, globs: locks.globs },
    });
    await condition(() => granted);
    return await work();
  } finally {
    await CancellationScope.nonCancellable(async () => {
      try {
        await getExternalWorkflowHandle(workflowIdForLocks(locks.repo)).signal(releaseLocksSignal, { requestId });
      } catch (err) {
        // No lock manager runs: the request has not reached one (yet).
        if (releaseStartsManager()) await lockActivities.releaseLocks({ repo: locks.repo, release: { requestId } });
        else log.warn('could not release file locks', { requestId, error: String(err) });
      }
    });
  }
}
