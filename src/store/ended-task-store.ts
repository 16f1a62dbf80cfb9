import type { Pool } from 'pg';

/** A task that ended (succeeded, failed or cancelled), and the repository path it was given, if any. */
export interface EndedTask {
  id: string;
  repoPath: string | null;
}

/**
 * Which tasks ended, for the worktree janitor: only an ended task's worktree may be removed. A task can
 * start again (a retry), so the janitor asks once for what it found on disk and again for each task just
 * before removing its worktree.
 */
export class EndedTaskStore {
  constructor(private readonly pool: Pool) {}

  /** The tasks among `ids` that ended; a task not stored, queued or running is left out. */
  async ended(ids: readonly string[]): Promise<EndedTask[]> {
    const res = await this.pool.query<{ id: string; repo_path: string | null }>(
      `SELECT id, repo_path FROM tasks
       WHERE id = ANY($1::uuid[]) AND status IN ('succeeded', 'failed', 'cancelled')`,
      [ids],
    );
    return res.rows.map((row) => ({ id: row.id, repoPath: row.repo_path }));
  }
}
