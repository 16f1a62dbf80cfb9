import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EndedTaskStore } from '../../src/store/ended-task-store';
import { removeTree } from './remove-tree';

// Copies of task worktrees whose work nothing can commit, kept ORPHANS_KEPT_DAYS for whoever wants what
// only they hold: directories git no longer knows (another worker took the worktree over from a disk it
// did not see, or the repository is gone), and registered worktrees set aside before their registration
// is removed (the agent removed their `.git`, or they are this machine's old copy of a worktree another
// worker made again since).

/** `<task id>.orphan-<epoch ms>`: a copy of a task's worktree set aside beside it (`setAside`), and when. */
const SET_ASIDE = /^[^/]+\.orphan-(\d+)$/;

/**
 * Moves the directory at `path`, a copy of a task's worktree whose work nothing can commit, aside beside
 * it, as `<path>.orphan-<epoch ms>`, so a worktree of the task can be made there again while the files
 * stay, for whoever wants what only they hold. It is a directory git no longer knows (another worker
 * took the worktree over from a disk it did not see), or a registered worktree about to be unregistered
 * (its `.git` removed by the agent, or this machine's old copy of a worktree another worker made again
 * since). A lost worker's worktree may be in another worker's root, not this one's: its copy stays
 * there, for the janitor of a worker with that root, if any (`removeSetAsideOlderThan`). Returns where
 * it went.
 */
export async function setAside(path: string, now = Date.now()): Promise<string> {
  const aside = `${path}.orphan-${now}`;
  await rename(path, aside);
  return aside;
}

/** What removing the copies set aside long enough did: the paths removed, and those that stay, with why. */
export interface SetAsideRemoval {
  removed: string[];
  failed: { path: string; error: string }[];
}

/**
 * Removes the copies under `root` that were set aside `keptMs` or more ago, each on its own: one that
 * cannot be removed stays, named in `failed`, and the others are removed all the same.
 */
export async function removeSetAsideOlderThan(
  root: string,
  keptMs: number,
  now = Date.now(),
  remove: (path: string) => Promise<void> = removeTree,
): Promise<SetAsideRemoval> {
  const names = await readdir(root).catch(() => []);
  const old = names.filter((name) => {
    const at = SET_ASIDE.exec(name)?.[1];
    return at !== undefined && now - Number(at) >= keptMs;
  });
  const result: SetAsideRemoval = { removed: [], failed: [] };
  for (const path of old.map((name) => join(root, name))) {
    try {
      await remove(path);
      result.removed.push(path);
    } catch (err) {
      result.failed.push({ path, error: String(err) });
    }
  }
  return result;
}

/**
 * Removes the orphaned directory of task `taskId` under `root` if its task is asked again and has
 * still ended ORPHANS_KEPT_DAYS ago (a retried task prepares its worktree there again); says whether.
 * Throws when the directory cannot be removed (`removeTree`).
 */
export async function removeLongEndedOrphan(
  endedTasks: Pick<EndedTaskStore, 'ended'>,
  root: string,
  taskId: string,
  remove: (path: string) => Promise<void> = removeTree,
): Promise<boolean> {
  if (!(await endedTasks.ended([taskId]))[0]?.longEnded) return false;
  await remove(join(root, taskId));
  return true;
}
