import type { Pool } from 'pg';
import { boundedQuery } from '../db/bounded-query';

/**
 * Queued tasks that wait for an agent (`since` column): when each last became queued. That is when its
 * current run began (submission, retry or reset), when the current run's last attempt ended for a task
 * queued again behind a breaker, a limit or a budget, or, for a plan's task, when the last of its
 * dependencies ended: whichever is later. Its creation would make a retried task, or the last task of a
 * long plan, look days old. A plan's task that has not written its first record (its plan has not
 * started it: its dependencies or the plan's maxParallel hold it back; or it waits for its locks)
 * waits for its plan or its locks, not for an agent, and is left out.
 */
export const QUEUED_SINCE_SQL = `
  SELECT greatest(COALESCE(r.created_at, t.created_at), a.ended, p.ready) AS since
  FROM tasks t
  LEFT JOIN task_runs r ON r.task_id = t.id AND r.number = t.current_run
  LEFT JOIN LATERAL (
    SELECT max(finished_at) AS ended FROM attempts WHERE task_id = t.id AND run = t.current_run
  ) a ON true
  LEFT JOIN LATERAL (
    SELECT max(d.finished_at) AS ready
    FROM plan_tasks pt
    JOIN plan_tasks dep ON dep.plan_id = pt.plan_id AND dep.key = ANY (pt.depends_on)
    JOIN tasks d ON d.id = dep.task_id
    WHERE pt.task_id = t.id
  ) p ON true
  WHERE t.status = 'queued'
    AND NOT (t.run_id IS NULL AND EXISTS (SELECT FROM plan_tasks WHERE task_id = t.id))`;

/** Failed tasks by class: read in index tasks_failed_by_class alone (migration 0016). */
export const FAILED_BY_CLASS_SQL = `SELECT error_class, count(*)::int AS n FROM tasks WHERE status = 'failed' GROUP BY error_class`;

export interface TaskStats {
  byStatus: Record<string, number>;
  /** Failed tasks by their failure class. */
  failedByClass: Record<string, number>;
  /** Seconds the longest-waiting queued task has waited since it last became queued; 0 when none is. */
  oldestQueuedSeconds: number;
}

/** Aggregates over the tasks table, for GET /metrics. Read-only. */
export class TaskStatsStore {
  constructor(private readonly pool: Pool) {}

  /** Fails when PostgreSQL has not answered a query within `timeoutMs`. */
  async stats(timeoutMs?: number): Promise<TaskStats> {
    const [statuses, failures, oldest] = await Promise.all([
      this.pool.query<{ status: string; n: number }>(
        boundedQuery(timeoutMs, 'SELECT status, count(*)::int AS n FROM tasks GROUP BY status'),
      ),
      this.pool.query<{ error_class: string | null; n: number }>(boundedQuery(timeoutMs, FAILED_BY_CLASS_SQL)),
      this.pool.query<{ age: number | null }>(
        boundedQuery(
          timeoutMs,
          `SELECT extract(epoch FROM clock_timestamp() - min(since))::float8 AS age FROM (${QUEUED_SINCE_SQL}) queued`,
        ),
      ),
    ]);
    return {
      byStatus: Object.fromEntries(statuses.rows.map((r) => [r.status, r.n])),
      failedByClass: Object.fromEntries(failures.rows.map((r) => [r.error_class ?? 'unknown', r.n])),
      oldestQueuedSeconds: oldest.rows[0]?.age ?? 0,
    };
  }
}
