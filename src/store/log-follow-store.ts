import type { Pool } from 'pg';

export interface LogChunkRow {
  run: number;
  attempt: number;
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
}

/** The most a page of chunks holds: `rows` chunks, of at most `bytes` bytes of text (UTF-8) together. */
export interface PageBound {
  rows: number;
  bytes: number;
}

export interface LogPage {
  chunks: LogChunkRow[];
  /** Whether chunks come after the page: read on from its last. */
  more: boolean;
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

  /**
   * Chunks of `run` after `after`, in order (primary-key order: no sort needed): a page of at most
   * `bound.rows` chunks holding at most `bound.bytes` bytes of text, or the one chunk that comes next if
   * that alone is larger, so a reader holds about a page whatever the chunks' sizes. `more` says whether
   * chunks follow the page (those stored by then): a page can end short of `bound.rows` with more to read.
   */
  async chunksAfter(
    taskId: string,
    run: number,
    after: LogCursor,
    attempt: number | undefined,
    bound: PageBound,
  ): Promise<LogPage> {
    // The window runs along the index scan, which the LIMIT stops a row after the page (`lead` looks
    // one ahead); octet_length reads a stored value's size from its header, so chunks left out of the
    // page are never read whole.
    const res = await this.pool.query<LogChunkRow & { followed: boolean }>(
      `SELECT run, attempt, seq, stream, data, followed FROM (
         SELECT run, attempt, seq, stream, data,
                row_number() OVER w AS n,
                sum(octet_length(data)) OVER (w ROWS UNBOUNDED PRECEDING) AS upto,
                lead(seq) OVER w IS NOT NULL AS followed
         FROM task_logs
         WHERE task_id = $1 AND run = $2 AND (attempt, seq) > ($3, $4) AND ($5::int IS NULL OR attempt = $5)
         WINDOW w AS (ORDER BY attempt, seq)
         ORDER BY attempt, seq LIMIT $6
       ) page
       WHERE n = 1 OR upto <= $7
       ORDER BY attempt, seq`,
      [taskId, run, after.attempt, after.seq, attempt ?? null, bound.rows, bound.bytes],
    );
    const chunks = res.rows.map(({ run, attempt, seq, stream, data }) => ({ run, attempt, seq, stream, data }));
    return { chunks, more: res.rows.at(-1)?.followed === true };
  }
}
