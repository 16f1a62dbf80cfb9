import type { Pool } from 'pg';
import type { AttemptFailureRecord, FailureClass, TaskOutcomeRecord } from '../../workflows/definitions';

export interface TaskToRun {
  prompt: string;
  status: string;
  /** Set once the task has succeeded: the result an attempt already recorded. */
  result: { exitCode: number; outputBytes: number; outputTail: string } | null;
}

export interface AttemptStart {
  taskId: string;
  attempt: number;
  agent: string;
  model?: string;
  worker: string;
}

export interface AttemptEnd {
  taskId: string;
  attempt: number;
  exitCode: number | null;
  failureClass: FailureClass;
  error: string | null;
  outputBytes: number;
  output: string;
}

export interface LogChunk {
  taskId: string;
  attempt: number;
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
}

/** PostgreSQL cannot store NUL in text; agents rarely print it, and losing it beats losing the row. */
const storable = (text: string): string => text.replaceAll('\u0000', '');

/**
 * The writes activities make while tasks run. Every statement is idempotent (keyed by task id and
 * attempt number, `ON CONFLICT` or guarded updates), because activities retry.
 */
export class AttemptStore {
  constructor(private readonly pool: Pool) {}

  async taskToRun(taskId: string, tailChars: number): Promise<TaskToRun | undefined> {
    const res = await this.pool.query<{
      prompt: string;
      status: string;
      exit_code: number | null;
      output_bytes: string | null;
      tail: string | null;
    }>(
      `SELECT t.prompt, t.status, t.result_exit_code AS exit_code, a.output_bytes, right(a.output, $2) AS tail
       FROM tasks t LEFT JOIN attempts a ON a.task_id = t.id AND a.number = t.result_attempt
       WHERE t.id = $1`,
      [taskId, tailChars],
    );
    const row = res.rows[0];
    if (!row) return undefined;
    const succeeded = row.status === 'succeeded';
    return {
      prompt: row.prompt,
      status: row.status,
      result: succeeded
        ? { exitCode: row.exit_code ?? 0, outputBytes: Number(row.output_bytes ?? 0), outputTail: row.tail ?? '' }
        : null,
    };
  }

  async startAttempt(a: AttemptStart): Promise<void> {
    await this.pool.query(
      `WITH attempt AS (
         INSERT INTO attempts (task_id, number, agent, model, worker) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (task_id, number) DO UPDATE SET worker = EXCLUDED.worker, started_at = clock_timestamp()
       ), event AS (
         INSERT INTO task_events (task_id, kind, attempt, detail) VALUES ($1, 'attempt_started', $2, $6)
         ON CONFLICT DO NOTHING
       )
       UPDATE tasks SET status = 'running', started_at = COALESCE(started_at, clock_timestamp())
       WHERE id = $1 AND status IN ('queued', 'running')`,
      [a.taskId, a.attempt, a.agent, a.model ?? null, a.worker, { agent: a.agent, model: a.model, worker: a.worker }],
    );
  }

  /**
   * Closes the attempt. A successful attempt also makes the task `succeeded`, in the same statement:
   * the result is committed before Temporal hears of it, so an attempt retried after a crash in between
   * finds the task done and does not run the agent again.
   */
  async finishAttempt(e: AttemptEnd): Promise<void> {
    await this.pool.query(
      `WITH attempt AS (
         UPDATE attempts SET finished_at = clock_timestamp(), exit_code = $3, failure_class = $4, error = $5,
           output_bytes = $6, output = $7
         WHERE task_id = $1 AND number = $2 AND finished_at IS NULL
       ), events AS (
         -- One INSERT, so the audit trail keeps its order: the attempt's end, then the task's.
         INSERT INTO task_events (task_id, kind, attempt, terminal, detail)
         SELECT $1, v.kind, $2, v.terminal, $8
         FROM (VALUES ('attempt_finished', false), ('succeeded', true)) AS v (kind, terminal)
         WHERE NOT v.terminal OR $4 = 'succeeded'
         ON CONFLICT DO NOTHING
         RETURNING task_id, terminal
       )
       UPDATE tasks SET status = 'succeeded', finished_at = clock_timestamp(), result_attempt = $2, result_exit_code = $3
       WHERE id IN (SELECT task_id FROM events WHERE terminal)`,
      [
        e.taskId,
        e.attempt,
        e.exitCode,
        e.failureClass,
        e.error === null ? null : storable(e.error),
        e.outputBytes,
        storable(e.output),
        { failureClass: e.failureClass, exitCode: e.exitCode },
      ],
    );
  }

  /** Closes an attempt whose worker could not (it died or went silent); a closed attempt stays as it is. */
  async recordAttemptFailure(f: AttemptFailureRecord): Promise<void> {
    await this.pool.query(
      `WITH event AS (
         INSERT INTO task_events (task_id, kind, attempt, detail) VALUES ($1, 'attempt_finished', $2, $5)
         ON CONFLICT DO NOTHING
       )
       INSERT INTO attempts (task_id, number, agent, model, finished_at, failure_class, error)
       VALUES ($1, $2, $6, $7, clock_timestamp(), $3, $4)
       ON CONFLICT (task_id, number) DO UPDATE
         SET finished_at = EXCLUDED.finished_at, failure_class = EXCLUDED.failure_class, error = EXCLUDED.error
         WHERE attempts.finished_at IS NULL`,
      [
        f.taskId,
        f.attempt,
        f.failureClass,
        storable(f.message),
        { failureClass: f.failureClass },
        f.agent,
        f.model ?? null,
      ],
    );
  }

  /**
   * Writes the task's one terminal state. The partial unique index on terminal events means a second
   * outcome, from a retry or a race, changes nothing.
   */
  async recordTaskOutcome(o: TaskOutcomeRecord): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const inserted = await client.query(
        `INSERT INTO task_events (task_id, kind, attempt, terminal, detail) VALUES ($1, $2, $3, true, $4)
         ON CONFLICT DO NOTHING`,
        [o.taskId, o.status, o.attempt, { exitCode: o.exitCode, error: o.error }],
      );
      if (inserted.rowCount === 1) {
        await client.query(
          `UPDATE tasks SET status = $2, finished_at = clock_timestamp(), result_attempt = $3,
             result_exit_code = $4, error_class = $5, error_message = $6
           WHERE id = $1`,
          [
            o.taskId,
            o.status,
            o.status === 'succeeded' ? o.attempt : null,
            o.exitCode ?? null,
            o.error?.class ?? null,
            o.error ? storable(o.error.message) : null,
          ],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async appendLog(chunk: LogChunk): Promise<void> {
    await this.pool.query(
      `INSERT INTO task_logs (task_id, attempt, seq, stream, data) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING`,
      [chunk.taskId, chunk.attempt, chunk.seq, chunk.stream, storable(chunk.data)],
    );
  }
}
