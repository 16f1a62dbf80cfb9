import { Logger } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { AtelierConfig } from '../../config/env';
import { AttemptStore } from '../../store/attempt-store';
import { PlanStore } from '../../store/plan-store';
import { TaskStore } from '../../store/task-store';
import { ApiMetrics } from '../observability/api-metrics.service';
import { recordPlanClosedInTemporal } from '../plans/closed-plan';
import { recordRunClosedInTemporal } from '../runs/closed-run';
import { PeriodicRun } from '../periodic-run';
import { PeriodicSweeper } from '../periodic-sweeper';

/** How far back the first sweep after a start looks: closes while no API ran. */
const FIRST_LOOKBACK_MS = 7 * 24 * 3600_000;
/** Each sweep looks back this far before the previous one began: Temporal's visibility store lags. */
const VISIBILITY_LAG_MS = 60_000;
/** How many closed workflows one read of their rows asks about: a week of closes is read page by page. */
const RECORD_PAGE = 500;
/** Statuses of a run that may have closed without recording its end (a completed one recorded it). */
const ABNORMAL_CLOSES = ['Terminated', 'TimedOut', 'Failed', 'Canceled'];

interface Kind {
  name: 'task' | 'plan';
  workflowType: string;
  /** Workflows found closed whose run could not be recorded yet: looked at again by every sweep. */
  retry: Set<string>;
  /**
   * The unended runs of these workflows, with what records the end of one if it closed: it answers
   * whether it wrote the end, undefined while the run's workflow runs.
   */
  unended: (workflowIds: string[]) => Promise<UnendedRun[]>;
}

interface UnendedRun {
  id: string;
  workflowId: string;
  /** Whether its run id is recorded: without one, its end cannot be recorded yet. */
  hasRunId: boolean;
  record: () => Promise<{ written: boolean } | undefined>;
}

/**
 * Records the end of task and plan runs that closed in Temporal without recording it: an operator
 * terminated them in the Web UI or CLI, or they timed out. Unrecorded, such a task would stay `running`
 * until someone cancelled or retried it: its log followers would wait, its webhook would not go out,
 * and the worktree janitor would keep its worktree. Every API process asks Temporal's visibility store every
 * ATELIER_CLOSED_RUN_SWEEP_SECONDS for task and plan workflows closed so since its previous sweep,
 * and records each one whose row still runs as cancel and retry do (closed-run.ts, closed-plan.ts):
 * one terminal write per run, so two processes recording the same run record it once. Its stores are
 * given by ClosedRunsModule, on a pool whose every statement is bounded.
 */
export class ClosedRunsSweeper extends PeriodicSweeper {
  private readonly logger = new Logger(ClosedRunsSweeper.name);
  private readonly kinds: Kind[];
  protected readonly periodic: PeriodicRun;
  private since = new Date(Date.now() - FIRST_LOOKBACK_MS);

  constructor(
    config: AtelierConfig,
    private readonly temporal: Client,
    private readonly metrics: ApiMetrics,
    tasks: TaskStore,
    plans: PlanStore,
    attempts: AttemptStore,
  ) {
    super();
    this.kinds = [
      {
        name: 'task',
        workflowType: 'agentTaskWorkflow',
        retry: new Set(),
        unended: async (ids) =>
          (await tasks.unendedRunsOf(ids)).map((task) => ({
            id: task.id,
            workflowId: task.workflow_id,
            hasRunId: task.run_id !== null,
            record: () => recordRunClosedInTemporal(temporal, attempts, task),
          })),
      },
      {
        name: 'plan',
        workflowType: 'planWorkflow',
        retry: new Set(),
        unended: async (ids) =>
          (await plans.unendedRunsOf(ids)).map((plan) => ({
            id: plan.id,
            workflowId: plan.workflow_id,
            hasRunId: plan.run_id !== null,
            record: () =>
              recordPlanClosedInTemporal(temporal, { plans, tasks, attempts }, plan, () => this.periodic.stopped),
          })),
      },
    ];
    this.periodic = new PeriodicRun(
      config.ATELIER_CLOSED_RUN_SWEEP_SECONDS * 1000,
      () => this.sweep(),
      (err) => this.logger.warn(`could not record runs closed in Temporal: ${err.message}`),
    );
  }

  /**
   * Records every run closed since the previous sweep that did not record its end, RECORD_PAGE closed
   * workflows at a time. A run that could not be recorded yet (a plan one of whose tasks still runs in
   * Temporal, a store that failed, a row whose run id is not recorded yet) is kept aside and looked at
   * again by each sweep, until it is recorded or found ended; the window moves on.
   */
  async sweep(): Promise<void> {
    const began = Date.now();
    // Only statuses and a date are put in the query: no user text reaches it.
    const closed =
      `ExecutionStatus IN (${ABNORMAL_CLOSES.map((s) => `'${s}'`).join(', ')})` +
      ` AND CloseTime >= '${this.since.toISOString()}'`;
    let unread = false;
    for (const kind of this.kinds) {
      // What was kept aside, then what Temporal lists, RECORD_PAGE at a time. What this sweep does not
      // get to (Temporal fails, the API stops) stays aside.
      const kept = [...kind.retry];
      kind.retry.clear();
      const page = new Set<string>();
      const record = async (): Promise<void> => {
        if (!(await this.recordUnended(kind, [...page]))) unread = true;
        page.clear();
      };
      try {
        while (kept.length > 0) {
          page.add(kept.pop() as string);
          if (page.size >= RECORD_PAGE) await record();
        }
        for await (const wf of this.temporal.workflow.list({
          query: `WorkflowType = '${kind.workflowType}' AND ${closed}`,
        })) {
          // A week of closes, listed after a start, may take many pages: a stopping API waits for none.
          if (this.periodic.stopped) return;
          page.add(wf.workflowId);
          if (page.size >= RECORD_PAGE) await record();
        }
        await record();
      } finally {
        for (const id of [...kept, ...page]) kind.retry.add(id);
      }
      if (this.periodic.stopped) return;
    }
    this.since = new Date(began - VISIBILITY_LAG_MS);
    if (!unread) this.metrics.closedRunSweeps.inc();
  }

  /**
   * Records the runs of these closed workflows that PostgreSQL still has running; keeps aside the ones
   * it cannot record yet. False when their rows could not be read: all of them are kept aside then.
   */
  private async recordUnended(kind: Kind, ids: string[]): Promise<boolean> {
    let runs: UnendedRun[] = [];
    try {
      if (ids.length > 0) runs = await kind.unended(ids);
    } catch (err) {
      for (const id of ids) kind.retry.add(id);
      this.logger.warn(`could not read the ${kind.name}s of closed workflows: ${(err as Error).message}`);
      return false;
    }
    for (const run of runs) {
      if (this.periodic.stopped) break;
      // Its workflow closed before anything recorded its run (its API stopped, or the write failed): the
      // stranded-submission sweeper, or a client's retry, records the run id later, long after this
      // sweep's window has moved past the close. Kept aside until then.
      if (!run.hasRunId) {
        kind.retry.add(run.workflowId);
        continue;
      }
      try {
        // Undefined: its workflow, reset, runs again. Not written: the run itself, or another API
        // process, recorded its end first.
        if (!(await run.record())?.written) continue;
        this.metrics.closedRunsRecorded.inc({ kind: kind.name });
        this.logger.warn(
          `recorded ${kind.name} ${run.id} failed: its workflow closed in Temporal without recording its end`,
        );
      } catch (err) {
        kind.retry.add(run.workflowId);
        this.logger.warn(`could not record the end of ${kind.name} ${run.id} yet: ${(err as Error).message}`);
      }
    }
    return true;
  }
}
