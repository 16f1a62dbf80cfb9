import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AtelierConfig } from '../../src/config/env';
import type { ApiMetrics } from '../../src/api/observability/api-metrics.service';
import type { PlansService } from '../../src/api/plans/plans.service';
import { StrandedSubmissionsSweeper } from '../../src/api/stranded/stranded-submissions.sweeper';
import type { TasksService } from '../../src/api/tasks/tasks.service';
import type { PlanStore } from '../../src/store/plan-store';
import type { TaskStore } from '../../src/store/task-store';

/** A sweeper over stranded tasks `ids` and plans `planIds`, whose starts fail for the ids in `failing`. */
function sweeperOver(
  ids: string[],
  failing: Set<string>,
  planIds: string[] = [],
): { sweeper: StrandedSubmissionsSweeper; tried: string[] } {
  const tried: string[] = [];
  const start = async (id: string): Promise<boolean> => {
    tried.push(id);
    if (failing.has(id)) throw new Error(`Temporal refused ${id}`);
    return true;
  };
  const sweeper = new StrandedSubmissionsSweeper(
    { ATELIER_STRANDED_AFTER_SECONDS: 60 } as AtelierConfig,
    { strandedStarts: { inc: () => undefined } } as unknown as ApiMetrics,
    { strandedIds: async () => ids } as unknown as TaskStore,
    { strandedIds: async () => planIds } as unknown as PlanStore,
    { startStranded: start } as unknown as TasksService,
    { startStranded: start } as unknown as PlansService,
  );
  (sweeper as unknown as { logger: { warn: () => void } }).logger = { warn: () => undefined };
  return { sweeper, tried };
}

describe('the stranded-submissions sweeper', () => {
  it('passes over a submission whose start fails, and starts the ones after it', async () => {
    const { sweeper, tried } = sweeperOver(['a', 'b', 'c', 'd'], new Set(['b']));
    await sweeper.sweep();
    assert.deepEqual(tried, ['a', 'b', 'c', 'd']);
  });

  it('ends the sweep of tasks after three failures in a row, and sweeps the plans all the same', async () => {
    const { sweeper, tried } = sweeperOver(['a', 'b', 'c', 'd', 'e'], new Set(['a', 'b', 'c', 'd', 'e']), ['p']);
    await sweeper.sweep();
    assert.deepEqual(tried, ['a', 'b', 'c', 'p']);
  });
});
