import type { Pool } from 'pg';
import { boundedQuery } from '../db/bounded-query';
import { spentByTask, spentOnDayOf } from './spend-sql';

export interface DailyBudget {
  /** The cap in USD per UTC day; null: no cap. */
  dailyUsd: number | null;
  spentTodayUsd: number;
  /** The UTC day the spend is counted for, YYYY-MM-DD. */
  day: string;
  /** When the day turns and the spend starts again from zero. */
  resetsAt: Date;
}

const usd = (v: string | null): number | null => (v === null ? null : Number(v));

/**
 * SQL: whether a cap changed from `old` to `now` may let an attempt start that it held back (admission
 * refuses once `spent` reaches the cap): it was lifted, or raised above the spend. Lowered, set again as
 * it was, raised to no more than the spend, or set where there was none, it lets nothing start.
 */
const LETS_START = (old: string, now: string, spent: string): string =>
  `(${old} IS NOT NULL AND (${now} IS NULL OR (${now} > ${old} AND ${now} > ${spent})))`;

/** What setting a task's cap did: nothing to a task that has ended. */
export type TaskBudgetChange =
  { status: string; set: false } | { status: string; set: true; workflowId: string; letsStart: boolean };

/** The global daily cap, today's spend, and per-task caps. */
export class BudgetStore {
  constructor(private readonly pool: Pool) {}

  /** Fails when PostgreSQL has not answered within `timeoutMs`. */
  async daily(timeoutMs?: number): Promise<DailyBudget> {
    const res = await this.pool.query<{ daily_usd: string | null; spent: string; day: string; resets_at: Date }>(
      boundedQuery(
        timeoutMs,
        `WITH today AS (SELECT (clock_timestamp() AT TIME ZONE 'UTC')::date AS day)
       SELECT (SELECT daily_usd FROM budget) AS daily_usd,
         (SELECT COALESCE(sum(cost_usd), 0) FROM agent_spend s, today WHERE s.day = today.day) AS spent,
         today.day::text AS day, ((today.day + 1)::timestamp AT TIME ZONE 'UTC') AS resets_at
       FROM today`,
      ),
    );
    const row = res.rows[0];
    if (!row) throw new Error('budget query returned nothing');
    return { dailyUsd: usd(row.daily_usd), spentTodayUsd: Number(row.spent), day: row.day, resetsAt: row.resets_at };
  }

  /**
   * Sets the daily cap; answers whether the change may let a task that waits for it start: the cap was
   * lifted, or raised above today's spend. The cap it replaces is read in the same statement, under the
   * row's lock, so two changes at once each compare with the one before.
   */
  async setDaily(dailyUsd: number | null): Promise<boolean> {
    const res = await this.pool.query<{ lets_start: boolean }>(
      `WITH old AS (SELECT daily_usd FROM budget WHERE id FOR UPDATE),
         changed AS (
           INSERT INTO budget (id, daily_usd, updated_at) VALUES (true, $1, clock_timestamp())
           ON CONFLICT (id) DO UPDATE SET daily_usd = EXCLUDED.daily_usd, updated_at = EXCLUDED.updated_at
           RETURNING daily_usd)
       SELECT ${LETS_START('(SELECT daily_usd FROM old)', '(SELECT daily_usd FROM changed)', spentOnDayOf('clock_timestamp()'))} AS lets_start`,
      [dailyUsd],
    );
    return res.rows[0]?.lets_start === true;
  }

  /**
   * Sets the cap of a task that has not ended; answers its status, and with `set` its workflow id and
   * whether the change may let it start if it waits for its budget (the cap lifted, or raised above
   * what it has spent). An ended task is left as it is (`set` false); undefined when there is no such task.
   */
  async setTaskBudget(taskId: string, budgetUsd: number | null): Promise<TaskBudgetChange | undefined> {
    const res = await this.pool.query<{ status: string; workflow_id: string | null; lets_start: boolean | null }>(
      `WITH old AS (SELECT id, budget_usd, status FROM tasks WHERE id = $1 FOR UPDATE),
         changed AS (
           UPDATE tasks t SET budget_usd = $2 FROM old
           WHERE t.id = old.id AND old.status NOT IN ('succeeded', 'failed', 'cancelled')
           RETURNING t.workflow_id, ${LETS_START('old.budget_usd', 't.budget_usd', spentByTask('old.id'))} AS lets_start)
       SELECT old.status, changed.workflow_id, changed.lets_start FROM old LEFT JOIN changed ON true`,
      [taskId, budgetUsd],
    );
    const row = res.rows[0];
    if (!row) return undefined;
    if (row.workflow_id === null) return { status: row.status, set: false };
    return { status: row.status, set: true, workflowId: row.workflow_id, letsStart: row.lets_start === true };
  }

  /** What the task has spent over all its attempts. */
  async taskSpent(taskId: string): Promise<number | null> {
    const res = await this.pool.query<{ spent: string | null }>(
      'SELECT sum(cost_usd) AS spent FROM attempts WHERE task_id = $1',
      [taskId],
    );
    const spent = res.rows[0]?.spent ?? null;
    return spent === null ? null : Number(spent);
  }

  /** Workflow ids of tasks that wait for the daily budget, to wake them when it changes. */
  async waitingForDailyBudget(): Promise<string[]> {
    // The index's predicate word for word (it holds the tasks waiting for either budget), then the kind.
    const res = await this.pool.query<{ workflow_id: string }>(
      `SELECT workflow_id FROM tasks
       WHERE status = 'queued' AND waiting_reason->>'kind' IN ('daily_budget', 'task_budget')
         AND waiting_reason->>'kind' = 'daily_budget'`,
    );
    return res.rows.map((r) => r.workflow_id);
  }
}
