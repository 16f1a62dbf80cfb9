import type { AttemptStore } from '../../src/store/attempt-store';
import type { AttemptFailureRecord, TaskOutcomeRecord } from '../../workflows/definitions';

/**
 * Activities of the workflow workers that keep PostgreSQL in step with the workflow. Both writes are
 * idempotent (keyed by task id and attempt; one terminal event per task), so Temporal may retry them freely.
 */
export function createBookkeepingActivities(deps: { store: AttemptStore }) {
  return {
    async recordAttemptFailure(record: AttemptFailureRecord): Promise<void> {
      await deps.store.recordAttemptFailure(record);
    },
    async recordTaskOutcome(record: TaskOutcomeRecord): Promise<void> {
      await deps.store.recordTaskOutcome(record);
    },
  };
}
