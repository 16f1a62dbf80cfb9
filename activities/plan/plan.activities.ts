import type { AttemptStore } from '../../src/store/attempt-store';
import { recordClosedRun } from '../../src/store/closed-run-outcome';
import type { PlanStore } from '../../src/store/plan-store';
import type { ClosedChildRecord, PlanEndStatus, PlanOutcomeRecord, PlanSkipRecord } from '../../workflows/definitions';
import { unlessRowGone } from '../store/row-gone';

/**
 * Activities of the workflow workers that keep a plan's rows in step with its workflow. Every write is
 * idempotent (a skip is keyed by plan and task, an outcome is written once), so they may retry freely;
 * one for a plan whose rows are gone fails for good (unlessRowGone).
 */
export function createPlanActivities(deps: { plans: PlanStore; attempts: AttemptStore }) {
  return {
    /**
     * Records the end of a task whose workflow closed without recording its own (terminated, timed out):
     * its run may not be in the database yet (a task waiting for its locks has written nothing), so the
     * API's sweep of closed runs cannot see it. The plan knows only the task's first run: once a later
     * one (a reset) has recorded itself, that one is the sweep's to record.
     */
    async recordChildClosed(record: ClosedChildRecord): Promise<void> {
      if (!(await deps.plans.isCurrentRun(record.taskId, record.runId))) return;
      await unlessRowGone(`task ${record.taskId}`, () =>
        recordClosedRun(deps.attempts, record.taskId, record.runId, record.ended),
      );
    },
    /** Marks tasks the plan will never start: skipped in the plan, `cancelled` as tasks. */
    async recordPlanSkips(record: PlanSkipRecord): Promise<void> {
      await unlessRowGone(`plan ${record.planId}`, () => deps.plans.recordSkips(record));
    },
    /** Records the plan's end; the first outcome wins, and is the answer. */
    async recordPlanOutcome(record: PlanOutcomeRecord): Promise<PlanEndStatus> {
      return deps.plans.recordOutcome(record);
    },
  };
}
