import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import stringWidth from 'string-width';
import type { DashboardSnapshot } from '../../src/api/dashboard/snapshot';
import { renderTop } from '../../src/cli/commands/top';
import type { WorkersDoc } from '../../src/cli/commands/workers';

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

  it('counts a wide character (CJK, emoji) as the two columns a terminal gives it', () => {
    const wide = snapshot(2, 2, `agent-worker:4242@${'構築ホスト'.repeat(10)}🚀`);
    const lines = renderTop('http://api', wide, undefined, { rows: 40, columns: 60 }).trimEnd().split('\n');
    const row = lines.find((line) => line.startsWith('task-0 ')) ?? '';
    assert.match(row, /…$/);
    assert.ok(stringWidth(row) <= 59, `${stringWidth(row)} columns: ${row}`);
    assert.ok(stringWidth(row) >= 58, 'cut at the last column that fits, not sooner');
    // Its columns line up with the header's, by width.
    const header = lines.find((line) => line.startsWith('TASK')) ?? '';
    const column = header.indexOf('WORKER');
    assert.ok(column > 0, header);
    assert.equal(stringWidth(row.slice(0, row.indexOf('agent-worker'))), column);
  });

  it('fits a short terminal, and says how many lines it cut', () => {
    const whole = renderTop('http://api', snapshot(30, 30), undefined).trimEnd().split('\n');
    for (const rows of [3, 8, 20]) {
      const lines = renderTop('http://api', snapshot(30, 30), undefined, { rows, columns: 80 }).trimEnd().split('\n');
      // The last row is `(q to quit)`.
      assert.equal(lines.length, rows - 1, `${rows} rows:\n${lines.join('\n')}`);
      assert.equal(lines.at(-1), `… ${whole.length - rows + 2} more lines`);
    }
    const tall = renderTop('http://api', snapshot(30, 30), undefined, { rows: 100, columns: 200 })
      .trimEnd()
      .split('\n');
    assert.deepEqual(tall, whole, 'nothing cut where everything fits');
  });

  it("shows the workers endpoint's failure in place of its table, and takes an answer without workers", () => {
    const failed = renderTop('http://api', snapshot(1, 1), { failed: 'GET /v1/workers answered 503' });
    assert.match(failed, /^WORKERS\nnot shown: GET \/v1\/workers answered 503 \(asked again at the next update\)$/m);
    assert.doesNotMatch(failed, /HEALTHY/, "not the dashboard's list in its place");
    const empty = renderTop('http://api', snapshot(1, 1), { queues: [] } as unknown as WorkersDoc);
    assert.match(empty, /^WORKER +KIND +STATUS/m);
  });
});
