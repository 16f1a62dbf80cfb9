import { Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import type { Client } from '@temporalio/client';
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

/**
 * The global daily cap and per-task caps. A change wakes the tasks that wait for a budget, so they
 * ask for admission at once rather than at their next recheck.
 */
@Injectable()
export class BudgetService {
  private readonly logger = new Logger(BudgetService.name);

  constructor(
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    private readonly store: BudgetStore,
  ) {}

  async get() {
    return view(await this.store.daily());
  }

  async putDaily(dailyUsd: number | null) {
    await this.store.setDaily(dailyUsd);
    await this.wake(await this.store.waitingForBudget());
    return this.get();
  }

  async putTask(id: string, budgetUsd: number | null) {
    const task = isUuid(id) ? await this.store.setTaskBudget(id, budgetUsd) : undefined;
    if (!task) throw new NotFoundException(`no task ${id}`);
    if (task.status === 'queued') await this.wake([task.workflowId]);
    return { id, budgetUsd, costUsd: await this.store.taskSpent(id) };
  }

  /** Best effort: a task that misses the signal still looks again at its next recheck. */
  private async wake(workflowIds: string[]): Promise<void> {
    await Promise.all(
      workflowIds.map((workflowId) =>
        this.temporal.workflow
          .getHandle(workflowId)
          .signal(WAKE_SIGNAL)
          .catch((err: Error) => this.logger.warn(`could not wake ${workflowId}: ${err.message}`)),
      ),
    );
  }
}
