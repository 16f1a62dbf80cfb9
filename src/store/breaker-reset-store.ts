import type { Pool } from 'pg';

/** At most this many waiting tasks are woken when a breaker closes; the others ask again at their next look. */
export const WAKE_LIMIT = 100;

/**
 * An operator's reset of an agent's circuit breaker (`POST /v1/agents/:name/breaker/reset`), and the
 * tasks a breaker that closes should wake (by that reset, or by a half-open breaker's probe).
 */
export class BreakerResetStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Closes the agent's breaker, whatever its state, forgetting its failures and any probe (a probe
   * still running then ends like any other attempt), and answers the tasks to wake (`waitingFor`). An
   * agent no attempt ever asked for has no breaker row: it is closed.
   */
  async reset(agent: string): Promise<string[]> {
    await this.pool.query(
      `UPDATE agent_breakers SET state = 'closed', failures = 0, window_started_at = NULL, opened_at = NULL,
         open_until = NULL, probe = NULL, updated_at = clock_timestamp()
       WHERE agent = $1`,
      [agent],
    );
    return this.waitingFor(agent);
  }

  /**
   * The workflow ids of the tasks a breaker of `agent` that closed should wake: those held back by a
   * breaker or a limit (the wait shown may be another agent's of the chain) that have the agent in their
   * chain, at most WAKE_LIMIT, highest priority then oldest. Tasks waiting for a budget stay as they are.
   */
  async waitingFor(agent: string): Promise<string[]> {
    const waiting = await this.pool.query<{ workflow_id: string }>(
      `SELECT workflow_id FROM tasks
       WHERE status = 'queued' AND waiting_reason->>'kind' IN ('breaker_open', 'concurrency', 'start_rate')
         AND (agent = $1 OR $1 = ANY(agents))
       ORDER BY priority, created_at
       LIMIT $2`,
      [agent, WAKE_LIMIT],
    );
    return waiting.rows.map((r) => r.workflow_id);
  }
}
