import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { removeLongEndedOrphan, removeSetAsideOlderThan } from '../../activities/git/orphan-copies';
import { removeTree } from '../../activities/git/remove-tree';
import type { SweepResult } from '../../activities/git/worktree.activities';
import { ORPHANS_KEPT_DAYS, type EndedTaskStore } from '../store/ended-task-store';
import { isUuid } from '../../workflows/definitions';

const DAY_MS = 86_400_000;

export interface WorktreeJanitorOptions {
  endedTasks: Pick<EndedTaskStore, 'ended'>;
  /** This worker's worktree root: one directory per task id. */
  worktreeRoot: string;
  /**
   * Removes the repository's worktrees under the root of the tasks in `ended` that have still ended when
   * it comes to each (the activity), and of those in `longEnded` the directories git no longer knows,
   * and says which it removed and which it had to keep.
   */
  sweep: (input: { repoPath: string; ended: string[]; longEnded: string[] }) => Promise<SweepResult>;
  intervalMs: number;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** How it removes a directory it removes itself (set-aside copies, orphans of a gone repository); default `removeTree`. */
  removeTree?: (path: string) => Promise<void>;
}

/**
 * Removes this agent worker's worktrees whose task ended: the ones a task could not remove itself (the
 * worker died mid-task and came back, or the removal failed), and, ORPHANS_KEPT_DAYS after their task
 * ended, the directories of worktrees git no longer knows (another worker took them over), and
 * ORPHANS_KEPT_DAYS after it was set aside, such a directory that a new preparation of its task moved
 * aside (`<task id>.orphan-<epoch ms>`). Branches stay. Only worktrees of tasks
 * known to have ended are named to the sweep, never "all but the running ones": a task may start after
 * the janitor looked, and `git worktree list` shows every worktree of a repository reached by several
 * paths. Runs at start and then every `intervalMs`, skipping a tick while the last sweep still runs; a
 * failed sweep is logged and tried again next time.
 */
export class WorktreeJanitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  private readonly remove: (path: string) => Promise<void>;

  constructor(private readonly options: WorktreeJanitorOptions) {
    this.remove = options.removeTree ?? removeTree;
  }

  start(): void {
    let sweeping = false;
    const tick = () => {
      if (sweeping) return;
      sweeping = true;
      this.running = this.sweepOnce()
        .then((removed) => {
          if (removed.length > 0) this.options.logger.info({ removed }, 'janitor removed stale worktrees');
        })
        .catch((err: unknown) => this.options.logger.warn({ error: String(err) }, 'worktree janitor failed'))
        .finally(() => {
          sweeping = false;
        });
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
    const { worktreeRoot, endedTasks, sweep, logger } = this.options;
    // Each copy on its own: one that cannot be removed (files the worker may not delete) stays, said so.
    const setAside = await removeSetAsideOlderThan(worktreeRoot, ORPHANS_KEPT_DAYS * DAY_MS, Date.now(), this.remove);
    if (setAside.removed.length > 0) {
      logger.info({ removed: setAside.removed }, 'janitor removed worktree copies set aside a week ago');
    }
    for (const { path, error } of setAside.failed) {
      logger.error({ worktree: path, error }, 'could not remove a worktree copy set aside a week ago; it stays');
    }
    const ids = existsSync(worktreeRoot) ? (await readdir(worktreeRoot)).filter((name) => isUuid(name)) : [];
    if (ids.length === 0) return [];
    const byRepo = new Map<string, { ended: string[]; longEnded: string[] }>();
    for (const task of await endedTasks.ended(ids)) {
      if (task.repoPath === null) continue;
      const repo = byRepo.get(task.repoPath) ?? { ended: [], longEnded: [] };
      repo.ended.push(task.id);
      if (task.longEnded) repo.longEnded.push(task.id);
      byRepo.set(task.repoPath, repo);
    }
    const removed: string[] = [];
    // One repository that fails (gone, locked, not a repository any more) does not stop the others'.
    for (const [repoPath, tasks] of byRepo) {
      try {
        if (!existsSync(repoPath)) {
          removed.push(...(await this.removeOrphansOfGone(repoPath, tasks.longEnded)));
          continue;
        }
        const swept = await sweep({ repoPath, ...tasks });
        removed.push(...swept.removed);
        for (const { taskId, worktree, error } of swept.kept) {
          this.options.logger.error({ taskId, worktree, error }, 'could not commit or remove a worktree; it stays');
        }
      } catch (err) {
        this.options.logger.warn({ repoPath, error: String(err) }, 'worktree janitor could not sweep a repository');
      }
    }
    return removed;
  }

  /**
   * The worktrees of tasks of a repository that is gone (deleted or moved) are orphans: git cannot
   * commit what they hold, nor remove them. Like any orphan they are removed ORPHANS_KEPT_DAYS after
   * their task ended (those in `longEnded`), each once it is asked again that its task has still ended
   * that long and its repository is still gone (a retried task, a repository put back). Returns their
   * task ids.
   */
  private async removeOrphansOfGone(repoPath: string, longEnded: string[]): Promise<string[]> {
    const removed: string[] = [];
    const { endedTasks, worktreeRoot, logger } = this.options;
    for (const taskId of longEnded) {
      if (existsSync(repoPath)) break;
      // One that cannot be removed stays, said so, and the others are removed all the same.
      try {
        if (await removeLongEndedOrphan(endedTasks, worktreeRoot, taskId, this.remove)) removed.push(taskId);
      } catch (err) {
        logger.error(
          { taskId, worktree: join(worktreeRoot, taskId), error: String(err) },
          'could not remove a worktree; it stays',
        );
      }
    }
    if (removed.length > 0) {
      this.options.logger.info({ repoPath, removed }, 'janitor removed the worktrees of a repository that is gone');
    }
    return removed;
  }
}
