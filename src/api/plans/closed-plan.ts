import { ServiceUnavailableException } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { AttemptStore } from '../../store/attempt-store';
import type { PlanRow, PlanStore } from '../../store/plan-store';
import type { RecordedEnd } from '../../store/closed-run-outcome';
import type { TaskStore } from '../../store/task-store';
import type { PlanEndStatus, PlanSkip } from '../../../workflows/definitions';
import { howRunEnded, latestRunId, recordRunClosedInTemporal } from '../runs/closed-run';

/**
 * Records the end of a plan whose workflow closed in Temporal without recording one: an operator
 * terminated it, or it timed out. The plan would stay `running` for ever, its cancel refused, and its
 * tasks not started yet `queued` with nothing left to start or skip them. Those tasks are skipped,
 * the ones it had started and whose runs closed with it (Temporal terminates a closed plan's running
 * children, a moment after the plan: until then this answers 503) are recorded failed as any such run
 * is (closed-run.ts), one that had written nothing yet (waiting for its file locks) too, and the plan
 * is recorded `failed`. A task retried on its own (its run above 1) is
 * not the plan's: its run goes on, and its end is its own.
 * Answers the plan's end as recorded (another one if the plan recorded its own meanwhile) and whether
 * this call wrote it, or undefined while its workflow runs or before it started, and when `stopping`
 * (asked before each task: a sweep of a stopping API) says to leave the rest to a later call.
 */
export async function recordPlanClosedInTemporal(
  temporal: Client,
  stores: { plans: PlanStore; tasks: TaskStore; attempts: AttemptStore },
  plan: Pick<PlanRow, 'id' | 'workflow_id' | 'run_id'>,
  stopping: () => boolean = () => false,
): Promise<RecordedEnd<PlanEndStatus> | undefined> {
  if (plan.run_id === null) return undefined;
  const ended = await howRunEnded(temporal, plan.workflow_id, plan.run_id);
  if (ended === undefined) return undefined;
  const reason = `plan workflow run ${plan.run_id} ${ended}`;
  const skips: PlanSkip[] = [];
  for (const t of (await stores.plans.get(plan.id))?.tasks ?? []) {
    if (stopping()) return undefined;
    if (t.status !== 'queued' && t.status !== 'running') continue;
    if (t.current_run > 1) continue;
    const task = await stores.tasks.get(t.task_id);
    if (!task) continue;
    // A task the plan started writes its run id at its first write: Temporal tells whether it started.
    const runId = task.run_id ?? (await latestRunId(temporal, task.workflow_id));
    if (runId === undefined) {
      skips.push({ key: t.key, taskId: t.task_id, reason });
      continue;
    }
    // Temporal terminates a closed plan's running tasks a moment after the plan: the plan's end waits.
    const taskEnded = await recordRunClosedInTemporal(temporal, stores.attempts, { ...task, run_id: runId });
    if (taskEnded === undefined) {
      throw new ServiceUnavailableException(
        `plan ${plan.id}'s workflow has closed in Temporal and its task "${t.key}" still runs there; try again in a moment`,
      );
    }
  }
  await stores.plans.recordSkips({ planId: plan.id, skips });
  return stores.plans.writeOutcome({ planId: plan.id, status: 'failed' });
}
