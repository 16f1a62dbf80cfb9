import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { EndedTaskStore } from '../../src/store/ended-task-store';

// Copies of task worktrees that git no longer knows (another worker took the worktree over from a disk
// it did not see, or the repository is gone): nothing can commit them, and they are kept
// ORPHANS_KEPT_DAYS for whoever wants what only they hold.

/** `<task id>.orphan-<epoch ms>`: a copy of a task's worktree set aside in the worktree root, and when. */
const SET_ASIDE = /^[^/]+\.orphan-(\d+)$/;

/**
 * Moves the directory at `path` (a task's worktree that git no longer knows: another worker took the
 * worktree over from a disk it did not see) aside in the same root, as `<path>.orphan-<epoch ms>`, so a
 * worktree of the task can be made there again while the files stay, for whoever wants what only they
 * hold. Returns where it went.
 */
export async function setAside(path: string, now = Date.now()): Promise<string> {
  const aside = `${path}.orphan-${now}`;
  await rename(path, aside);
  return aside;
}

/** Removes the copies under `root` that were set aside `keptMs` or more ago; returns their paths. */
export async function removeSetAsideOlderThan(root: string, keptMs: number, now = Date.now()): Promise<string[]> {
  const names = await readdir(root).catch(() => []);
  const old = names.filter((name) => {
    const at = SET_ASIDE.exec(name)?.[1];
    return at !== undefined && now - Number(at) >= keptMs;
  });
  const paths = old.map((name) => join(root, name));
  for (const path of paths) await rm(path, { recursive: true, force: true });
  return paths;
}

/**
 * Removes the orphaned directory of task `taskId` under `root` if its task is asked again and has
 * still ended ORPHANS_KEPT_DAYS ago (a retried task prepares its worktree there again); says whether.
 */
export async function removeLongEndedOrphan(
  endedTasks: Pick<EndedTaskStore, 'ended'>,
  root: string,
  taskId: string,
): Promise<boolean> {
  if (!(await endedTasks.ended([taskId]))[0]?.longEnded) return false;
  await rm(join(root, taskId), { recursive: true, force: true });
  return true;
}
