import type { PlanStore } from '../../src/store/plan-store';
import type { PlanEndStatus, PlanOutcomeRecord, PlanSkipRecord } from '../../workflows/definitions';

/**
 * Activities of the workflow workers that keep a plan's rows in step with its workflow. Both writes are
 * idempotent (a skip is keyed by plan and task, the outcome is written once), so they may retry freely.
 */
export function createPlanActivities(deps: { plans: PlanStore }) {
  return {
    /** Marks tasks the plan will never start: skipped in the plan, `cancelled` as tasks. */
    async recordPlanSkips(record: PlanSkipRecord): Promise<void> {
      await deps.plans.recordSkips(record);
    },
    /** Records the plan's end; the first outcome wins, and is the answer. */
    async recordPlanOutcome(record: PlanOutcomeRecord): Promise<PlanEndStatus> {
      return deps.plans.recordOutcome(record);
    },
  };
}
