import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LOCK_SIGNALS, workflowIdForLocks, type LockRelease, type LockRequest } from '../../workflows/definitions';

/** How many runs `endedWorkflows` asks Temporal about at once. */
const DESCRIBE_AT_ONCE = 20;

/** The statuses of a run that has ended. Any other (running, paused, one this client does not know) is not. */
const ENDED_STATUSES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT', 'CONTINUED_AS_NEW']);

/**
 * How long after a holder's run closed without releasing its locks they are taken back, by default.
 * Temporal does not stop the agent of a terminated task: its worker learns of it at the agent's next
 * heartbeat (within seconds) and then stops it, within its profile's kill grace (5 s by default).
 */
const ENDED_GRACE_SECONDS = 60;

/**
 * Activities of the workflow workers for file locks: what a workflow cannot do itself (signal-with-start
 * another workflow, describe workflows). All are idempotent: the lock manager recognises a repeated
 * request or release by its id, and describing changes nothing.
 */
export function createLockActivities(deps: {
  client: Client;
  /** How often a lock manager started here looks for holders that ended without releasing. */
  reapIntervalSeconds?: number;
  /** How long after such a holder's run closed its locks are taken back (ENDED_GRACE_SECONDS). */
  endedGraceSeconds?: number;
}) {
  const graceMs = (deps.endedGraceSeconds ?? ENDED_GRACE_SECONDS) * 1000;
  /** Signals the repository's lock manager, starting it (on this activity's task queue, the workflow workers') if none runs. */
  const signalManager = async (repo: string, signal: string, arg: LockRequest | LockRelease): Promise<void> => {
    await deps.client.workflow.signalWithStart('lockManagerWorkflow', {
      workflowId: workflowIdForLocks(repo),
      taskQueue: Context.current().info.taskQueue,
      args: [{ repo, reapIntervalSeconds: deps.reapIntervalSeconds }],
      signal,
      signalArgs: [arg],
    });
  };
  return {
    /**
     * Sends the task's lock request to its repository's lock manager, starting the manager if none runs
     * (on this activity's task queue, the workflow workers'). The grant comes back as a signal.
     */
    async requestLocks(args: { repo: string; request: LockRequest }): Promise<void> {
      await signalManager(args.repo, LOCK_SIGNALS.acquire, args.request);
    },

    /**
     * Sends a release to the repository's lock manager, starting the manager if none runs: for a task
     * cancelled while its request, which would start the manager, was on its way. The manager remembers
     * the release, and ignores the request when it comes.
     */
    async releaseLocks(args: { repo: string; release: LockRelease }): Promise<void> {
      await signalManager(args.repo, LOCK_SIGNALS.release, args.release);
    },

    /**
     * Of the given workflow runs, those that ended at least the grace ago (or that Temporal no longer
     * knows), as `<workflow id>/<run id>`. A paused run has not ended. Asked
     * `DESCRIBE_AT_ONCE` at a time: a long lock table is checked within the activity's time limit, and
     * the manager, which grants nothing meanwhile, waits for it briefly. A run Temporal will not describe
     * now (slow, overloaded, refusing) counts as running, to be looked at again at the next check:
     * failing the whole check would have the manager retry it, granting nothing, for as long as that lasts.
     */
    async endedWorkflows(args: { runs: { workflowId: string; runId: string }[] }): Promise<string[]> {
      const hasEnded = async ({ workflowId, runId }: { workflowId: string; runId: string }): Promise<boolean> => {
        try {
          const run = await deps.client.workflow.getHandle(workflowId, runId).describe();
          if (!ENDED_STATUSES.has(run.status.name)) return false;
          return run.closeTime === undefined || Date.now() - run.closeTime.getTime() >= graceMs;
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return true;
          log.warn('could not tell whether a lock holder still runs; asking again at the next check', {
            workflowId,
            runId,
            error: (err as Error).message,
          });
          return false;
        }
      };
      const ended: string[] = [];
      for (let at = 0; at < args.runs.length; at += DESCRIBE_AT_ONCE) {
        const batch = args.runs.slice(at, at + DESCRIBE_AT_ONCE);
        const answers = await Promise.all(batch.map(hasEnded));
        ended.push(...batch.filter((_, i) => answers[i]).map((run) => `${run.workflowId}/${run.runId}`));
      }
      return ended;
    },
  };
}
