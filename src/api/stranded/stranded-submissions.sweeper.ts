import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AtelierConfig } from '../../config/env';
import { PlanStore } from '../../store/plan-store';
import { TaskStore } from '../../store/task-store';
import { ApiMetrics } from '../observability/api-metrics.service';
import type { StrandedStart } from '../http/start-stored-workflow';
import { PlansService } from '../plans/plans.service';
import { TasksService } from '../tasks/tasks.service';
import { PeriodicRun } from '../periodic-run';
import { PeriodicSweeper } from '../periodic-sweeper';
import { CONFIG } from '../tokens';

/** Submissions started per kind and sweep, at most: a backlog is worked off over the next sweeps. */
const BATCH = 50;
/** Starts failing one after another that end a sweep. */
const FAILURES_IN_A_ROW = 3;
/** The longest pause between sweeps. */
const MAX_INTERVAL_MS = 30_000;

interface Kind {
  name: 'task' | 'plan';
  strandedIds: (seconds: number, limit: number) => Promise<string[]>;
  start: (id: string) => Promise<StrandedStart>;
}

/**
 * Starts submissions stored but never started. The API stores a task or plan, then starts its workflow:
 * an API process that stops in between leaves rows nothing would start (with an idempotency key, a
 * client's retry starts them; without one, nothing did). Every API process looks for tasks and plans
 * stored more than ATELIER_STRANDED_AFTER_SECONDS ago without a run, and starts them: a row lock keeps
 * two processes from starting one at once, and Temporal refuses a second start of a workflow id.
 */
@Injectable()
export class StrandedSubmissionsSweeper extends PeriodicSweeper {
  private readonly logger = new Logger(StrandedSubmissionsSweeper.name);
  private readonly kinds: Kind[];
  protected readonly periodic: PeriodicRun;

  constructor(
    @Inject(CONFIG) private readonly config: AtelierConfig,
    private readonly metrics: ApiMetrics,
    taskStore: TaskStore,
    planStore: PlanStore,
    tasks: TasksService,
    plans: PlansService,
  ) {
    super();
    this.kinds = [
      { name: 'task', strandedIds: (s, n) => taskStore.strandedIds(s, n), start: (id) => tasks.startStranded(id) },
      { name: 'plan', strandedIds: (s, n) => planStore.strandedIds(s, n), start: (id) => plans.startStranded(id) },
    ];
    this.periodic = new PeriodicRun(
      Math.min(MAX_INTERVAL_MS, (config.ATELIER_STRANDED_AFTER_SECONDS * 1000) / 4),
      () => this.sweep(),
      (err) => this.logger.warn(`could not start stranded submissions: ${err.message}`),
    );
  }

  /**
   * Starts every stranded submission found now. One that fails is logged and passed over, so it holds
   * back none of the others; `FAILURES_IN_A_ROW` failures in a row end the sweep of that kind (Temporal
   * is likely out of reach: the next sweep tries again), and the next kind is swept all the same.
   */
  async sweep(): Promise<void> {
    const after = this.config.ATELIER_STRANDED_AFTER_SECONDS;
    for (const kind of this.kinds) {
      let failuresInARow = 0;
      for (const id of await kind.strandedIds(after, BATCH)) {
        if (this.periodic.stopped) return;
        let started: StrandedStart;
        try {
          started = await kind.start(id);
          failuresInARow = 0;
        } catch (err) {
          this.logger.warn(`could not start stranded ${kind.name} ${id}: ${(err as Error).message}`);
          failuresInARow += 1;
          if (failuresInARow < FAILURES_IN_A_ROW) continue;
          this.logger.warn(
            `${failuresInARow} starts of stranded ${kind.name}s failed in a row: the rest wait for the next sweep`,
          );
          break;
        }
        if (started === 'untouched') continue;
        if (started === 'found') {
          // Its API started it and stopped (or failed to write) before recording the run: recorded now.
          // Should that run have closed, the closed-runs sweeper records its end.
          this.logger.warn(
            `found ${kind.name} ${id} started already, and recorded its run: it was stored over ${after} s ago`,
          );
          continue;
        }
        this.metrics.strandedStarts.inc({ kind: kind.name });
        this.logger.warn(`started ${kind.name} ${id}: it was stored over ${after} s ago and never started`);
      }
    }
  }
}
