import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Where `POST /v1/tasks/:id/reset` resets a workflow to. */
export interface ResetPoint {
  /** The WorkflowTaskCompleted event whose workflow task scheduled the failed activity. */
  workflowTaskCompletedEventId: number;
  /** The ActivityTaskFailed or ActivityTaskTimedOut event of the last failed step. */
  failedEventId: number;
  activityType: string;
}

const num = (id: unknown): number => Number(id ?? 0);

/**
 * The point just before the last failed step of a run: the workflow task that scheduled the last
 * activity that failed or timed out. Resetting to it replays the run up to there and runs that
 * workflow task again, so the workflow schedules the failed activity anew, with everything before it
 * (earlier attempts, their backoff timers) kept from the old run. Undefined when no activity failed
 * (the workflow itself refused its input, say): resetting would only repeat the same failure.
 */
export function findResetPoint(events: readonly HistoryEvent[]): ResetPoint | undefined {
  for (let i = events.length - 1; i >= 0; i -= 1) {
    const event = events[i];
    const failure = event?.activityTaskFailedEventAttributes ?? event?.activityTaskTimedOutEventAttributes;
    if (!event || !failure) continue;
    const scheduledId = num(failure.scheduledEventId);
    const scheduled = events.find((e) => num(e.eventId) === scheduledId)?.activityTaskScheduledEventAttributes;
    const workflowTaskCompletedEventId = num(scheduled?.workflowTaskCompletedEventId);
    if (!scheduled || workflowTaskCompletedEventId === 0) return undefined;
    return {
      workflowTaskCompletedEventId,
      failedEventId: num(event.eventId),
      activityType: scheduled.activityType?.name ?? 'unknown',
    };
  }
  return undefined;
}
