import type { Pool } from 'pg';

/** Tasks that wait for a slot of an agent at its cluster-wide concurrency limit. */
export class SlotWaitersStore {
  constructor(private readonly pool: Pool) {}

  /**
   * The workflow ids of the tasks that should get `agent`'s free slots (of `maxConcurrent`), highest
   * priority then oldest: one per free slot, at least one. Two attempts ending at once both see both
   * slots free, so both next tasks are woken, not the first one twice.
   */
  async next(agent: string, maxConcurrent: number): Promise<string[]> {
    const res = await this.pool.query<{ workflow_id: string }>(
      `SELECT workflow_id FROM tasks
       WHERE status = 'queued' AND waiting_reason->>'kind' = 'concurrency' AND waiting_reason->>'agent' = $1
       ORDER BY priority, created_at
       LIMIT GREATEST($2 - (SELECT count(*) FROM agent_leases WHERE agent = $1 AND expires_at > clock_timestamp()), 1)`,
      [agent, maxConcurrent],
    );
    return res.rows.map((r) => r.workflow_id);
  }
}
