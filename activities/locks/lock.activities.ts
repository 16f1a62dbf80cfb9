import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LOCK_SIGNALS, workflowIdForLocks, type LockRequest } from '../../workflows/definitions';

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

    /** Of the given workflow runs, those that no longer run, as `<workflow id>/<run id>`. */
    async endedWorkflows(args: { runs: { workflowId: string; runId: string }[] }): Promise<string[]> {
      const ended: string[] = [];
      for (const { workflowId, runId } of args.runs) {
        try {
          const d = await deps.client.workflow.getHandle(workflowId, runId).describe();
          if (d.status.name !== 'RUNNING') ended.push(`${workflowId}/${runId}`);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) ended.push(`${workflowId}/${runId}`);
          else throw err;
        }
      }
      return ended;
    },
  };
}
