/**
 * How long a statement of a background sweep (the API's of stranded submissions and closed runs, the
 * worker's worktree janitor) waits for PostgreSQL. Sweeps run one after another, and shutdown waits for
 * the one under way: a statement sent on a connection a failover left open but silent would hold
 * sweeping, and the process's stop, until TCP gives up (about 15 minutes). It fails instead ("Query
 * read timeout"): the sweep fails and is logged, the pool drops that connection, and the next sweep
 * takes another.
 */
export const SWEEP_STATEMENT_TIMEOUT_MS = 10_000;
