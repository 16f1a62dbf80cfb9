import type { Pool, PoolClient } from 'pg';
import type { TaskStatus } from '../../workflows/definitions';
import { boundedQuery, STATEMENT_TIMEOUT_MS } from '../db/bounded-query';
import { startUnderRowLock } from './start-under-row-lock';

export interface NewTask {
  id: string;
  idempotencyKey?: string;
  /** The fingerprint of the request that used `idempotencyKey` (requestFingerprint). */
  requestSha256?: string;
  prompt: string;
  agent: string;
  model?: string;
  workdir?: string;
  timeoutSeconds: number;
  maxAttempts: number;
  priority: number;
  labels: Record<string, string>;
  workflowId: string;
  /** The fallback chain, head first; unset: `agent` alone. */
  agents?: string[];
  budgetUsd?: number;
  /** Declared file locks (globs relative to the task's repository). */
  locks?: string[];
  /** The git repository the task works on in a worktree of its own. */
  repo?: { path: string; ref?: string };
  /** Fail the task when it changes files outside its locks. */
  failOnLockViolations?: boolean;
}

/** Why a queued task waits (an AdmissionWait, `until` as ISO text). */
export interface WaitingReason {
  kind: string;
  agent: string;
  message: string;
  until: string | null;
}

export interface TaskRow {
  id: string;
  idempotency_key: string | null;
  request_sha256: string | null;
  status: TaskStatus;
  prompt: string;
  agent: string;
  model: string | null;
  workdir: string | null;
  timeout_seconds: number;
  max_attempts: number;
  priority: number;
  labels: Record<string, string>;
  workflow_id: string;
  run_id: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  result_attempt: number | null;
  result_exit_code: number | null;
  error_class: string | null;
  error_message: string | null;
  /** The number of the task's latest run (task_runs); attempts, logs and events are kept per run. */
  current_run: number;
  agents: string[] | null;
  budget_usd: string | null;
  waiting_reason: WaitingReason | null;
  /** What the task's attempts cost so far, over all runs. */
  cost_usd: string | null;
  /** Declared file locks; null: none. */
  locks: string[] | null;
  /** The task's git repository and what it committed there (null without one, or before the commit). */
  repo_path: string | null;
  repo_ref: string | null;
  branch: string | null;
  base_sha: string | null;
  commit_sha: string | null;
  changed_files: string[] | null;
  diffstat: string | null;
  lock_violations: string[] | null;
  fail_on_lock_violations: boolean;
  /** created_at at full (microsecond) precision, for keyset cursors. */
  cursor_ts: string;
}

export interface AttemptRow {
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
  /** What the agent's output parser found (optional: not every query of attempts reads them). */
  cost_usd?: string | null;
  input_tokens?: string | null;
  cached_input_tokens?: string | null;
  output_tokens?: string | null;
  turns?: number | null;
  session_id?: string | null;
  reset_at?: Date | null;
}

export interface ListFilter {
  status?: TaskStatus;
  labels: Record<string, string>;
  limit: number;
  after?: { ts: string; id: string };
}

/** The columns of a stored task its workflow's input is made of. */
export type StoredTaskInputFields = Pick<
  TaskRow,
  | 'id'
  | 'agent'
  | 'model'
  | 'workdir'
  | 'timeout_seconds'
  | 'max_attempts'
  | 'priority'
  | 'agents'
  | 'locks'
  | 'repo_path'
  | 'repo_ref'
  | 'fail_on_lock_violations'
>;

const TASK_COLUMNS = `id, idempotency_key, request_sha256, status, prompt, agent, model, workdir, timeout_seconds, max_attempts, priority, labels,
  workflow_id, run_id, created_at, started_at, finished_at, result_attempt, result_exit_code, error_class,
  error_message, current_run, agents, budget_usd, waiting_reason, locks, repo_path, repo_ref, branch, base_sha,
  commit_sha, changed_files, diffstat, lock_violations, fail_on_lock_violations,
  (SELECT sum(a.cost_usd) FROM attempts a WHERE a.task_id = id) AS cost_usd, created_at::text AS cursor_ts`;

/** What a list of tasks shows of each (task-view.ts, taskSummary), and its place in the list. */
export type TaskSummaryRow = Pick<
  TaskRow,
  | 'id'
  | 'status'
  | 'agent'
  | 'model'
  | 'priority'
  | 'labels'
  | 'workflow_id'
  | 'run_id'
  | 'created_at'
  | 'started_at'
  | 'finished_at'
  | 'error_class'
  | 'error_message'
  | 'agents'
  | 'waiting_reason'
  | 'cursor_ts'
>;

/** A list reads only what it shows: no prompt (up to 200,000 characters), diff or cost per row. */
const SUMMARY_COLUMNS = `id, status, agent, model, priority, labels, workflow_id, run_id, created_at, started_at, finished_at,
  error_class, error_message, agents, waiting_reason, created_at::text AS cursor_ts`;

/** What the API reads and writes about tasks. */
export class TaskStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Inserts a queued task. With an idempotency key already used, inserts nothing and returns the
   * existing task with `created: false`.
   */
  async create(t: NewTask): Promise<{ task: TaskRow; created: boolean }> {
    const inserted = await this.pool.query<TaskRow>(
      `WITH task AS (
         INSERT INTO tasks (id, idempotency_key, status, prompt, agent, model, workdir, timeout_seconds,
           max_attempts, priority, labels, workflow_id, agents, budget_usd, locks, repo_path, repo_ref,
           fail_on_lock_violations, request_sha256)
         VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING *
       ), event AS (
         INSERT INTO task_events (task_id, kind) SELECT id, 'submitted' FROM task
       ), run AS (
         INSERT INTO task_runs (task_id, number, kind) SELECT id, 1, 'submitted' FROM task
       )
       SELECT ${TASK_COLUMNS} FROM task`,
      [
        t.id,
        t.idempotencyKey ?? null,
        t.prompt,
        t.agent,
        t.model ?? null,
        t.workdir ?? null,
        t.timeoutSeconds,
        t.maxAttempts,
        t.priority,
        t.labels,
        t.workflowId,
        t.agents ?? null,
        t.budgetUsd ?? null,
        t.locks ?? null,
        t.repo?.path ?? null,
        t.repo?.ref ?? null,
        t.failOnLockViolations ?? false,
        t.requestSha256 ?? null,
      ],
    );
    if (inserted.rows[0]) return { task: inserted.rows[0], created: true };
    const existing = await this.byIdempotencyKey(t.idempotencyKey as string);
    if (!existing) throw new Error('idempotency key conflict but no task found');
    return { task: existing, created: false };
  }

  /** The task submitted with this idempotency key, if any. */
  async byIdempotencyKey(key: string): Promise<TaskRow | undefined> {
    const res = await this.pool.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE idempotency_key = $1`, [key]);
    return res.rows[0];
  }

  /**
   * Removes a task whose workflow could not be started, so a failed submission leaves nothing behind.
   * Returns the run id instead when the task was started meanwhile (by the stranded-submission sweeper,
   * whose row lock this waits for): then it stays.
   */
  async deleteUnstarted(id: string): Promise<string | undefined> {
    const deleted = await this.pool.query('DELETE FROM tasks WHERE id = $1 AND run_id IS NULL', [id]);
    if (deleted.rowCount !== 0) return undefined;
    const kept = await this.pool.query<{ run_id: string | null }>('SELECT run_id FROM tasks WHERE id = $1', [id]);
    return kept.rows[0]?.run_id ?? undefined;
  }

  /**
   * Records the run id of the task's submitted run, run 1, unless its run id is recorded already (its
   * first write records it too: RunStore.registerRun). A write retried late, after a newer run (a retry,
   * a reset in the Web UI) became current, leaves that run's id alone. `timeoutMs` bounds the write
   * (boundedQuery; unbounded when undefined).
   */
  async setRunId(id: string, runId: string, db: Pool | PoolClient = this.pool, timeoutMs?: number): Promise<void> {
    await db.query(
      boundedQuery(
        timeoutMs,
        `WITH run AS (
           UPDATE task_runs SET run_id = $2 WHERE task_id = $1 AND number = 1 AND run_id IS NULL
         )
         UPDATE tasks SET run_id = $2 WHERE id = $1 AND current_run = 1 AND run_id IS NULL`,
        [id, runId],
      ),
    );
  }

  /**
   * Tasks stored more than `seconds` ago whose workflow never started (the API that stored them stopped
   * before it started them), oldest first: queued, without a run id, and not a plan's (a plan starts its
   * own tasks). Read in index tasks_unstarted; bounded by STATEMENT_TIMEOUT_MS.
   */
  async strandedIds(seconds: number, limit: number): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>(
      boundedQuery(
        STATEMENT_TIMEOUT_MS,
        `SELECT t.id FROM tasks t
         WHERE t.status = 'queued' AND t.run_id IS NULL AND t.created_at < clock_timestamp() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM plan_tasks p WHERE p.task_id = t.id)
         ORDER BY t.created_at LIMIT $2`,
        [seconds, limit],
      ),
    );
    return res.rows.map((r) => r.id);
  }

  /**
   * The tasks of these workflows still `queued` or `running`: the ones whose run may have closed in
   * Temporal without recording its end. One without a run id yet is among them: its workflow may have
   * closed before anything recorded its run (the stranded-submission sweeper records it later); not a
   * plan's task, whose plan records a task that closed before its first write (the sweep would keep it
   * aside for ever). Read in the workflow_id index; bounded by STATEMENT_TIMEOUT_MS.
   */
  async unendedRunsOf(workflowIds: string[]): Promise<Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>[]> {
    const res = await this.pool.query<Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>>(
      boundedQuery(
        STATEMENT_TIMEOUT_MS,
        `SELECT id, workflow_id, run_id FROM tasks
         WHERE workflow_id = ANY($1) AND status IN ('queued', 'running')
           AND (run_id IS NOT NULL OR NOT EXISTS (SELECT FROM plan_tasks p WHERE p.task_id = tasks.id))`,
        [workflowIds],
      ),
    );
    return res.rows;
  }

  /** Starts a stranded task (startUnderRowLock): false when another process holds it or it started meanwhile. */
  startStranded(id: string, start: (task: TaskRow) => Promise<string>): Promise<boolean> {
    return startUnderRowLock<TaskRow>(
      this.pool,
      `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1 AND status = 'queued' AND run_id IS NULL FOR UPDATE SKIP LOCKED`,
      id,
      start,
      (runId, db) => this.setRunId(id, runId, db, STATEMENT_TIMEOUT_MS),
    );
  }

  async get(id: string, db: Pool | PoolClient = this.pool): Promise<TaskRow | undefined> {
    const res = await db.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1`, [id]);
    return res.rows[0];
  }

  /** The attempts of the task's current run (every run's: RunStore.attempts). */
  async attempts(id: string, db: Pool | PoolClient = this.pool): Promise<AttemptRow[]> {
    const res = await db.query<AttemptRow>(
      `SELECT number, agent, model, worker, started_at, finished_at, exit_code, failure_class, error, output_bytes,
         cost_usd, input_tokens, cached_input_tokens, output_tokens, turns, session_id, reset_at
       FROM attempts WHERE task_id = $1 AND run = (SELECT current_run FROM tasks WHERE id = $1) ORDER BY number`,
      [id],
    );
    return res.rows;
  }

  async attemptOutput(id: string, attempt: number, db: Pool | PoolClient = this.pool): Promise<string | null> {
    const res = await db.query<{ output: string | null }>(
      // The answer the agent's output parser found, else its stdout.
      'SELECT COALESCE(result_text, output) AS output FROM attempts WHERE task_id = $1 AND number = $2 AND run = (SELECT current_run FROM tasks WHERE id = $1)',
      [id, attempt],
    );
    return res.rows[0]?.output ?? null;
  }

  /** Newest first, keyset-paginated on (created_at, id). */
  async list(f: ListFilter): Promise<TaskSummaryRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status) {
      params.push(f.status);
      where.push(`status = $${params.length}`);
    }
    if (Object.keys(f.labels).length > 0) {
      params.push(f.labels);
      where.push(`labels @> $${params.length}`);
    }
    if (f.after) {
      params.push(f.after.ts, f.after.id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(f.limit);
    const res = await this.pool.query<TaskSummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return res.rows;
  }
}
