import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AttemptStore } from '../../store/attempt-store';
import { recordClosedRun, type RecordedEnd } from '../../store/closed-run-outcome';
import type { TaskRow } from '../../store/task-store';
import { temporalUnavailable } from '../http/temporal-unavailable';
import type { TerminalStatus } from '../../../workflows/definitions';

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
 * The run id of the workflow's latest run, or undefined when Temporal knows no workflow of that id: a
 * plan's task the plan never started. One it did start has no run id in PostgreSQL until its first
 * write, which a task waiting for its file locks has not made.
 */
export async function latestRunId(temporal: Client, workflowId: string): Promise<string | undefined> {
  try {
    return (await temporal.workflow.getHandle(workflowId).describe()).runId;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw temporalUnavailable("could not ask Temporal about the task's workflow", err);
  }
}

/**
 * Records the end of a task's current run whose workflow closed in Temporal without recording an
 * outcome: an operator terminated it (Temporal Web UI or CLI), or it timed out. Its task would stay
 * `queued` or `running` for ever, refused by retry and cancel alike, and its log followers would never
 * get their `end` (recordClosedRun says how it is recorded). An attempt it left open (its worker gone
 * too) is closed as well, or the dashboard would count it running for ever. Answers the run's terminal
 * status as recorded (another one if the run recorded its own meanwhile) and whether this call wrote it,
 * or undefined while its workflow runs or before it started (a plan's task: its plan records it, see
 * planWorkflow).
 */
export async function recordRunClosedInTemporal(
  temporal: Client,
  attempts: AttemptStore,
  task: Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>,
): Promise<RecordedEnd<TerminalStatus> | undefined> {
  if (task.run_id === null) return undefined; // not started yet: a stranded submission, or a plan's task
  const ended = await howRunEnded(temporal, task.workflow_id, task.run_id);
  if (ended === undefined) return undefined;
  return recordClosedRun(attempts, task.id, task.run_id, ended);
}
