import type { Pool } from 'pg';

export interface LogChunkRow {
  run: number;
  attempt: number;
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
}

/** A position in one run's log: the last chunk a follower has seen. */
export interface LogCursor {
  attempt: number;
  seq: number;
}

/** What a log follower reads: a task's status and run, and the chunks after its cursor. Read-only. */
export class LogFollowStore {
  constructor(private readonly pool: Pool) {}

  async taskState(taskId: string): Promise<{ status: string; currentRun: number } | undefined> {
    const res = await this.pool.query<{ status: string; current_run: number }>(
      'SELECT status, current_run FROM tasks WHERE id = $1',
      [taskId],
    );
    const row = res.rows[0];
    return row ? { status: row.status, currentRun: row.current_run } : undefined;
  }

  /**
   * Whether attempt `attempt` of `run` has ended. Its worker writes all its output before it records the
   * end; an attempt taken for lost was closed for its worker, whose agent may have run on and may still
   * add output, which the stored log keeps and a follower of that attempt alone no longer waits for.
   */
  async attemptEnded(taskId: string, run: number, attempt: number): Promise<boolean> {
    const res = await this.pool.query<{ ended: boolean }>(
      'SELECT finished_at IS NOT NULL AS ended FROM attempts WHERE task_id = $1 AND run = $2 AND number = $3',
      [taskId, run, attempt],
    );
    return res.rows[0]?.ended === true;
  }

  /** Whether the chunk at `at` of `run` is stored: the ids of a follow stream are those of its chunks. */
  async hasChunk(taskId: string, run: number, at: LogCursor): Promise<boolean> {
    const res = await this.pool.query<{ found: boolean }>(
      'SELECT EXISTS (SELECT FROM task_logs WHERE task_id = $1 AND run = $2 AND attempt = $3 AND seq = $4) AS found',
      [taskId, run, at.attempt, at.seq],
    );
    return res.rows[0]?.found === true;
  }

  /** Chunks of `run` after `after`, in order (primary-key order: no sort needed), at most `limit`. */
  async chunksAfter(
    taskId: string,
    run: number,
    after: LogCursor,
    attempt: number | undefined,
    limit: number,
  ): Promise<LogChunkRow[]> {
    const res = await this.pool.query<LogChunkRow>(
      `SELECT run, attempt, seq, stream, data FROM task_logs
       WHERE task_id = $1 AND run = $2 AND (attempt, seq) > ($3, $4) AND ($5::int IS NULL OR attempt = $5)
       ORDER BY attempt, seq LIMIT $6`,
      [taskId, run, after.attempt, after.seq, attempt ?? null, limit],
    );
    return res.rows;
  }
}
