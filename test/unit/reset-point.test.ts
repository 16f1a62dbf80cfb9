import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { findResetPoint } from '../../src/api/runs/reset-point';
import { HISTORIES_DIR } from '../support/record-histories';

const events = (name: string) =>
  historyFromJSON(JSON.parse(readFileSync(join(HISTORIES_DIR, `${name}.json`), 'utf8'))).events ?? [];

const byId = (list: ReturnType<typeof events>, id: number) => list.find((e) => Number(e.eventId) === id);

describe('findResetPoint', () => {
  it('picks the workflow task that scheduled the last failed attempt', () => {
    const history = events('retries-exhausted');
    const point = findResetPoint(history);
    assert.ok(point, 'a failed run has a reset point');
    assert.equal(point.activityType, 'runAgent');
    const completed = byId(history, point.workflowTaskCompletedEventId);
    assert.ok(completed?.workflowTaskCompletedEventAttributes, 'the reset point is a WorkflowTaskCompleted event');
    // The last failure, not the first: the attempt scheduled right after the reset point is the one that failed.
    const failed = byId(history, point.failedEventId)?.activityTaskFailedEventAttributes;
    assert.ok(failed, 'failedEventId names an ActivityTaskFailed event');
    const scheduled = byId(history, Number(failed.scheduledEventId))?.activityTaskScheduledEventAttributes;
    assert.equal(Number(scheduled?.workflowTaskCompletedEventId), point.workflowTaskCompletedEventId);
    const lastFailure = [...history].reverse().find((e) => e.activityTaskFailedEventAttributes);
    assert.equal(point.failedEventId, Number(lastFailure?.eventId));
    const firstFailure = history.find((e) => e.activityTaskFailedEventAttributes);
    assert.notEqual(point.failedEventId, Number(firstFailure?.eventId), 'two attempts failed; the last one counts');
  });

  it('finds the failed step of a timed-out attempt', () => {
    const point = findResetPoint(events('timeout'));
    assert.ok(point);
    assert.equal(point.activityType, 'runAgent');
  });

  it('has nothing to reset to when no step failed', () => {
    assert.equal(findResetPoint(events('success')), undefined);
    // The workflow refused its input before running anything: a reset would fail the same way.
    assert.equal(findResetPoint(events('invalid-input')), undefined);
  });
});
