import {
  ConflictException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import type { Client } from '@temporalio/client';
import { BudgetStore, type DailyBudget } from '../../store/budget-store';
import { wakeWaitingTasks } from '../../temporal/wake-waiting-tasks';
import { TEMPORAL_CLIENT } from '../tokens';
import type { BudgetView, TaskBudgetView } from './dto/budget.view';
import { isUuid } from '../../../workflows/definitions';

const view = (b: DailyBudget): BudgetView => ({
  dailyUsd: b.dailyUsd,
  spentTodayUsd: b.spentTodayUsd,
  remainingUsd: b.dailyUsd === null ? null : Math.max(0, Math.round((b.dailyUsd - b.spentTodayUsd) * 1e6) / 1e6),
  day: b.day,
  resetsAt: b.resetsAt.toISOString(),
});

/**
 * The global daily cap and per-task caps. A change that may let a task waiting for that budget start
 * (the cap lifted, or raised above the spend) wakes those tasks, so they ask for admission at once
 * rather than at their next recheck: a task's own, before answering; the daily cap's, many perhaps,
 * after answering, a few at a time. Any other change wakes none: each wake adds some ten events to a
 * waiting task's history, and a script that sets the same cap every few minutes would otherwise bring
 * a task that waits for weeks near Temporal's limit of 51,200.
 */
@Injectable()
export class BudgetService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(BudgetService.name);
  /** The daily cap's wake under way, if one is. */
  private dailyWake?: Promise<void>;
  /** The tasks to wake once it ends, read at a change made meanwhile (the latest change's alone). */
  private nextDailyWake?: string[];
  private stopping = false;

  constructor(
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    private readonly store: BudgetStore,
  ) {}

  async get() {
    return view(await this.store.daily());
  }

  async putDaily(dailyUsd: number | null) {
    if (await this.store.setDaily(dailyUsd)) this.wakeDailyWaiters(await this.store.waitingForDailyBudget());
    return this.get();
  }

  async putTask(id: string, budgetUsd: number | null): Promise<TaskBudgetView> {
    const task = isUuid(id) ? await this.store.setTaskBudget(id, budgetUsd) : undefined;
    if (!task) throw new NotFoundException(`no task ${id}`);
    // As a cancel of an ended task is: nothing is held back by its budget any more.
    if (!task.set) {
      throw new ConflictException(`task ${id} already ${task.status}: its budget can be changed once a retry runs it`);
    }
    if (task.status === 'queued' && task.letsStart) await this.wake([task.workflowId]);
    return { id, budgetUsd, costUsd: await this.store.taskSpent(id) };
  }

  /**
   * Stops the wakes under way after their batch in flight (bounded by its deadline), before the
   * Temporal client closes: the tasks left look again at their next recheck.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.dailyWake;
  }

  /**
   * Wakes the tasks waiting for the daily cap, in the background. One wake at a time: changes made
   * while one is under way are followed by one more, of the tasks waiting at the latest of them, so
   * a cap changed again and again does not signal the same tasks once per change.
   */
  private wakeDailyWaiters(workflowIds: string[]): void {
    if (this.dailyWake) {
      this.nextDailyWake = workflowIds;
      return;
    }
    this.dailyWake = (async () => {
      try {
        for (let ids: string[] | undefined = workflowIds; ids && !this.stopping; ids = this.nextDailyWake) {
          this.nextDailyWake = undefined;
          await this.wake(ids);
        }
      } finally {
        // In the same step as the loop's last look: a change made after it starts a wake of its own.
        this.dailyWake = undefined;
        this.nextDailyWake = undefined;
      }
    })();
  }

  /** Best effort: a task that misses the signal still looks again at its next recheck. */
  private async wake(workflowIds: string[]): Promise<void> {
    await wakeWaitingTasks(this.temporal, workflowIds, {
      what: 'a budget',
      logger: this.logger,
      stopping: () => this.stopping,
    });
  }
}
