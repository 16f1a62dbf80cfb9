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

    /** The request ids (`<workflow id>/<run id>`) whose workflow run no longer runs. */
    async endedWorkflows(args: { workflowIds: string[]; requestIds: string[] }): Promise<string[]> {
      const ended: string[] = [];
      for (const [i, requestId] of args.requestIds.entries()) {
        const runId = requestId.slice(requestId.lastIndexOf('/') + 1);
        try {
          const d = await deps.client.workflow.getHandle(args.workflowIds[i] as string, runId).describe();
          if (d.status.name !== 'RUNNING') ended.push(requestId);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) ended.push(requestId);
          else throw err;
        }
      }
      return ended;
    },
  };
}
