import { FAILURE_CLASSES, type TerminalStatus } from '../../workflows/definitions';
import type { AttemptStore } from './attempt-store';

/** A run's end as recorded, and whether this call recorded it (not the run itself, nor another process). */
export interface RecordedEnd<S> {
  status: S;
  written: boolean;
}

/**
 * Records the end of a task's run whose workflow closed in Temporal without recording one (terminated
 * by an operator, timed out): `failed`, class `crash`, at attempt 0, as the workflow records an outcome
 * with no attempt; its terminal event, the task's status and the `task.failed` notification. An attempt
 * it left open is closed as a `crash` first, so the audit trail reads attempt end, then run end.
 * `ended` says how, as `ended in Temporal (terminated)`. Answers the run's terminal status as recorded
 * (another one if the run recorded its own first), and whether this call wrote it.
 */
export async function recordClosedRun(
  attempts: AttemptStore,
  taskId: string,
  runId: string,
  ended: string,
): Promise<RecordedEnd<TerminalStatus>> {
  const message = `its workflow run ${runId} ${ended} without recording an outcome`;
  await attempts.closeOpenAttempts(taskId, runId, FAILURE_CLASSES.crash, message);
  const { outcome, written } = await attempts.writeTaskOutcome(
    { taskId, status: 'failed', attempt: 0, error: { class: FAILURE_CLASSES.crash, message } },
    runId,
  );
  return { status: outcome.status, written };
}
