import type { Pool } from 'pg';
import { boundedQuery, STATEMENT_TIMEOUT_MS } from '../db/bounded-query';

/** A task that ended (succeeded, failed or cancelled), and the repository path it was given, if any. */
export interface EndedTask {
  id: string;
  repoPath: string | null;
  /** Ended ORPHANS_KEPT_DAYS ago or more (or at an unknown time): an orphaned copy of its worktree may go. */
  longEnded: boolean;
}

/**
 * How long a worktree directory git no longer knows (another worker took the task's worktree over, and
 * its disk was not this one's) is kept after its task ended: it may hold work nothing else has.
 */
export const ORPHANS_KEPT_DAYS = 7;

/**
 * How long after a task's end is recorded its worktree is still its workflow's: the workflow commits
 * what is left there and removes it just after, and the janitor must not commit beside it.
 */
export const WORKTREE_SETTLE_SECONDS = 300;

/**
 * Which tasks ended, for the worktree janitor: only an ended task's worktree may be removed. A task can
 * start again (a retry), so the janitor asks once for what it found on disk and again for each task just
 * before removing its worktree.
 */
export class EndedTaskStore {
  constructor(private readonly pool: Pool) {}

  /**
   * The tasks among `ids` that ended at least WORKTREE_SETTLE_SECONDS ago (or at an unknown time); a
   * task not stored, queued, running or just ended is left out. Bounded by STATEMENT_TIMEOUT_MS.
   */
  async ended(ids: readonly string[]): Promise<EndedTask[]> {
    const res = await this.pool.query<{ id: string; repo_path: string | null; long_ended: boolean }>(
      boundedQuery(
        STATEMENT_TIMEOUT_MS,
        `SELECT id, repo_path,
           COALESCE(finished_at < clock_timestamp() - make_interval(days => $3), true) AS long_ended
         FROM tasks
         WHERE id = ANY($1::uuid[]) AND status IN ('succeeded', 'failed', 'cancelled')
           AND (finished_at IS NULL OR finished_at < clock_timestamp() - make_interval(secs => $2))`,
        [ids, WORKTREE_SETTLE_SECONDS, ORPHANS_KEPT_DAYS],
      ),
    );
    return res.rows.map((row) => ({ id: row.id, repoPath: row.repo_path, longEnded: row.long_ended }));
  }
}
