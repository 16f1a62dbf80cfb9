import { Pool } from 'pg';
import { waitFor } from '../support/wait-for';

/** Database work per task over a scenario: the Temporal server's store operations and PostgreSQL's transactions. */
export interface RoundTrips {
  /** The dev server's store operations (its `persistence_requests` metric), by operation, per task. */
  temporalStoreByOperation: Record<string, number>;
  temporalStorePerTask: number;
  /** Transactions in the service's PostgreSQL database per task (background work included, the benchmark's own queries not). */
  postgresTransactionsPerTask: number;
}

export const BENCH_APPLICATION_NAME = 'atelier-bench';

/**
 * The benchmark's own PostgreSQL pool, on the service's database. It counts its queries, so that
 * PostgreSQL's transaction count can be told apart from the service's.
 */
export class BenchPool {
  queries = 0;
  private readonly pool: Pool;
  constructor(connectionString: string | undefined) {
    this.pool = new Pool({ connectionString, max: 2, application_name: BENCH_APPLICATION_NAME });
    // An idle connection cut off (the database dropped on a stop signal, or gone) would otherwise
    // crash the benchmark in the middle of its cleanup; the next query reports it, if any comes.
    this.pool.on('error', () => undefined);
  }
  readonly query = ((...args: unknown[]) => {
    this.queries += 1;
    return (this.pool.query as (...a: unknown[]) => unknown).apply(this.pool, args);
  }) as Pool['query'];
  end(): Promise<void> {
    return this.pool.end();
  }
}

/** Until no connection but the benchmark's own is left on the service's database (each reports its statistics as it closes). */
export async function waitForServiceDisconnect(pool: Pick<Pool, 'query'>): Promise<void> {
  await waitFor(
    "the service's database connections to close",
    async () => {
      const res = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> $1`,
        [BENCH_APPLICATION_NAME],
      );
      return Number(res.rows[0]?.n) === 0;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
}

/** The dev server's store operations so far, by operation, from its Prometheus metrics. */
async function temporalStoreOperations(metricsUrl: string): Promise<Map<string, number>> {
  const res = await fetch(metricsUrl);
  if (!res.ok) throw new Error(`${metricsUrl} answered ${res.status}`);
  return storeOperationsIn(await res.text());
}

/** The `persistence_requests` counters of a Prometheus text exposition, summed by operation. */
export function storeOperationsIn(exposition: string): Map<string, number> {
  const byOperation = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (!line.startsWith('persistence_requests{')) continue;
    const operation = /operation="([^"]+)"/.exec(line)?.[1] ?? 'unknown';
    byOperation.set(operation, (byOperation.get(operation) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return byOperation;
}

/**
 * The store operations once the tasks before have finished theirs: read again each second until the
 * workflow writes stop moving (the server reports its counters with a delay, and closes workflows
 * after their tasks' ends are written).
 */
export async function settledTemporalStoreOperations(metricsUrl: string): Promise<Map<string, number>> {
  const writes = (m: Map<string, number>): number =>
    (m.get('UpdateWorkflowExecution') ?? 0) + (m.get('CreateWorkflowExecution') ?? 0);
  let last = await temporalStoreOperations(metricsUrl);
  for (let i = 0; i < SETTLE_READS; i++) {
    await new Promise((r) => setTimeout(r, SETTLE_INTERVAL_MS));
    const next = await temporalStoreOperations(metricsUrl);
    if (writes(next) === writes(last)) return next;
    last = next;
  }
  throw new Error(`the Temporal server's workflow writes did not settle within ${SETTLE_READS} s`);
}

const SETTLE_INTERVAL_MS = 1000;
const SETTLE_READS = 30;

/** Transactions committed or rolled back so far in the pool's database (PostgreSQL's cumulative statistics). */
export async function postgresTransactions(pool: Pick<Pool, 'query'>): Promise<number> {
  const res = await pool.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(res.rows[0]?.n ?? 0);
}

/** Per task, from counts taken before and after `tasks` tasks ran. */
export function roundTrips(
  store: { before: Map<string, number>; after: Map<string, number> },
  postgres: { before: number; after: number; ownQueries: number },
  tasks: number,
): RoundTrips {
  const byOperation: Record<string, number> = {};
  for (const [operation, count] of store.after) {
    const perTask = (count - (store.before.get(operation) ?? 0)) / tasks;
    if (perTask >= 0.05) byOperation[operation] = Math.round(perTask * 100) / 100;
  }
  const sorted = Object.fromEntries(Object.entries(byOperation).sort((a, b) => b[1] - a[1]));
  const storeTotal = [...store.after].reduce((sum, [op, count]) => sum + count - (store.before.get(op) ?? 0), 0);
  return {
    temporalStoreByOperation: sorted,
    temporalStorePerTask: storeTotal / tasks,
    postgresTransactionsPerTask: (postgres.after - postgres.before - postgres.ownQueries) / tasks,
  };
}
