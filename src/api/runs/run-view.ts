import type { TaskStatus } from '../../../workflows/definitions';
import type { AttemptRow } from '../../store/task-store';
import type { RunAttemptRow, RunRow } from '../../store/run-store';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** One attempt as the API shows it. */
export const attemptView = (a: AttemptRow) => ({
  number: a.number,
  agent: a.agent,
  model: a.model,
  worker: a.worker,
  startedAt: iso(a.started_at),
  finishedAt: iso(a.finished_at),
  exitCode: a.exit_code,
  failureClass: a.failure_class,
  error: a.error,
  outputBytes: Number(a.output_bytes),
});

const numberOrNull = (v: unknown): number | null => (typeof v === 'number' ? v : null);

/**
 * The runs of a task, first first, for `GET /v1/tasks/:id`. A run's status is its terminal event's;
 * the current run without one has the task's status; an earlier run without one was superseded (its
 * workflow was reset or terminated outside Atelier while it ran).
 */
export function runsView(
  runs: RunRow[],
  attempts: RunAttemptRow[],
  task: { status: TaskStatus; current_run: number },
  temporalUi: (runId: string | null) => string,
) {
  return runs.map((r) => ({
    number: r.number,
    kind: r.kind,
    runId: r.run_id,
    status: r.outcome ?? (r.number === task.current_run ? task.status : 'superseded'),
    createdAt: iso(r.created_at),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    error: r.outcome_detail?.error ?? null,
    fromRun: numberOrNull(r.detail.fromRun),
    resetToEventId: numberOrNull(r.detail.resetToEventId),
    attempts: attempts.filter((a) => a.run === r.number).map(attemptView),
    links: { temporalUi: temporalUi(r.run_id) },
  }));
}

export type RunView = ReturnType<typeof runsView>[number];
