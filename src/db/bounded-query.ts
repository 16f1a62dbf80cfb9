import type { QueryConfig } from 'pg';

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
