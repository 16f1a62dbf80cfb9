import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AtelierConfig } from '../../src/config/env';
import type { ApiMetrics } from '../../src/api/observability/api-metrics.service';
import type { StrandedStart } from '../../src/api/http/start-stored-workflow';
import type { PlansService } from '../../src/api/plans/plans.service';
import { StrandedSubmissionsSweeper } from '../../src/api/stranded/stranded-submissions.sweeper';
import type { TasksService } from '../../src/api/tasks/tasks.service';
import type { PlanStore } from '../../src/store/plan-store';
import type { TaskStore } from '../../src/store/task-store';

/**
 * A sweeper over stranded tasks `ids` and plans `planIds`, whose starts fail for the ids in `failing`
 * and find the workflows of those in `found` started already.
 */
function sweeperOver(
  ids: string[],
  failing: Set<string>,
  planIds: string[] = [],
  found = new Set<string>(),
): { sweeper: StrandedSubmissionsSweeper; tried: string[]; counted: string[]; logged: string[] } {
  const tried: string[] = [];
  const counted: string[] = [];
  const logged: string[] = [];
  const start = async (id: string): Promise<StrandedStart> => {
    tried.push(id);
    if (failing.has(id)) throw new Error(`Temporal refused ${id}`);
    return found.has(id) ? 'found' : 'started';
  };
  const sweeper = new StrandedSubmissionsSweeper(
    { ATELIER_STRANDED_AFTER_SECONDS: 60 } as AtelierConfig,
    { strandedStarts: { inc: ({ kind }: { kind: string }) => counted.push(kind) } } as unknown as ApiMetrics,
    { strandedIds: async () => ids } as unknown as TaskStore,
    { strandedIds: async () => planIds } as unknown as PlanStore,
    { startStranded: start } as unknown as TasksService,
    { startStranded: start } as unknown as PlansService,
  );
  (sweeper as unknown as { logger: { warn: (m: string) => void } }).logger = { warn: (m) => logged.push(m) };
  return { sweeper, tried, counted, logged };
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

  it('counts as started only the workflows it started, not one it found started and recorded', async () => {
    const { sweeper, counted, logged } = sweeperOver(['a', 'b'], new Set(), [], new Set(['b']));
    await sweeper.sweep();
    assert.deepEqual(counted, ['task']);
    assert.ok(logged.some((m) => m.startsWith('started task a')));
    assert.ok(logged.some((m) => m.startsWith('found task b started already')));
    assert.ok(!logged.some((m) => m.startsWith('started task b')));
  });
});
