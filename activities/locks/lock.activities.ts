import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LOCK_SIGNALS, workflowIdForLocks, type LockRelease, type LockRequest } from '../../workflows/definitions';
import { withinDeadline } from '../../src/async/within-deadline';

/** How many runs `endedWorkflows` asks Temporal about at once. */
const DESCRIBE_AT_ONCE = 20;
/**
 * How long one describe may take. Past it the run counts as running, to be asked about again at the
 * next check: without it a client call waits 30 s, and longer with its retries.
 */
const DESCRIBE_DEADLINE_MS = 5_000;
/**
 * How long after it began `endedWorkflows` still starts a batch; the runs left count as running. With
 * the last batch's deadline a check ends within 20 s, inside its activity's 30 s start-to-close timeout
 * (lock-manager.workflow.ts): a check that timed out would be retried while the manager grants nothing.
 */
const CHECK_BUDGET_MS = 15_000;

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
  /** How long one describe of a holder may take (DESCRIBE_DEADLINE_MS). */
  describeDeadlineMs?: number;
  /** How long after it began a check of holders still asks about more of them (CHECK_BUDGET_MS). */
  checkBudgetMs?: number;
}) {
  const graceMs = (deps.endedGraceSeconds ?? ENDED_GRACE_SECONDS) * 1000;
  const describeDeadlineMs = deps.describeDeadlineMs ?? DESCRIBE_DEADLINE_MS;
  const checkBudgetMs = deps.checkBudgetMs ?? CHECK_BUDGET_MS;
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
     * knows), as `<workflow id>/<run id>`. A paused run has not ended. Asked `DESCRIBE_AT_ONCE` at a
     * time, each within `DESCRIBE_DEADLINE_MS`, and no batch is started after `CHECK_BUDGET_MS`: the
     * check ends well within the activity's time limit, and the manager, which grants nothing meanwhile,
     * waits for it briefly. A run Temporal does not describe in time or will not describe now (slow,
     * overloaded, refusing), and one not asked about, counts as running, to be looked at again at the
     * next check: failing the whole check would have the manager retry it, granting nothing, for as long
     * as that lasts. Cancelled (its attempt timed out, its worker stops), it stops at once.
     */
    async endedWorkflows(args: { runs: { workflowId: string; runId: string }[] }): Promise<string[]> {
      const ctx = Context.current();
      const stopAt = Date.now() + checkBudgetMs;
      const hasEnded = async ({ workflowId, runId }: { workflowId: string; runId: string }): Promise<boolean> => {
        try {
          // The deadline ends the request; the race ends the wait should the connection's own retries
          // outlast it (a NativeConnection ignores an AbortSignal).
          const run = await withinDeadline(
            deps.client.withDeadline(Date.now() + describeDeadlineMs, () =>
              deps.client.workflow.getHandle(workflowId, runId).describe(),
            ),
            describeDeadlineMs,
            'Temporal',
          );
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
      const batches = Math.ceil(args.runs.length / DESCRIBE_AT_ONCE);
      // From a batch picked at random: the runs one check had no time for are asked about by another.
      const first = Math.floor(Math.random() * batches);
      let asked = 0;
      for (let i = 0; i < batches; i++) {
        if (Date.now() >= stopAt) {
          log.warn('out of time to ask whether lock holders still run; asking about the rest at the next check', {
            unasked: args.runs.length - asked,
          });
          break;
        }
        // A cancellation from the server (this attempt timed out) comes back with a heartbeat.
        ctx.heartbeat();
        const at = ((first + i) % batches) * DESCRIBE_AT_ONCE;
        const batch = args.runs.slice(at, at + DESCRIBE_AT_ONCE);
        asked += batch.length;
        const answers = await Promise.race([Promise.all(batch.map(hasEnded)), ctx.cancelled]);
        ended.push(...batch.filter((_, i) => answers[i]).map((run) => `${run.workflowId}/${run.runId}`));
      }
      return ended;
    },
  };
}
