import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { prepared } from '../db/prepared';
import { inTransaction } from '../db/transaction';
import { retryTransient } from '../db/transient';
import { NOTIFICATION_TYPES } from '../notifications/notification-types';
import { enqueueNotification } from '../notifications/outbox';
import { RunStore } from './run-store';
import {
  FAILURE_CLASSES,
  type AttemptFailureRecord,
  type FailureClass,
  type RecordedOutcome,
  type TaskOutcomeRecord,
  type TerminalStatus,
  type WaitingRecord,
} from '../../workflows/definitions';

export interface TaskToRun {
  prompt: string;
  status: string;
  /** Set once an attempt of the run has succeeded: its result, its number and its agent. */
  result: { exitCode: number; outputBytes: number; outputTail: string; attempt: number; agent: string } | null;
}

/**
 * Every write names the Temporal run it comes from (`runId`, from the activity's context): attempts,
 * logs and events are kept per run (infra/migrations/0004_runs.sql). Without it, the task's current run.
 */
export interface AttemptStart {
  taskId: string;
  runId?: string;
  attempt: number;
  agent: string;
  model?: string;
  worker: string;
}

export interface AttemptEnd {
  taskId: string;
  runId?: string;
  attempt: number;
  exitCode: number | null;
  failureClass: FailureClass;
  error: string | null;
  outputBytes: number;
  output: string;
  /** A success closes the attempt only: the workflow ends the task itself (see `RunAgentInput.deferSuccess`). */
  deferSuccess?: boolean;
  /**
   * A success left to the workflow whose work could not be committed before the attempt closed: it is
   * only in this worker's worktree, so it does not answer a later attempt if this one's answer is lost.
   */
  workUnsaved?: boolean;
  /**
   * `performance.now()` when the agent's process ended: the attempt's end is then (by the database's
   * clock, like its start), not when its records were written.
   */
  endedAt?: number;
}

export interface LogChunk {
  taskId: string;
  runId?: string;
  attempt: number;
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
}

/** Half of a UTF-16 pair without its other half: an agent's text cut in the middle of a character. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * PostgreSQL stores neither NUL nor, in `jsonb`, half a UTF-16 pair (a write would fail, and retry for
 * ever); agents rarely print either, and losing them beats losing the row.
 */
const storable = (text: string): string => text.replaceAll('\u0000', '').replace(LONE_SURROGATE, '\uFFFD');

/**
 * Closes the attempts of run $2 of task $1 still open, as class $3 with error $4 (and detail $5), with
 * their `attempt_finished` events. An attempt closed meanwhile stays as it is.
 */
const CLOSE_OPEN_ATTEMPTS = `WITH closed AS (
    UPDATE attempts SET finished_at = clock_timestamp(), failure_class = $3, error = $4
    WHERE task_id = $1 AND run = $2 AND finished_at IS NULL
    RETURNING number
  )
  INSERT INTO task_events (task_id, run, kind, attempt, detail)
  SELECT $1, $2, 'attempt_finished', number, $5 FROM closed
  ON CONFLICT DO NOTHING`;

/**
 * The writes activities make while tasks run. Every statement is idempotent (keyed by task id and
 * attempt number, `ON CONFLICT` or guarded updates), because activities retry.
 */
export class AttemptStore {
  private readonly runs: RunStore;
  private readonly notify: boolean;

  /** `notify`: enqueue a `task.failed` webhook notification when a run fails (webhooks configured). */
  constructor(
    private readonly pool: Pool,
    opts: { notify?: boolean } = {},
  ) {
    this.runs = new RunStore(pool);
    this.notify = opts.notify ?? false;
  }

  /**
   * Every statement here is idempotent, so a restarting database is waited out rather than failing a
   * run. They run for every task, so each connection prepares them once.
   */
  private query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>> {
    return this.queryWith(() => [text, values]);
  }

  /** `query`, with the statement and its values made again for each try. */
  private queryWith<R extends QueryResultRow = QueryResultRow>(
    statement: () => [text: string, values?: unknown[]],
  ): Promise<QueryResult<R>> {
    return retryTransient(() => this.pool.query<R>(prepared(...statement())));
  }

  /**
   * The task's prompt, and the result of run `runId` if an attempt of that run already succeeded (its
   * first), with that attempt's number and agent: what answers a later attempt. One round trip: the
   * run's number is looked up in the same statement, unless this process knows it already; a run not
   * recorded yet is recorded first (`RunStore.runNumber`).
   */
  async taskToRun(taskId: string, tailChars: number, runId?: string): Promise<TaskToRun | undefined> {
    const known = runId === undefined ? undefined : this.runs.cached(taskId, runId);
    const res = await this.query<{
      prompt: string;
      status: string;
      run: number | null;
      attempt: number | null;
      agent: string | null;
      exit_code: number | null;
      output_bytes: string | null;
      tail: string | null;
    }>(
      `SELECT t.prompt, t.status, r.number AS run, a.number AS attempt, a.agent, a.exit_code, a.output_bytes,
         right(a.output, $2) AS tail
       FROM tasks t
       CROSS JOIN LATERAL (
         SELECT CASE WHEN $4::text IS NULL THEN t.current_run
           ELSE COALESCE($3::int, (SELECT number FROM task_runs WHERE task_id = t.id AND run_id = $4)) END AS number
       ) r
       LEFT JOIN LATERAL (
         SELECT number, agent, exit_code, output_bytes, output FROM attempts
         WHERE task_id = t.id AND run = r.number AND failure_class = 'succeeded' AND NOT work_unsaved
         ORDER BY number LIMIT 1
       ) a ON true
       WHERE t.id = $1`,
      [taskId, tailChars, known ?? null, runId ?? null],
    );
    const row = res.rows[0];
    if (!row) return undefined;
    if (runId !== undefined) {
      if (row.run === null) {
        // A run not recorded yet: recorded now, and read again with its number known.
        await this.runs.runNumber(taskId, runId);
        return this.taskToRun(taskId, tailChars, runId);
      }
      this.runs.remember(taskId, runId, row.run);
    }
    return {
      prompt: row.prompt,
      status: row.status,
      // The succeeded attempt's columns, null together when the run has none.
      result:
        row.attempt === null || row.agent === null
          ? null
          : {
              exitCode: row.exit_code ?? 0,
              outputBytes: Number(row.output_bytes ?? 0),
              outputTail: row.tail ?? '',
              attempt: row.attempt,
              agent: row.agent,
            },
    };
  }

  /**
   * Opens the attempt (again, when its start is repeated) and shows the task running. False, and nothing
   * written, when the attempt is closed already: the workflow took it for lost and moved on.
   */
  async startAttempt(a: AttemptStart): Promise<boolean> {
    const run = await this.runs.runNumber(a.taskId, a.runId);
    const res = await this.query<{ opened: boolean }>(
      `WITH attempt AS (
         INSERT INTO attempts (task_id, run, number, agent, model, worker) VALUES ($1, $7, $2, $3, $4, $5)
         ON CONFLICT (task_id, run, number) DO UPDATE SET worker = EXCLUDED.worker, started_at = clock_timestamp()
           WHERE attempts.finished_at IS NULL
         RETURNING number
       ), event AS (
         INSERT INTO task_events (task_id, run, kind, attempt, detail)
         SELECT $1, $7, 'attempt_started', $2, $6 WHERE EXISTS (SELECT FROM attempt)
         ON CONFLICT DO NOTHING
       ), task AS (
         UPDATE tasks SET status = 'running', started_at = COALESCE(started_at, clock_timestamp()), waiting_reason = NULL
         WHERE id = $1 AND current_run = $7 AND status IN ('queued', 'running') AND EXISTS (SELECT FROM attempt)
       )
       SELECT EXISTS (SELECT FROM attempt) AS opened`,
      [
        a.taskId,
        a.attempt,
        a.agent,
        a.model ?? null,
        a.worker,
        { agent: a.agent, model: a.model, worker: a.worker },
        run,
      ],
    );
    return res.rows[0]?.opened === true;
  }

  /**
   * Closes the attempt. A successful attempt also makes the task `succeeded`, in the same statement
   * (unless the workflow ends the task itself: `deferSuccess`): the result is committed before Temporal
   * hears of it, so an attempt retried after a crash in between finds it and does not run the agent again.
   * An attempt already closed (by this call's earlier try, or by the workflow after its worker went
   * silent) is left as it is, and writes nothing else.
   */
  async finishAttempt(e: AttemptEnd): Promise<void> {
    const run = await this.runs.runNumber(e.taskId, e.runId);
    // How long ago the process ended, measured again by each try: a write that waits out a database
    // restart still dates the end to the process's.
    const endedMsAgo = (): number =>
      e.endedAt === undefined ? 0 : Math.max(0, Math.round(performance.now() - e.endedAt));
    await this.queryWith(() => [
      `WITH attempt AS (
         UPDATE attempts SET finished_at = clock_timestamp() - make_interval(secs => $11 / 1000.0), exit_code = $3,
           failure_class = $4, error = $5, output_bytes = $6, output = $7, work_unsaved = $12
         WHERE task_id = $1 AND run = $9 AND number = $2 AND finished_at IS NULL
         RETURNING number
       ), events AS (
         -- One INSERT, so the audit trail keeps its order: the attempt's end, then the task's. Only
         -- when this call closed the attempt: one the workflow already closed (its worker was thought
         -- dead and the task moved on) cannot end the task.
         INSERT INTO task_events (task_id, run, kind, attempt, terminal, detail)
         SELECT $1, $9, v.kind, $2, v.terminal, $8
         FROM (VALUES ('attempt_finished', false), ('succeeded', true)) AS v (kind, terminal)
         WHERE EXISTS (SELECT FROM attempt) AND (NOT v.terminal OR ($4 = 'succeeded' AND NOT $10))
         ON CONFLICT DO NOTHING
         RETURNING task_id, terminal
       )
       UPDATE tasks SET status = 'succeeded', finished_at = clock_timestamp(), result_attempt = $2, result_exit_code = $3
       WHERE id IN (SELECT task_id FROM events WHERE terminal) AND current_run = $9`,
      [
        e.taskId,
        e.attempt,
        e.exitCode,
        e.failureClass,
        e.error === null ? null : storable(e.error),
        e.outputBytes,
        storable(e.output),
        { failureClass: e.failureClass, exitCode: e.exitCode },
        run,
        e.deferSuccess ?? false,
        endedMsAgo(),
        e.workUnsaved ?? false,
      ],
    ]);
  }

  /** Closes an attempt whose worker could not (it died or went silent); a closed attempt stays as it is. */
  async recordAttemptFailure(f: AttemptFailureRecord, runId?: string): Promise<void> {
    const run = await this.runs.runNumber(f.taskId, runId);
    await this.query(
      `WITH event AS (
         INSERT INTO task_events (task_id, run, kind, attempt, detail) VALUES ($1, $8, 'attempt_finished', $2, $5)
         ON CONFLICT DO NOTHING
       )
       INSERT INTO attempts (task_id, run, number, agent, model, finished_at, failure_class, error)
       VALUES ($1, $8, $2, $6, $7, clock_timestamp(), $3, $4)
       ON CONFLICT (task_id, run, number) DO UPDATE
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
        run,
      ],
    );
  }

  /**
   * Closes every attempt of run `runId` still open, as `failureClass` with `message`: the run's workflow
   * closed in Temporal (terminated, timed out) and its worker, gone or told so, will not. An attempt
   * closed meanwhile stays as it is; a late write of its worker finds it closed and changes nothing.
   */
  async closeOpenAttempts(taskId: string, runId: string, failureClass: FailureClass, message: string): Promise<void> {
    const run = await this.runs.runNumber(taskId, runId);
    await this.query(CLOSE_OPEN_ATTEMPTS, [taskId, run, failureClass, storable(message), { failureClass }]);
  }

  /**
   * Writes the run's one terminal state, and the task's while the run is its current one. The partial
   * unique index on terminal events (one per run) means a second outcome, from a retry or a race,
   * changes nothing. Answers the run's terminal state as recorded: another one than asked for when the
   * run already had one (a success its worker wrote before Temporal heard of it). With
   * `unlessAttemptSucceeded`, a run whose success an attempt closed but left to the workflow
   * (`deferSuccess`) gets nothing written: that success is the answer, and the workflow records it once
   * the work is committed (unless that attempt's work could not be saved: `AttemptEnd.workUnsaved`).
   */
  async recordTaskOutcome(o: TaskOutcomeRecord, runId?: string): Promise<RecordedOutcome> {
    return (await this.writeTaskOutcome(o, runId)).outcome;
  }

  /**
   * recordTaskOutcome, and whether this call wrote the run's terminal state (false when the run had one
   * already, and when the answer to a write that went through was lost and the retry found it).
   */
  async writeTaskOutcome(
    o: TaskOutcomeRecord,
    runId?: string,
  ): Promise<{ outcome: RecordedOutcome; written: boolean }> {
    const run = await this.runs.runNumber(o.taskId, runId);
    return retryTransient(() => this.recordTaskOutcomeOnce(o, run));
  }

  private recordTaskOutcomeOnce(
    o: TaskOutcomeRecord,
    run: number,
  ): Promise<{ outcome: RecordedOutcome; written: boolean }> {
    return inTransaction(this.pool, async (client) => {
      if (o.unlessAttemptSucceeded) {
        const deferred = await client.query<{ number: number; exit_code: number | null; agent: string }>(
          `SELECT a.number, a.exit_code, a.agent FROM attempts a
           WHERE a.task_id = $1 AND a.run = $2 AND a.failure_class = 'succeeded' AND NOT a.work_unsaved
             AND NOT EXISTS (SELECT FROM task_events e WHERE e.task_id = $1 AND e.run = $2 AND e.terminal)
           ORDER BY a.number LIMIT 1`,
          [o.taskId, run],
        );
        const success = deferred.rows[0];
        if (success) {
          const outcome: RecordedOutcome = {
            status: 'succeeded',
            attempt: success.number,
            ...(success.exit_code !== null && { exitCode: success.exit_code }),
            agent: success.agent,
          };
          return { outcome, written: false };
        }
      }
      // A run that ends has no attempt left open. One may be when its worker died and the workflow could
      // not close it: a cancel arriving meanwhile leaves the workflow's cancelled scope unable to.
      const closedAs = o.status === 'cancelled' ? FAILURE_CLASSES.cancelled : FAILURE_CLASSES.crash;
      await client.query(CLOSE_OPEN_ATTEMPTS, [
        o.taskId,
        run,
        closedAs,
        `its worker never recorded its end; closed as its run ended ${o.status}`,
        { failureClass: closedAs },
      ]);
      // A cancel ends the run on its latest attempt, the one it stopped. The chain loop names the attempt
      // before that one: its count moves on only when an attempt answers, and a cancelled one never does.
      // (Running histories must replay, so the workflow is left as it is.) An attempt that admission held
      // back opened no row, so the latest row is always one that ran.
      const inserted = await client.query<{ attempt: number }>(
        `INSERT INTO task_events (task_id, run, kind, attempt, terminal, detail)
         SELECT $1, $5, $2, CASE WHEN $2 = 'cancelled'
             THEN GREATEST($3, (SELECT max(number) FROM attempts WHERE task_id = $1 AND run = $5)) ELSE $3 END,
           true, $4
         ON CONFLICT DO NOTHING
         RETURNING attempt`,
        [
          o.taskId,
          o.status,
          o.attempt,
          { exitCode: o.exitCode, error: o.error && { class: o.error.class, message: storable(o.error.message) } },
          run,
        ],
      );
      const event = inserted.rows[0];
      if (event === undefined) {
        const recorded = await client.query<{
          kind: TerminalStatus;
          attempt: number;
          exit_code: number | null;
          agent: string | null;
        }>(
          `SELECT e.kind, e.attempt, a.exit_code, a.agent FROM task_events e
           LEFT JOIN attempts a ON a.task_id = e.task_id AND a.run = e.run AND a.number = e.attempt
           WHERE e.task_id = $1 AND e.run = $2 AND e.terminal`,
          [o.taskId, run],
        );
        // The insert met the run's terminal event (one per run): that is the outcome.
        const row = recorded.rows[0] ?? { kind: o.status, attempt: o.attempt, exit_code: null, agent: null };
        const outcome: RecordedOutcome = {
          status: row.kind,
          attempt: row.attempt,
          ...(row.exit_code !== null && { exitCode: row.exit_code }),
          ...(row.agent !== null && { agent: row.agent }),
        };
        return { outcome, written: false };
      }
      await client.query(
        `UPDATE tasks SET status = $2, finished_at = clock_timestamp(), result_attempt = $3,
           result_exit_code = $4, error_class = $5, error_message = $6, waiting_reason = NULL
         WHERE id = $1 AND current_run = $7`,
        [
          o.taskId,
          o.status,
          o.status === 'succeeded' ? o.attempt : null,
          o.exitCode ?? null,
          o.error?.class ?? null,
          o.error ? storable(o.error.message) : null,
          run,
        ],
      );
      if (o.status === 'failed' && this.notify) {
        // In the transaction that wrote the run's one terminal event: one notification per failed run.
        // The attempt the run ended on; for an end recorded at attempt 0 (its workflow closed in Temporal
        // without recording one), the run's last attempt, if it made any.
        const task = await client.query<{
          agent: string;
          labels: Record<string, string>;
          exit_code: number | null;
          number: number | null;
        }>(
          `SELECT COALESCE(a.agent, t.agent) AS agent, t.labels, a.exit_code, a.number
           FROM tasks t LEFT JOIN LATERAL (
             SELECT agent, exit_code, number FROM attempts
             WHERE task_id = t.id AND run = $2 AND ($3::int = 0 OR number = $3::int)
             ORDER BY number DESC LIMIT 1
           ) a ON true
           WHERE t.id = $1`,
          [o.taskId, run, o.attempt],
        );
        await enqueueNotification(client, {
          type: NOTIFICATION_TYPES.taskFailed,
          dedupeKey: `task.failed:${o.taskId}:${run}`,
          data: {
            taskId: o.taskId,
            run,
            attempt: o.attempt === 0 ? (task.rows[0]?.number ?? 0) : o.attempt,
            agent: task.rows[0]?.agent ?? null,
            labels: task.rows[0]?.labels ?? {},
            exitCode: o.exitCode ?? task.rows[0]?.exit_code ?? null,
            error: o.error ? { class: o.error.class, message: storable(o.error.message) } : null,
          },
        });
      }
      const outcome: RecordedOutcome = {
        status: o.status,
        attempt: event.attempt,
        ...(o.exitCode !== undefined && { exitCode: o.exitCode }),
      };
      return { outcome, written: true };
    });
  }

  /**
   * Shows why the task waits (breaker open, limits, budget): `queued` with the reason, while its run is
   * the current one and the task has not ended. The next attempt to start clears it.
   */
  async recordWaiting(w: WaitingRecord, runId?: string): Promise<void> {
    const run = await this.runs.runNumber(w.taskId, runId);
    await this.query(
      `UPDATE tasks SET status = 'queued', waiting_reason = $2
       WHERE id = $1 AND current_run = $3 AND status IN ('queued', 'running')`,
      [w.taskId, { ...w.wait, until: w.wait.until === null ? null : new Date(w.wait.until).toISOString() }, run],
    );
  }

  async appendLog(chunk: LogChunk): Promise<void> {
    const run = await this.runs.runNumber(chunk.taskId, chunk.runId);
    await this.query(
      `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data) VALUES ($1, $6, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING`,
      [chunk.taskId, chunk.attempt, chunk.seq, chunk.stream, storable(chunk.data), run],
    );
  }
}
