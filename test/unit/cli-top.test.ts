import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DashboardSnapshot } from '../../src/api/dashboard/snapshot';
import { renderTop } from '../../src/cli/commands/top';

/** A snapshot with `listed` running tasks listed, of `running` in all. */
const snapshot = (listed: number, running: number, worker = 'w'): DashboardSnapshot =>
  ({
    generatedAt: '2026-12-06T12:00:00Z',
    counts: { queued: 0, running, succeededLastHour: 0, failedLastHour: 0, cancelledLastHour: 0 },
    queues: [],
    workers: [],
    running: Array.from({ length: listed }, (_, i) => ({
      id: `task-${i}`,
      agent: 'stand-in',
      attempt: 1,
      worker,
      elapsedSeconds: 1,
    })),
    failures: { attemptsByClass: [], recent: [] },
  }) as unknown as DashboardSnapshot;

describe('atelier top', () => {
  it('heads the running tasks with how many run in all, when the list is cut', () => {
    assert.match(renderTop('http://api', snapshot(2, 2), undefined), /^RUNNING \(2\)$/m);
    assert.match(renderTop('http://api', snapshot(50, 73), undefined), /^RUNNING \(50 of 73\)$/m);
  });

  it('cuts each line to the width of a terminal, so that none wraps and scrolls the screen', () => {
    const wide = snapshot(3, 3, `agent-worker:4242-5f0c2a9e@${'build-host.'.repeat(8)}example`);
    assert.ok(
      renderTop('http://api', wide, undefined)
        .split('\n')
        .some((line) => line.length > 60),
      'the test has lines wider than the terminal',
    );
    const lines = renderTop('http://api', wide, undefined, { rows: 40, columns: 60 }).trimEnd().split('\n');
    assert.deepEqual(
      lines.filter((line) => [...line].length > 59),
      [],
    );
    assert.match(lines.find((line) => line.startsWith('task-0 ')) ?? '', /…$/);
  });
});
