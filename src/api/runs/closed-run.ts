import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AttemptStore } from '../../store/attempt-store';
import type { TaskRow } from '../../store/task-store';
import { temporalUnavailable } from '../http/temporal-unavailable';
import { FAILURE_CLASSES, type TerminalStatus } from '../../../workflows/definitions';

/**
 * How the run ended, as Temporal tells it; undefined while it or a later run of its workflow runs (a
 * reset in the Temporal Web UI ends the run and starts another, which records itself at its first write).
 */
export async function howRunEnded(temporal: Client, workflowId: string, runId: string): Promise<string | undefined> {
  try {
    const { status } = await temporal.workflow.getHandle(workflowId, runId).describe();
    if (status.name === 'RUNNING') return undefined;
    const latest = await temporal.workflow.getHandle(workflowId).describe();
    if (latest.runId !== runId && latest.status.name === 'RUNNING') return undefined;
    return `ended in Temporal (${status.name.toLowerCase().replaceAll('_', ' ')})`;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'is no longer known to Temporal';
    throw temporalUnavailable("could not ask Temporal about the task's workflow", err);
  }
}

/**
 * Records the end of a task's current run whose workflow closed in Temporal without recording an
 * outcome: an operator terminated it (Temporal Web UI or CLI), or it timed out. Its task would stay
 * `queued` or `running` for ever, refused by retry and cancel alike, and its log followers would never
 * get their `end`. The run is recorded `failed`, class `crash`, as the workflow records an outcome with
 * no attempt (attempt 0): its one terminal event, the task's status and the `task.failed`
 * notification. An attempt it left open (its worker gone too) is closed as a `crash` as well, or the
 * dashboard would count it running for ever. Answers the run's terminal status as recorded (another
 * one if the run recorded its own meanwhile), or undefined while its workflow runs or before it started.
 */
export async function recordRunClosedInTemporal(
  temporal: Client,
  attempts: AttemptStore,
  task: Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>,
): Promise<TerminalStatus | undefined> {
  if (task.run_id === null) return undefined; // not started yet: a stranded submission, or a plan's task
  const ended = await howRunEnded(temporal, task.workflow_id, task.run_id);
  if (ended === undefined) return undefined;
  const message = `its workflow run ${task.run_id} ${ended} without recording an outcome`;
  // Its open attempt first, so the audit trail reads attempt end, then run end, as for any run.
  await attempts.closeOpenAttempts(task.id, task.run_id, FAILURE_CLASSES.crash, message);
  const recorded = await attempts.recordTaskOutcome(
    { taskId: task.id, status: 'failed', attempt: 0, error: { class: FAILURE_CLASSES.crash, message } },
    task.run_id,
  );
  return recorded.status;
}
