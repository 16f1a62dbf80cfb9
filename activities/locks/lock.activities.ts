import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LOCK_SIGNALS, workflowIdForLocks, type LockRequest } from '../../workflows/definitions';

/** How many runs `endedWorkflows` asks Temporal about at once. */
const DESCRIBE_AT_ONCE = 20;

/**
 * Activities of the workflow workers for file locks: what a workflow cannot do itself (signal-with-start
 * another workflow, describe workflows). Both are idempotent: the lock manager recognises a repeated
 * request by its id, and describing changes nothing.
 */
export function createLockActivities(deps: {
  client: Client;
  /** How often a lock manager started here looks for holders that ended without releasing. */
  reapIntervalSeconds?: number;
}) {
  return {
    /**
     * Sends the task's lock request to its repository's lock manager, starting the manager if none runs
     * (on this activity's task queue, the workflow workers'). The grant comes back as a signal.
     */
    async requestLocks(args: { repo: string; request: LockRequest }): Promise<void> {
      await deps.client.workflow.signalWithStart('lockManagerWorkflow', {
        workflowId: workflowIdForLocks(args.repo),
        taskQueue: Context.current().info.taskQueue,
        args: [{ repo: args.repo, reapIntervalSeconds: deps.reapIntervalSeconds }],
        signal: LOCK_SIGNALS.acquire,
        signalArgs: [args.request],
      });
    },

    /**
     * Of the given workflow runs, those that no longer run, as `<workflow id>/<run id>`. Asked
     * `DESCRIBE_AT_ONCE` at a time: a long lock table is checked within the activity's time limit, and
     * the manager, which grants nothing meanwhile, waits for it briefly.
     */
    async endedWorkflows(args: { runs: { workflowId: string; runId: string }[] }): Promise<string[]> {
      const hasEnded = async ({ workflowId, runId }: { workflowId: string; runId: string }): Promise<boolean> => {
        try {
          return (await deps.client.workflow.getHandle(workflowId, runId).describe()).status.name !== 'RUNNING';
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return true;
          throw err;
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
