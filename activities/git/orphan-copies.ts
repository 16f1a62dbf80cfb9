import { chmod, lstat, readdir, rename, rm } from 'node:fs/promises';
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

/**
 * Removes the directory tree at `path` (nothing to do when it is gone). A tree the worker may not
 * change (an agent's `chmod 0555` directory with files in it) refuses with EACCES or EPERM: its
 * directories are then made writable by their owner and it is tried once more; what still refuses (files
 * another user owns, the output of a container run as root) throws.
 */
export async function removeTree(path: string, remove: typeof rm = rm): Promise<void> {
  try {
    await remove(path, { recursive: true, force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    await makeWritable(path);
    await remove(path, { recursive: true, force: true });
  }
}

/** Gives the owner write and search permission on every directory under `path` it can (never following a link). */
async function makeWritable(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (stat === undefined || !stat.isDirectory()) return;
  await chmod(path, (stat.mode & 0o7777) | 0o700).catch(() => undefined);
  for (const name of await readdir(path).catch(() => [])) await makeWritable(join(path, name));
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
