import type { Pool } from 'pg';

/** Tasks that wait for a slot of an agent at its cluster-wide concurrency limit. */
export class SlotWaitersStore {
  constructor(private readonly pool: Pool) {}

  /** The workflow id of the task that should get `agent`'s next free slot: highest priority, then oldest. */
  async next(agent: string): Promise<string | undefined> {
    const res = await this.pool.query<{ workflow_id: string }>(
      `SELECT workflow_id FROM tasks
       WHERE status = 'queued' AND waiting_reason->>'kind' = 'concurrency' AND waiting_reason->>'agent' = $1
       ORDER BY priority, created_at LIMIT 1`,
      [agent],
    );
    return res.rows[0]?.workflow_id;
  }
}
