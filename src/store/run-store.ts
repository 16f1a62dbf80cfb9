import type { Pool, PoolClient } from 'pg';
import type { TaskStatus, TerminalStatus } from '../../workflows/definitions';
import { prepared } from '../db/prepared';
import { inTransaction } from '../db/transaction';
import { retryTransient } from '../db/transient';

/** How a run came to be (see infra/migrations/0004_runs.sql). */
export type RunKind = 'submitted' | 'retry' | 'reset' | 'external';

export interface RunRow {
  number: number;
  run_id: string | null;
  kind: RunKind;
  detail: Record<string, unknown>;
  created_at: Date;
  /** When the run's first attempt started. */
  started_at: Date | null;
  /** The run's terminal event, if it has one. */
  outcome: TerminalStatus | null;
  finished_at: Date | null;
  outcome_detail: { exitCode?: number | null; error?: { class: string; message: string } | null } | null;
}

export interface RunAttemptRow {
  run: number;
  number: number;
  agent: string;
  model: string | null;
  worker: string | null;
  started_at: Date;
  finished_at: Date | null;
  exit_code: number | null;
  failure_class: string | null;
  error: string | null;
  output_bytes: string;
}

/** The task row as a new run sees it, locked for the length of the run's start. */
export interface LockedTask {
  id: string;
  status: TaskStatus;
  current_run: number;
  run_id: string | null;
  workflow_id: string;
}

/** What starting a run in Temporal returned: its run id, and facts for the audit trail. */
export interface StartedRun {
  runId: string;
  detail?: Record<string, unknown>;
}

/** Run numbers never change once assigned, so a process may remember them; bounded, then forgotten. */
const CACHE_LIMIT = 10_000;
/**
 * One memory per pool (that is, per database), shared by every store that writes through it: the
 * attempt, usage and bookkeeping stores each look up the same runs.
 */
const knownByPool = new WeakMap<Pool, Map<string, number>>();

/**
 * The runs of tasks. Writers (the activities) name their run by Temporal run id; this maps it to the
 * run's number, the key of attempts, logs and events. The API records a run before it starts it, so
 * the mapping normally exists before the run's first write; when it does not (the API died between
 * the start and its commit, or someone reset the workflow in the Temporal Web UI), the first write
 * records the run itself, so PostgreSQL follows whatever Temporal runs.
 */
export class RunStore {
  private readonly known: Map<string, number>;

  constructor(private readonly pool: Pool) {
    this.known = knownByPool.get(pool) ?? new Map<string, number>();
    knownByPool.set(pool, this.known);
  }

  /**
   * The number of the run whose Temporal run id is `runId`; without one, the task's current run.
   * Writes of an old run (a zombie attempt of a run that was retried since) therefore land in that old
   * run, never in the current one.
   */
  async runNumber(taskId: string, runId: string | undefined): Promise<number> {
    if (runId === undefined) {
      const res = await retryTransient(() =>
        this.pool.query<{ current_run: number }>('SELECT current_run FROM tasks WHERE id = $1', [taskId]),
      );
      return res.rows[0]?.current_run ?? 1;
    }
    const cached = this.cached(taskId, runId);
    if (cached !== undefined) return cached;
    const found = await retryTransient(() =>
      this.pool.query<{ number: number }>(
        prepared('SELECT number FROM task_runs WHERE task_id = $1 AND run_id = $2', [taskId, runId]),
      ),
    );
    const number = found.rows[0]?.number ?? (await retryTransient(() => this.registerRun(taskId, runId)));
    this.remember(taskId, runId, number);
    return number;
  }

  /** The number of run `runId` if this process has met it already: no query. */
  cached(taskId: string, runId: string): number | undefined {
    return this.known.get(`${taskId}/${runId}`);
  }

  /** Remembers the number of a run that another statement found (see `runNumber`). */
  remember(taskId: string, runId: string, number: number): void {
    if (this.known.size >= CACHE_LIMIT) this.known.clear();
    this.known.set(`${taskId}/${runId}`, number);
  }

  /** The slow path of runNumber, under the task's row lock (which a starting run holds until it commits). */
  private async registerRun(taskId: string, runId: string): Promise<number> {
    return inTransaction(this.pool, async (db) => {
      const task = await db.query<{ current_run: number }>('SELECT current_run FROM tasks WHERE id = $1 FOR UPDATE', [
        taskId,
      ]);
      if (!task.rows[0]) return 1; // no such task: the write that asked fails on its own
      const known = await db.query<{ number: number }>(
        'SELECT number FROM task_runs WHERE task_id = $1 AND run_id = $2',
        [taskId, runId],
      );
      if (known.rows[0]) return known.rows[0].number;
      const latest = (
        await db.query<{ number: number; run_id: string | null }>(
          'SELECT number, run_id FROM task_runs WHERE task_id = $1 ORDER BY number DESC LIMIT 1',
          [taskId],
        )
      ).rows[0];
      if (!latest) {
        // A task stored without its run (by an older API): this is its first run.
        await db.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 1, $2, 'submitted')`, [
          taskId,
          runId,
        ]);
        return 1;
      }
      if (latest.run_id === null) {
        // The newest run was recorded but its start has not returned yet: this is that run.
        await db.query('UPDATE task_runs SET run_id = $3 WHERE task_id = $1 AND number = $2', [
          taskId,
          latest.number,
          runId,
        ]);
        await db.query('UPDATE tasks SET run_id = $3 WHERE id = $1 AND current_run = $2 AND run_id IS NULL', [
          taskId,
          latest.number,
          runId,
        ]);
        return latest.number;
      }
      // A run nobody recorded: it supersedes the current one.
      const number = latest.number + 1;
      const detail = { fromRun: latest.number, fromRunId: latest.run_id };
      await db.query(
        `INSERT INTO task_runs (task_id, number, run_id, kind, detail) VALUES ($1, $2, $3, 'external', $4)`,
        [taskId, number, runId, detail],
      );
      await this.makeCurrent(db, taskId, number, runId);
      await db.query(
        `INSERT INTO task_events (task_id, run, kind, detail) VALUES ($1, $2, 'external_run', $3) ON CONFLICT DO NOTHING`,
        [taskId, number, { ...detail, runId }],
      );
      return number;
    });
  }

  /** Points the task at run `number`, with no outcome yet. */
  private async makeCurrent(db: PoolClient, taskId: string, number: number, runId: string | null): Promise<void> {
    await db.query(
      `UPDATE tasks SET current_run = $2, run_id = $3, status = 'queued', started_at = NULL, finished_at = NULL,
         result_attempt = NULL, result_exit_code = NULL, error_class = NULL, error_message = NULL
       WHERE id = $1`,
      [taskId, number, runId],
    );
  }

  /**
   * Starts a new run of a task: in one transaction, locks the task, lets `check` refuse (by throwing),
   * records run `current + 1` and makes it current, calls `start` (which starts it in Temporal and
   * returns its run id), and records the run id and a `<kind>_requested` event. If `start` throws,
   * nothing is kept. Returns undefined when there is no such task.
   */
  async startRun(
    taskId: string,
    kind: 'retry' | 'reset',
    check: (task: LockedTask) => void,
    start: (task: LockedTask, number: number) => Promise<StartedRun>,
  ): Promise<{ number: number; runId: string; fromRun: number } | undefined> {
    return inTransaction(this.pool, async (db) => {
      const task = (
        await db.query<LockedTask>(
          'SELECT id, status, current_run, run_id, workflow_id FROM tasks WHERE id = $1 FOR UPDATE',
          [taskId],
        )
      ).rows[0];
      if (!task) return undefined;
      check(task);
      const number = task.current_run + 1;
      const base = { fromRun: task.current_run, fromRunId: task.run_id };
      await db.query(`INSERT INTO task_runs (task_id, number, kind, detail) VALUES ($1, $2, $3, $4)`, [
        taskId,
        number,
        kind,
        base,
      ]);
      await this.makeCurrent(db, taskId, number, null);
      // Writes of the new run that arrive before the commit wait on the row lock (see registerRun).
      const started = await start(task, number);
      const detail = { ...base, ...started.detail };
      await db.query('UPDATE task_runs SET run_id = $3, detail = $4 WHERE task_id = $1 AND number = $2', [
        taskId,
        number,
        started.runId,
        detail,
      ]);
      await db.query('UPDATE tasks SET run_id = $2 WHERE id = $1', [taskId, started.runId]);
      await db.query(`INSERT INTO task_events (task_id, run, kind, detail) VALUES ($1, $2, $3, $4)`, [
        taskId,
        number,
        `${kind}_requested`,
        { ...detail, runId: started.runId },
      ]);
      this.known.set(`${taskId}/${started.runId}`, number);
      return { number, runId: started.runId, fromRun: task.current_run };
    });
  }

  /** Every run of a task, first first, with its outcome from the run's terminal event. */
  async list(taskId: string, db: Pool | PoolClient = this.pool): Promise<RunRow[]> {
    const res = await db.query<RunRow>(
      `SELECT r.number, r.run_id, r.kind, r.detail, r.created_at,
         (SELECT min(a.started_at) FROM attempts a WHERE a.task_id = r.task_id AND a.run = r.number) AS started_at,
         e.kind AS outcome, e.created_at AS finished_at, e.detail AS outcome_detail
       FROM task_runs r
       LEFT JOIN task_events e ON e.task_id = r.task_id AND e.run = r.number AND e.terminal
       WHERE r.task_id = $1
       ORDER BY r.number`,
      [taskId],
    );
    return res.rows;
  }

  /** Every attempt of every run of a task, in order. */
  async attempts(taskId: string, db: Pool | PoolClient = this.pool): Promise<RunAttemptRow[]> {
    const res = await db.query<RunAttemptRow>(
      `SELECT run, number, agent, model, worker, started_at, finished_at, exit_code, failure_class, error, output_bytes
       FROM attempts WHERE task_id = $1 ORDER BY run, number`,
      [taskId],
    );
    return res.rows;
  }
}
