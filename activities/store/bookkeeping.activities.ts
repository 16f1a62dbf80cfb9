import { Context } from '@temporalio/activity';
import type { AttemptStore } from '../../src/store/attempt-store';
import type {
  AttemptFailureRecord,
  RecordedOutcome,
  TaskOutcomeRecord,
  WaitingRecord,
} from '../../workflows/definitions';
import { unlessRowGone } from './row-gone';

/** The run of the workflow that called: writes are kept per run (a retried or reset task runs again). */
const workflowRunId = (): string | undefined => Context.current().info.workflowExecution?.runId;

/**
 * Activities of the workflow workers that keep PostgreSQL in step with the workflow. Both writes are
 * idempotent (keyed by task id and attempt; one terminal event per task), so Temporal may retry them freely;
 * one for a task whose row is gone fails for good (unlessRowGone).
 */
export function createBookkeepingActivities(deps: { store: AttemptStore }) {
  return {
    async recordAttemptFailure(record: AttemptFailureRecord): Promise<void> {
      await unlessRowGone(`task ${record.taskId}`, () => deps.store.recordAttemptFailure(record, workflowRunId()));
    },
    /** Answers the run's terminal state as recorded, which a worker may have written first (a success). */
    recordTaskOutcome(record: TaskOutcomeRecord): Promise<RecordedOutcome> {
      return unlessRowGone(`task ${record.taskId}`, () => deps.store.recordTaskOutcome(record, workflowRunId()));
    },
    /** Shows the task `queued` with why it waits; idempotent (the latest reason wins). */
    async recordWaiting(record: WaitingRecord): Promise<void> {
      // An update: with the task's row gone it changes nothing, and fails nothing.
      await deps.store.recordWaiting(record, workflowRunId());
    },
  };
}
