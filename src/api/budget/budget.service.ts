import { Inject, Injectable, Logger, NotFoundException, type BeforeApplicationShutdown } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { BudgetStore, type DailyBudget } from '../../store/budget-store';
import { WAKE_SIGNAL } from '../../../workflows/definitions';
import { TEMPORAL_CLIENT } from '../tokens';
import { isUuid } from '../../../workflows/definitions';

const view = (b: DailyBudget) => ({
  dailyUsd: b.dailyUsd,
  spentTodayUsd: b.spentTodayUsd,
  remainingUsd: b.dailyUsd === null ? null : Math.max(0, Math.round((b.dailyUsd - b.spentTodayUsd) * 1e6) / 1e6),
  day: b.day,
  resetsAt: b.resetsAt.toISOString(),
});

/** Tasks signalled at once when the daily budget changes: thousands may wait, each signal a call to Temporal. */
const WAKE_AT_ONCE = 32;
/** How long one wake signal may take: a task that misses it still looks again at its next recheck. */
const WAKE_DEADLINE_MS = 5000;

/**
 * The global daily cap and per-task caps. A change wakes the tasks that wait for that budget, so they
 * ask for admission at once rather than at their next recheck: a task's own, before answering; the
 * daily cap's, many perhaps, after answering, a few at a time.
 */
@Injectable()
export class BudgetService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(BudgetService.name);
  private readonly waking = new Set<Promise<void>>();
  private stopping = false;

  constructor(
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    private readonly store: BudgetStore,
  ) {}

  async get() {
    return view(await this.store.daily());
  }

  async putDaily(dailyUsd: number | null) {
    await this.store.setDaily(dailyUsd);
    const waking = this.wake(await this.store.waitingForDailyBudget()).finally(() => this.waking.delete(waking));
    this.waking.add(waking);
    return this.get();
  }

  async putTask(id: string, budgetUsd: number | null) {
    const task = isUuid(id) ? await this.store.setTaskBudget(id, budgetUsd) : undefined;
    if (!task) throw new NotFoundException(`no task ${id}`);
    if (task.status === 'queued') await this.wake([task.workflowId]);
    return { id, budgetUsd, costUsd: await this.store.taskSpent(id) };
  }

  /**
   * Stops the wakes under way after their batch in flight (bounded by its deadline), before the
   * Temporal client closes: the tasks left look again at their next recheck.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.waking);
  }

  /** Best effort: a task that misses the signal still looks again at its next recheck. */
  private async wake(workflowIds: string[]): Promise<void> {
    let missed = 0;
    let reason = '';
    for (let at = 0; at < workflowIds.length && !this.stopping; at += WAKE_AT_ONCE) {
      const signals = workflowIds
        .slice(at, at + WAKE_AT_ONCE)
        .map((workflowId) =>
          this.temporal.withDeadline(Date.now() + WAKE_DEADLINE_MS, () =>
            this.temporal.workflow.getHandle(workflowId).signal(WAKE_SIGNAL),
          ),
        );
      for (const result of await Promise.allSettled(signals)) {
        // A task that ended meanwhile needs no waking.
        if (result.status === 'fulfilled' || result.reason instanceof WorkflowNotFoundError) continue;
        missed += 1;
        reason = (result.reason as Error).message;
      }
    }
    if (missed > 0) {
      this.logger.warn(
        `could not wake ${missed} of ${workflowIds.length} task(s) waiting for a budget (${reason}): they look again at their next recheck`,
      );
    }
  }
}
