import type { Pool } from 'pg';
import type { TaskCommit } from '../../workflows/definitions';
import { retryTransient } from '../db/transient';

/** What a task with a repository committed, and its patch (infra/migrations/0005_plans.sql). */
export class WorktreeStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Records the task's commit and patch; idempotent (the latest commit of the task wins). `patch` null:
   * too large to keep (the commit is on the task's branch all the same).
   */
  async recordCommit(taskId: string, commit: TaskCommit, patch: string | null): Promise<void> {
    await retryTransient(() =>
      this.pool.query(
        `WITH diff AS (
           INSERT INTO task_diffs (task_id, base_sha, sha, patch) VALUES ($1, $3, $4, $8)
           ON CONFLICT (task_id) DO UPDATE SET base_sha = $3, sha = $4, patch = $8, created_at = clock_timestamp()
         )
         UPDATE tasks SET branch = $2, base_sha = $3, commit_sha = $4, changed_files = $5, diffstat = $6,
           lock_violations = $7
         WHERE id = $1`,
        [
          taskId,
          commit.branch,
          commit.baseSha,
          commit.sha,
          commit.changedFiles,
          commit.diffstat,
          commit.lockViolations,
          patch?.replace(/\0/g, '') ?? null,
        ],
      ),
    );
  }

  async diff(taskId: string): Promise<{ base_sha: string; sha: string; patch: string | null } | undefined> {
    const res = await this.pool.query<{ base_sha: string; sha: string; patch: string | null }>(
      'SELECT base_sha, sha, patch FROM task_diffs WHERE task_id = $1',
      [taskId],
    );
    return res.rows[0];
  }
}
