import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { isUuid } from '../../workflows/definitions';

const ACTIVE = new Set(['queued', 'running']);

export interface WorktreeJanitorOptions {
  pool: Pool;
  /** This worker's worktree root: one directory per task id. */
  worktreeRoot: string;
  /** Removes the repository's worktrees under the root whose task is not in `running` (the activity). */
  sweep: (input: { repoPath: string; running: string[] }) => Promise<string[]>;
  intervalMs: number;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/**
 * Removes this agent worker's worktrees whose task no longer runs: the ones a task could not remove
 * itself (the worker died mid-task and came back, or the removal failed). Branches stay. Runs at start
 * and then every `intervalMs`; a failed sweep is logged and tried again next time.
 */
export class WorktreeJanitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly options: WorktreeJanitorOptions) {}

  start(): void {
    const tick = () => {
      this.running = this.sweepOnce()
        .then((removed) => {
          if (removed.length > 0) this.options.logger.info({ removed }, 'janitor removed stale worktrees');
        })
        .catch((err: unknown) => this.options.logger.warn({ error: String(err) }, 'worktree janitor failed'));
    };
    tick();
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep; returns the task ids whose worktree it removed. */
  async sweepOnce(): Promise<string[]> {
    const { worktreeRoot, pool, sweep } = this.options;
    const ids = existsSync(worktreeRoot) ? (await readdir(worktreeRoot)).filter((name) => isUuid(name)) : [];
    if (ids.length === 0) return [];
    const rows = await pool.query<{ id: string; status: string; repo_path: string | null }>(
      'SELECT id, status, repo_path FROM tasks WHERE id = ANY($1::uuid[])',
      [ids],
    );
    const byRepo = new Map<string, string[]>();
    for (const row of rows.rows) {
      if (row.repo_path === null) continue;
      const running = byRepo.get(row.repo_path) ?? [];
      if (ACTIVE.has(row.status)) running.push(row.id);
      byRepo.set(row.repo_path, running);
    }
    const removed: string[] = [];
    for (const [repoPath, running] of byRepo) {
      if (!existsSync(repoPath)) continue;
      removed.push(...(await sweep({ repoPath, running })));
    }
    return removed;
  }
}
