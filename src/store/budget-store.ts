import type { Pool } from 'pg';
import { boundedQuery } from '../db/bounded-query';

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

  async setDaily(dailyUsd: number | null): Promise<void> {
    await this.pool.query(
      `INSERT INTO budget (id, daily_usd, updated_at) VALUES (true, $1, clock_timestamp())
       ON CONFLICT (id) DO UPDATE SET daily_usd = EXCLUDED.daily_usd, updated_at = EXCLUDED.updated_at`,
      [dailyUsd],
    );
  }

  /** Sets a task's cap; returns its workflow id, or undefined when there is no such task. */
  async setTaskBudget(
    taskId: string,
    budgetUsd: number | null,
  ): Promise<{ workflowId: string; status: string } | undefined> {
    const res = await this.pool.query<{ workflow_id: string; status: string }>(
      'UPDATE tasks SET budget_usd = $2 WHERE id = $1 RETURNING workflow_id, status',
      [taskId, budgetUsd],
    );
    const row = res.rows[0];
    return row ? { workflowId: row.workflow_id, status: row.status } : undefined;
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
