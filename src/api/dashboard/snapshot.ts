/**
 * The dashboard's data, as `GET /v1/dashboard` returns it and `GET /v1/dashboard/stream` sends it.
 * Types only, so the CLI (`atelier top`) can use them without loading the API.
 */

export interface QueueView {
  name: string;
  /** Which Atelier pool polls it. */
  role: 'workflows' | 'agents';
  /** Temporal's backlog: tasks waiting for a poller (running ones excluded); null if unknown. */
  backlog: number | null;
  backlogAgeSeconds: number | null;
  pollers: number | null;
  /** For the agent queue: Atelier tasks queued in PostgreSQL, waiting for their first or next attempt. */
  waitingTasks: number | null;
  /** How long the longest-waiting of them has waited since it last became queued (as the metric counts). */
  oldestWaitingSeconds: number | null;
  error: string | null;
}

export interface WorkerView {
  identity: string;
  role: 'workflows' | 'agents';
  taskQueue: string;
  lastPollAt: string | null;
  /**
   * Polled within the last 90 s, or, registered (the worker registry), running (not starting nor
   * draining) and heartbeating within the last 30 s: busy workers poll no more.
   */
  healthy: boolean;
  /** Attempts this worker runs now (agent workers). */
  running: number;
  succeededLastHour: number;
  failedLastHour: number;
}

export interface TaskLinksView {
  self: string;
  temporalUi: string;
}

export interface RunningTaskView {
  id: string;
  agent: string;
  model: string | null;
  attempt: number | null;
  worker: string | null;
  startedAt: string | null;
  elapsedSeconds: number | null;
  links: TaskLinksView;
}

export interface RecentTaskView {
  id: string;
  status: string;
  agent: string;
  createdAt: string;
  finishedAt: string | null;
  durationSeconds: number | null;
  errorClass: string | null;
  links: TaskLinksView;
}

export interface FailureView {
  id: string;
  errorClass: string | null;
  message: string | null;
  finishedAt: string | null;
  links: TaskLinksView;
}

/** Per-minute series over the last hour, oldest first; `minutes` are the minutes' starts. */
export interface SeriesView {
  minutes: string[];
  submitted: number[];
  succeeded: number[];
  failed: number[];
  cancelled: number[];
  /** Median and 95th percentile of the time from a run's start to its success, in seconds. */
  p50Seconds: (number | null)[];
  p95Seconds: (number | null)[];
}

export interface DashboardSnapshot {
  generatedAt: string;
  /**
   * The newest task event's id: moves when a task is submitted or retried, an attempt starts or ends, or
   * a task ends; not when a task goes back to wait in the queue or a budget changes.
   */
  cursor: string;
  temporalUi: { workflows: string };
  counts: {
    queued: number;
    running: number;
    succeededLastHour: number;
    failedLastHour: number;
    cancelledLastHour: number;
  };
  queues: QueueView[];
  workers: WorkerView[];
  running: RunningTaskView[];
  recent: RecentTaskView[];
  failures: { attemptsByClass: { class: string; count: number }[]; recent: FailureView[] };
  series: SeriesView;
}
