import type { Pool, PoolClient } from 'pg';
import type {
  PlanEndStatus,
  PlanOnFailure,
  PlanOutcomeRecord,
  PlanSkipRecord,
  PlanStatus,
} from '../../workflows/definitions';
import { boundedQuery, STATEMENT_TIMEOUT_MS } from '../db/bounded-query';
import { inTransaction } from '../db/transaction';
import { retryTransient } from '../db/transient';
import type { RecordedEnd } from './closed-run-outcome';
import type { NewTask, StoredTaskInputFields } from './task-store';
import { RowGoneError } from './row-gone-error';
import { startUnderRowLock } from './start-under-row-lock';

export interface NewPlanTask extends NewTask {
  key: string;
  dependsOn: string[];
}

export interface NewPlan {
  id: string;
  idempotencyKey?: string;
  /** The fingerprint of the request that used `idempotencyKey` (requestFingerprint). */
  requestSha256?: string;
  maxParallel: number;
  onFailure: PlanOnFailure;
  workflowId: string;
  tasks: NewPlanTask[];
}

export interface PlanRow {
  id: string;
  status: PlanStatus;
  max_parallel: number;
  on_failure: PlanOnFailure;
  workflow_id: string;
  run_id: string | null;
  idempotency_key: string | null;
  request_sha256: string | null;
  created_at: Date;
  finished_at: Date | null;
}

/** A stored task of a plan: what its workflow's input is made of, and its place in the graph. */
export type PlanTaskInputRow = StoredTaskInputFields & { key: string; depends_on: string[] };

/** A task of a running plan that the plan has neither started nor skipped yet. */
export interface UnstartedPlanTask {
  planId: string;
  key: string;
}

/** A task of a plan, with what its own row says about it. */
export interface PlanTaskRow {
  key: string;
  position: number;
  task_id: string;
  depends_on: string[];
  skipped_reason: string | null;
  status: string;
  /** The task's current run: above 1 once the task was retried on its own (a skipped one too). */
  current_run: number;
  priority: number;
  agent: string;
  started_at: Date | null;
  finished_at: Date | null;
  error_class: string | null;
  error_message: string | null;
}

/** Plans and their tasks (infra/migrations/0005_plans.sql). */
export class PlanStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Writes the plan, its tasks (ordinary queued tasks, each with its first run) and their graph in one
   * transaction: a plan is stored whole or not at all. With an idempotency key already used, writes
   * nothing and answers the plan stored with it, `created: false`.
   */
  async create(plan: NewPlan): Promise<{ plan: PlanRow; created: boolean }> {
    return inTransaction(this.pool, async (db) => {
      const inserted = await db.query<PlanRow>(
        `INSERT INTO plans (id, status, max_parallel, on_failure, workflow_id, idempotency_key, request_sha256)
         VALUES ($1, 'running', $2, $3, $4, $5, $6)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING *`,
        [
          plan.id,
          plan.maxParallel,
          plan.onFailure,
          plan.workflowId,
          plan.idempotencyKey ?? null,
          plan.requestSha256 ?? null,
        ],
      );
      if (!inserted.rows[0]) {
        const existing = await this.byIdempotencyKey(plan.idempotencyKey as string, db);
        if (!existing) throw new Error('plan idempotency key conflict but no plan found');
        return { plan: existing, created: false };
      }
      for (const [position, t] of plan.tasks.entries()) {
        await db.query(
          `WITH task AS (
             INSERT INTO tasks (id, status, prompt, agent, model, workdir, timeout_seconds, max_attempts, priority,
               labels, workflow_id, agents, budget_usd, locks, repo_path, repo_ref, fail_on_lock_violations)
             VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $18, $19, $20, $21)
             RETURNING id
           ), event AS (
             INSERT INTO task_events (task_id, kind, detail) SELECT id, 'submitted', $16 FROM task
           ), run AS (
             INSERT INTO task_runs (task_id, number, kind) SELECT id, 1, 'submitted' FROM task
           )
           INSERT INTO plan_tasks (plan_id, key, position, task_id, depends_on) SELECT $13, $14, $15, id, $17 FROM task`,
          [
            t.id,
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
            plan.id,
            t.key,
            position,
            { planId: plan.id, key: t.key },
            t.dependsOn,
            t.locks ?? null,
            t.repo?.path ?? null,
            t.repo?.ref ?? null,
            t.failOnLockViolations ?? false,
          ],
        );
      }
      return { plan: inserted.rows[0], created: true };
    });
  }

  /** The plan's tasks as stored, in submission order: what its workflow's input is made of. */
  async taskInputs(planId: string): Promise<PlanTaskInputRow[]> {
    const rows = await this.pool.query<PlanTaskInputRow>(
      `SELECT p.key, p.depends_on, t.id, t.agent, t.model, t.workdir, t.timeout_seconds, t.max_attempts, t.priority,
         t.agents, t.locks, t.repo_path, t.repo_ref, t.fail_on_lock_violations
       FROM plan_tasks p JOIN tasks t ON t.id = p.task_id WHERE p.plan_id = $1 ORDER BY p.position`,
      [planId],
    );
    return rows.rows;
  }

  /**
   * Whether the run `runId` of a plan's task is its current one: the run recorded for it, or none
   * recorded yet (a task closed before its first write). Not when a later run (the task reset in the
   * Temporal Web UI) has recorded itself since.
   */
  async isCurrentRun(taskId: string, runId: string): Promise<boolean> {
    const found = await retryTransient(() =>
      this.pool.query<{ current: boolean }>(
        'SELECT run_id IS NULL OR run_id = $2 AS current FROM tasks WHERE id = $1',
        [taskId, runId],
      ),
    );
    return found.rows[0]?.current ?? true;
  }

  /** The running plan that holds `taskId` and has neither started nor skipped it yet, if any. */
  async unstartedTask(taskId: string): Promise<UnstartedPlanTask | undefined> {
    const found = await this.pool.query<{ plan_id: string; key: string }>(
      `SELECT p.plan_id, p.key FROM plan_tasks p JOIN plans pl ON pl.id = p.plan_id
       WHERE p.task_id = $1 AND pl.status = 'running' AND p.skipped_reason IS NULL`,
      [taskId],
    );
    const row = found.rows[0];
    return row && { planId: row.plan_id, key: row.key };
  }

  /**
   * Why the plan holding `taskId` skipped it (never started it), if it did and the task depends on
   * others: run on its own, such a task would start without their work.
   */
  async skippedDependant(taskId: string): Promise<string | undefined> {
    const found = await this.pool.query<{ skipped_reason: string }>(
      `SELECT skipped_reason FROM plan_tasks
       WHERE task_id = $1 AND skipped_reason IS NOT NULL AND cardinality(depends_on) > 0`,
      [taskId],
    );
    return found.rows[0]?.skipped_reason;
  }

  /**
   * Removes a plan whose workflow could not be started, with its tasks, so nothing is left behind.
   * Returns the run id instead when the plan was started meanwhile (by the stranded-submission sweeper,
   * whose row lock this waits for): then it stays.
   */
  async deleteUnstarted(id: string): Promise<string | undefined> {
    return inTransaction(this.pool, async (db) => {
      const plan = await db.query<{ run_id: string | null }>('SELECT run_id FROM plans WHERE id = $1 FOR UPDATE', [id]);
      const runId = plan.rows[0]?.run_id;
      if (runId !== null) return runId;
      await db.query('DELETE FROM tasks WHERE id IN (SELECT task_id FROM plan_tasks WHERE plan_id = $1)', [id]);
      await db.query('DELETE FROM plans WHERE id = $1', [id]);
      return undefined;
    });
  }

  /** `timeoutMs` bounds the write (boundedQuery; unbounded when undefined). */
  async setRunId(id: string, runId: string, db: Pool | PoolClient = this.pool, timeoutMs?: number): Promise<void> {
    await db.query(boundedQuery(timeoutMs, 'UPDATE plans SET run_id = $2 WHERE id = $1', [id, runId]));
  }

  /** The plan submitted with this idempotency key, if any. */
  async byIdempotencyKey(key: string, db: Pool | PoolClient = this.pool): Promise<PlanRow | undefined> {
    const res = await db.query<PlanRow>('SELECT * FROM plans WHERE idempotency_key = $1', [key]);
    return res.rows[0];
  }

  /**
   * The plans of these workflows still `running`, with a run id or not yet (see TaskStore.unendedRunsOf).
   * Read in the workflow_id index; bounded by STATEMENT_TIMEOUT_MS.
   */
  async unendedRunsOf(workflowIds: string[]): Promise<Pick<PlanRow, 'id' | 'workflow_id' | 'run_id'>[]> {
    const res = await this.pool.query<Pick<PlanRow, 'id' | 'workflow_id' | 'run_id'>>(
      boundedQuery(
        STATEMENT_TIMEOUT_MS,
        `SELECT id, workflow_id, run_id FROM plans WHERE workflow_id = ANY($1) AND status = 'running'`,
        [workflowIds],
      ),
    );
    return res.rows;
  }

  /**
   * Plans stored more than `seconds` ago whose workflow never started (the API that stored them stopped
   * before it started them), oldest first. Read in index plans_unstarted; bounded by
   * STATEMENT_TIMEOUT_MS.
   */
  async strandedIds(seconds: number, limit: number): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>(
      boundedQuery(
        STATEMENT_TIMEOUT_MS,
        `SELECT id FROM plans
         WHERE status = 'running' AND run_id IS NULL AND created_at < clock_timestamp() - make_interval(secs => $1)
         ORDER BY created_at LIMIT $2`,
        [seconds, limit],
      ),
    );
    return res.rows.map((r) => r.id);
  }

  /** Starts a stranded plan (startUnderRowLock): false when another process holds it or it started meanwhile. */
  startStranded(id: string, start: (plan: PlanRow) => Promise<string>): Promise<boolean> {
    return startUnderRowLock<PlanRow>(
      this.pool,
      `SELECT * FROM plans WHERE id = $1 AND status = 'running' AND run_id IS NULL FOR UPDATE SKIP LOCKED`,
      id,
      start,
      (runId, db) => this.setRunId(id, runId, db, STATEMENT_TIMEOUT_MS),
    );
  }

  async get(id: string): Promise<{ plan: PlanRow; tasks: PlanTaskRow[] } | undefined> {
    const plan = await this.pool.query<PlanRow>('SELECT * FROM plans WHERE id = $1', [id]);
    if (!plan.rows[0]) return undefined;
    const tasks = await this.pool.query<PlanTaskRow>(
      `SELECT p.key, p.position, p.task_id, p.depends_on, p.skipped_reason, t.status, t.current_run, t.priority, t.agent,
         t.started_at, t.finished_at, t.error_class, t.error_message
       FROM plan_tasks p JOIN tasks t ON t.id = p.task_id WHERE p.plan_id = $1 ORDER BY p.position`,
      [id],
    );
    return { plan: plan.rows[0], tasks: tasks.rows };
  }

  /**
   * Marks tasks the plan will never start. Each becomes `cancelled` as a task (with the terminal event
   * of its first run, so it is cancelled exactly once), unless it has ended or started meanwhile: a task
   * the plan did start records its run id at its first write, and then its run records its own end
   * (a terminal event written here would leave it `running` for ever).
   */
  async recordSkips(record: PlanSkipRecord): Promise<void> {
    await retryTransient(() =>
      inTransaction(this.pool, async (db) => {
        for (const s of record.skips) {
          const skipped = await db.query(
            `UPDATE tasks SET status = 'cancelled', finished_at = clock_timestamp(), error_class = 'cancelled',
               error_message = $2, waiting_reason = NULL
             WHERE id = $1 AND status = 'queued' AND run_id IS NULL`,
            [s.taskId, `skipped: ${s.reason}`],
          );
          if (skipped.rowCount !== 1) {
            // Started or ended meanwhile: its run records its own end. Gone: the submission was withdrawn.
            const task = await db.query('SELECT 1 FROM tasks WHERE id = $1', [s.taskId]);
            if (task.rowCount === 0) throw new RowGoneError(`task ${s.taskId} is not in the database`);
            continue;
          }
          await db.query('UPDATE plan_tasks SET skipped_reason = $3 WHERE plan_id = $1 AND key = $2', [
            record.planId,
            s.key,
            s.reason,
          ]);
          await db.query(
            `INSERT INTO task_events (task_id, run, kind, attempt, terminal, detail)
             VALUES ($1, 1, 'cancelled', 0, true, $2) ON CONFLICT DO NOTHING`,
            [s.taskId, { skipped: s.reason, error: { class: 'cancelled', message: `skipped: ${s.reason}` } }],
          );
        }
      }),
    );
  }

  /**
   * Records the plan's end and answers the end PostgreSQL holds: the first outcome wins, and a second
   * (a retried write, or a cancel after a write whose workflow task was lost) changes nothing. The row
   * is locked first, so an end written meanwhile by another transaction is the one answered (a plain
   * read would see the statement's snapshot: still running).
   */
  async recordOutcome(record: PlanOutcomeRecord): Promise<PlanEndStatus> {
    return (await this.writeOutcome(record)).status;
  }

  /**
   * recordOutcome, and whether this call wrote the end (false when the plan had one already, and when
   * the answer to a write that went through was lost and the retry found it).
   */
  async writeOutcome(record: PlanOutcomeRecord): Promise<RecordedEnd<PlanEndStatus>> {
    return retryTransient(async () => {
      const res = await this.pool.query<{ status: PlanEndStatus; written: boolean }>(
        `WITH locked AS (SELECT id, status FROM plans WHERE id = $1 FOR UPDATE),
         ended AS (
           UPDATE plans p SET status = $2, finished_at = clock_timestamp()
           FROM locked WHERE p.id = locked.id AND locked.status = 'running'
           RETURNING p.status
         )
         SELECT status, true AS written FROM ended
         UNION ALL SELECT status, false FROM locked WHERE NOT EXISTS (SELECT 1 FROM ended)`,
        [record.planId, record.status],
      );
      const row = res.rows[0];
      return row ?? { status: record.status, written: false };
    });
  }
}
