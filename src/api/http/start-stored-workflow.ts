import { ServiceUnavailableException } from '@nestjs/common';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowStartOptions } from '@temporalio/client';

/** A submission whose rows are stored already, to start as its workflow. */
export interface StoredSubmission {
  /** `task` or `plan`, for the error. */
  what: string;
  workflowType: string;
  options: WorkflowStartOptions & { workflowId: string };
  /** Whether this request stored the rows, and whether a retry can find them again (an idempotency key). */
  created: boolean;
  retryable: boolean;
  /**
   * Removes the stored rows, which nothing will start; answers the run id instead if the submission
   * was started meanwhile (by the stranded-submission sweeper), and then keeps them.
   */
  forget: () => Promise<string | undefined>;
}

/**
 * Starts the workflow of a stored submission and answers its run id. A submission starts once: a
 * start refused because the workflow exists, or existed and has closed, answers that workflow's run
 * (a repeated submission, or one the sweeper started). Any other failure is a 503; the start may have
 * reached Temporal even though its answer did not reach us. With an idempotency key the rows stay,
 * and the client's retry finds or starts the same workflow; without one, rows this request stored are
 * removed, and the client submits again.
 */
export async function startStoredWorkflow(temporal: Client, s: StoredSubmission): Promise<string> {
  try {
    const options = { ...s.options, workflowIdReusePolicy: 'REJECT_DUPLICATE' } as const;
    return (await temporal.workflow.start(s.workflowType, options)).firstExecutionRunId;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return (await temporal.workflow.getHandle(s.options.workflowId).describe()).runId;
    }
    if (s.created && !s.retryable) {
      const startedMeanwhile = await s.forget();
      if (startedMeanwhile !== undefined) return startedMeanwhile;
    }
    throw new ServiceUnavailableException(`could not start the ${s.what} workflow: ${(err as Error).message}`);
  }
}
