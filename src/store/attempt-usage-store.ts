import type { Pool } from 'pg';
import { prepared } from '../db/prepared';
import { retryTransient } from '../db/transient';
import { RunStore } from './run-store';

/** What an attempt's output parser found: the answer, its cost and size, and the agent's session. */
export interface AttemptUsage {
  taskId: string;
  runId?: string;
  attempt: number;
  agent: string;
  costUsd: number | null;
  inputTokens: number | null;
  /** The part of `inputTokens` read from the provider's prompt cache. */
  cachedInputTokens: number | null;
  outputTokens: number | null;
  turns: number | null;
  sessionId: string | null;
  /** The final answer, when the format has one apart from stdout. */
  resultText: string | null;
  /** When the agent said its limit resets. */
  resetAt: Date | null;
}

/** PostgreSQL cannot store NUL in text. */
const storable = (text: string | null): string | null => (text === null ? null : text.replaceAll('\u0000', ''));

/**
 * Writes an attempt's usage, and adds its cost to the agent's spend of the day (UTC) in the same
 * statement; an attempt whose output reported none writes nothing. Written even when the attempt was
 * closed meanwhile (taken for lost while its worker was cut off from Temporal): its agent ran, and spent.
 * Idempotent: only an attempt without a cost yet is written, so a repeated call never counts the cost
 * twice.
 */
export class AttemptUsageStore {
  private readonly runs: RunStore;

  constructor(private readonly pool: Pool) {
    this.runs = new RunStore(pool);
  }

  async record(u: AttemptUsage): Promise<void> {
    // Nothing found (a plain-text agent): the attempt's columns would stay as they are, and no cost is
    // added, so nothing is written. One statement less on the way from the agent's end to the task's.
    const found = [
      u.costUsd,
      u.inputTokens,
      u.cachedInputTokens,
      u.outputTokens,
      u.turns,
      u.sessionId,
      u.resultText,
      u.resetAt,
    ];
    if (found.every((v) => v === null)) return;
    const run = await this.runs.runNumber(u.taskId, u.runId);
    await retryTransient(() =>
      this.pool.query(
        prepared(
          `WITH attempt AS (
           UPDATE attempts SET cost_usd = $4, input_tokens = $5, output_tokens = $6, turns = $7, session_id = $8,
             result_text = $9, reset_at = $10, cached_input_tokens = $12
           WHERE task_id = $1 AND run = $2 AND number = $3 AND cost_usd IS NULL
           RETURNING cost_usd
         )
         INSERT INTO agent_spend (day, agent, cost_usd)
         SELECT (clock_timestamp() AT TIME ZONE 'UTC')::date, $11, cost_usd FROM attempt WHERE cost_usd > 0
         ON CONFLICT (day, agent) DO UPDATE SET cost_usd = agent_spend.cost_usd + EXCLUDED.cost_usd`,
          [
            u.taskId,
            run,
            u.attempt,
            u.costUsd,
            u.inputTokens,
            u.outputTokens,
            u.turns,
            storable(u.sessionId),
            storable(u.resultText),
            u.resetAt,
            u.agent,
            u.cachedInputTokens,
          ],
        ),
      ),
    );
  }
}
