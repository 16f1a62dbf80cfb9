import type { QueryConfig } from 'pg';

/**
 * How long a statement of background work (a sweep, a webhook round, a dashboard snapshot) waits for
 * PostgreSQL. Such work runs one round after another, and a stop waits for the one under way: a statement
 * sent on a connection a failover left open but silent would hold it, and the stop, until TCP gives up
 * (about 15 minutes). It fails instead ("Query read timeout", not transient, so not retried): the round
 * fails and is logged, the pool drops that connection, and the next round takes another.
 */
export const STATEMENT_TIMEOUT_MS = 10_000;

/**
 * A query that fails ("Query read timeout") when PostgreSQL has not answered within `timeoutMs`
 * (unbounded when undefined). The pool then drops its connection: a server gone silent (a failover
 * that leaves pooled connections open) fails the call rather than holding it, and the connection, until
 * TCP gives up, which can take hours.
 */
export function boundedQuery(timeoutMs: number | undefined, text: string, values: unknown[] = []): QueryConfig {
  return { text, values, query_timeout: timeoutMs } as QueryConfig;
}

/** The error of a boundedQuery whose time ran out: the database did not answer, the call may be tried again. */
export function isQueryTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Query read timeout';
}
