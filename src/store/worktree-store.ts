import type { Pool } from 'pg';
import type { TaskCommit } from '../../workflows/definitions';
import { boundedQuery } from '../db/bounded-query';
import { retryTransient } from '../db/transient';

/**
 * A patch as it is kept: as text when it is UTF-8 without NUL, as nearly every patch is (so an API of
 * the release before 0012, which reads only `patch`, serves it too), else as bytes in `patch_bytes`.
 */
function patchColumns(patch: Buffer | null): [text: string | null, bytes: Buffer | null] {
  if (patch === null) return [null, null];
  const text = patch.toString('utf8');
  return !text.includes('\0') && Buffer.from(text, 'utf8').equals(patch) ? [text, null] : [null, patch];
}

/** What a task with a repository committed, and its patch (infra/migrations/0005_plans.sql, 0012). */
export class WorktreeStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Records the task's commit and patch, byte for byte as git printed it; idempotent (the latest commit
   * of the task wins). `patch` null: too large to keep (the commit is on the task's branch all the same).
   * `timeoutMs`: how long each try may wait for PostgreSQL's answer (unbounded when undefined).
   */
  async recordCommit(taskId: string, commit: TaskCommit, patch: Buffer | null, timeoutMs?: number): Promise<void> {
    await retryTransient(() =>
      this.pool.query(
        boundedQuery(
          timeoutMs,
          `WITH diff AS (
           INSERT INTO task_diffs (task_id, base_sha, sha, patch, patch_bytes) VALUES ($1, $3, $4, $8, $9)
           ON CONFLICT (task_id) DO UPDATE
             SET base_sha = $3, sha = $4, patch = $8, patch_bytes = $9, created_at = clock_timestamp()
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
            ...patchColumns(patch),
          ],
        ),
      ),
    );
  }

  /**
   * The base and commit recorded for the task, and its declared locks: what work committed on its branch
   * outside its workflow (salvaged) is recorded against. Undefined for a task not stored.
   */
  async recorded(
    taskId: string,
    timeoutMs?: number,
  ): Promise<{ baseSha: string | null; commitSha: string | null; locks: string[] | null } | undefined> {
    const res = await this.pool.query<{ base_sha: string | null; commit_sha: string | null; locks: string[] | null }>(
      boundedQuery(timeoutMs, 'SELECT base_sha, commit_sha, locks FROM tasks WHERE id = $1', [taskId]),
    );
    const row = res.rows[0];
    return row && { baseSha: row.base_sha, commitSha: row.commit_sha, locks: row.locks };
  }

  /** The task's commit, and its patch's size in bytes (`null`: too large to keep); undefined without a commit. */
  async diffInfo(taskId: string): Promise<{ base_sha: string; sha: string; bytes: number | null } | undefined> {
    const res = await this.pool.query<{ base_sha: string; sha: string; bytes: number | null }>(
      // The sizes come from the values' headers: the patches themselves are not read.
      `SELECT base_sha, sha, COALESCE(octet_length(patch), octet_length(patch_bytes)) AS bytes FROM task_diffs
       WHERE task_id = $1`,
      [taskId],
    );
    return res.rows[0];
  }

  /**
   * The patch, byte for byte as git printed it; undefined when there is none. A patch kept as text is
   * read as text, the cheapest way over the wire (bytes come hex-encoded, twice their size).
   */
  async patch(taskId: string): Promise<Buffer | undefined> {
    const res = await this.pool.query<{ patch: string | null; patch_bytes: Buffer | null }>(
      // One of the two is set (patchColumns); a row of the release before 0012 has its text in `patch`.
      'SELECT patch, patch_bytes FROM task_diffs WHERE task_id = $1',
      [taskId],
    );
    const row = res.rows[0];
    if (row?.patch != null) return Buffer.from(row.patch, 'utf8');
    return row?.patch_bytes ?? undefined;
  }
}
