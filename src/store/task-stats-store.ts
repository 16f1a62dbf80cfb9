import type { Pool } from 'pg';

export interface TaskStats {
  byStatus: Record<string, number>;
  /** Failed tasks by their failure class. */
  failedByClass: Record<string, number>;
  /** Age of the oldest task still queued (no attempt started), in seconds; 0 when none is. */
  oldestQueuedSeconds: number;
}

/** Aggregates over the tasks table, for GET /metrics. Read-only. */
export class TaskStatsStore {
  constructor(private readonly pool: Pool) {}

  async stats(): Promise<TaskStats> {
    const [statuses, failures, oldest] = await Promise.all([
      this.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM tasks GROUP BY status'),
      this.pool.query<{ error_class: string | null; n: number }>(
        `SELECT error_class, count(*)::int AS n FROM tasks WHERE status = 'failed' GROUP BY error_class`,
      ),
      this.pool.query<{ age: number | null }>(
        `SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8 AS age FROM tasks WHERE status = 'queued'`,
      ),
    ]);
    return {
      byStatus: Object.fromEntries(statuses.rows.map((r) => [r.status, r.n])),
      failedByClass: Object.fromEntries(failures.rows.map((r) => [r.error_class ?? 'unknown', r.n])),
      oldestQueuedSeconds: oldest.rows[0]?.age ?? 0,
    };
  }
}
