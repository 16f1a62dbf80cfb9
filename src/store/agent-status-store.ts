import type { Pool, QueryResultRow } from 'pg';
import { boundedQuery } from '../db/bounded-query';
import type { BreakerStateName } from '../gate/breaker';

export interface AgentStatusRow {
  agent: string;
  breaker: {
    state: BreakerStateName;
    failures: number;
    windowStartedAt: Date | null;
    openUntil: Date | null;
    openedAt: Date | null;
  };
  /** Attempts finished in the last hour (cancelled ones aside), and how many succeeded. */
  recent: { finished: number; succeeded: number };
  running: number;
  startsLastMinute: number;
  spendTodayUsd: number;
}

/** The state of an agent nothing has recorded anything for: breaker closed, nothing running or spent. */
export const idleAgentStatus = (agent: string): AgentStatusRow => ({
  agent,
  breaker: { state: 'closed', failures: 0, windowStartedAt: null, openUntil: null, openedAt: null },
  recent: { finished: 0, succeeded: 0 },
  running: 0,
  startsLastMinute: 0,
  spendTodayUsd: 0,
});

/** The read side of the gate, for `GET /v1/agents`: one query per table, every agent at once. */
export class AgentStatusStore {
  constructor(private readonly pool: Pool) {}

  /** Fails when PostgreSQL has not answered a query within `timeoutMs`. */
  async all(timeoutMs?: number): Promise<{ now: Date; agents: Map<string, AgentStatusRow> }> {
    const query = <R extends QueryResultRow>(text: string, values?: unknown[]) =>
      this.pool.query<R>(boundedQuery(timeoutMs, text, values));
    const now = (await query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]?.now ?? new Date();
    const [breakers, leases, starts, recent, spend] = await Promise.all([
      query<{
        agent: string;
        state: BreakerStateName;
        failures: number;
        window_started_at: Date | null;
        open_until: Date | null;
        opened_at: Date | null;
      }>('SELECT agent, state, failures, window_started_at, open_until, opened_at FROM agent_breakers'),
      query<{ agent: string; n: number }>(
        'SELECT agent, count(*)::int AS n FROM agent_leases WHERE expires_at > $1 GROUP BY agent',
        [now],
      ),
      // The gate records starts only for agents with a start-rate limit (what the limit counts); the
      // others' starts are their attempts. An attempt started in the last minute is open or finished
      // since, which the attempts_open and attempts_finished indexes find.
      query<{ agent: string; n: number }>(
        `SELECT agent, max(n)::int AS n FROM (
           SELECT agent, count(*) AS n FROM agent_starts WHERE started_at > $1::timestamptz - interval '1 minute'
           GROUP BY agent
           UNION ALL
           SELECT agent, count(*) AS n FROM attempts
           WHERE started_at > $1::timestamptz - interval '1 minute'
             AND (finished_at IS NULL OR finished_at > $1::timestamptz - interval '1 minute')
           GROUP BY agent
         ) starts GROUP BY agent`,
        [now],
      ),
      query<{ agent: string; finished: number; succeeded: number }>(
        `SELECT agent, count(*)::int AS finished, count(*) FILTER (WHERE failure_class = 'succeeded')::int AS succeeded
         FROM attempts WHERE finished_at > $1::timestamptz - interval '1 hour' AND failure_class <> 'cancelled'
         GROUP BY agent`,
        [now],
      ),
      query<{ agent: string; cost_usd: string }>(
        `SELECT agent, cost_usd FROM agent_spend WHERE day = ($1::timestamptz AT TIME ZONE 'UTC')::date`,
        [now],
      ),
    ]);
    const agents = new Map<string, AgentStatusRow>();
    const get = (agent: string): AgentStatusRow => {
      let row = agents.get(agent);
      if (!row) {
        row = idleAgentStatus(agent);
        agents.set(agent, row);
      }
      return row;
    };
    for (const b of breakers.rows) {
      get(b.agent).breaker = {
        state: b.state,
        failures: b.failures,
        windowStartedAt: b.window_started_at,
        openUntil: b.open_until,
        openedAt: b.opened_at,
      };
    }
    for (const l of leases.rows) get(l.agent).running = l.n;
    for (const s of starts.rows) get(s.agent).startsLastMinute = s.n;
    for (const r of recent.rows) get(r.agent).recent = { finished: r.finished, succeeded: r.succeeded };
    for (const s of spend.rows) get(s.agent).spendTodayUsd = Number(s.cost_usd);
    return { now, agents };
  }
}
