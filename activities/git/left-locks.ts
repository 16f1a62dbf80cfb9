import type { Stats } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';

const statOf = (path: string): Promise<Stats | undefined> => stat(path).catch(() => undefined);

/**
 * Runs `work`, which takes git's lock files `locks` (an index lock, a ref's lock); when it fails, those
 * that were there before it began and still are, the very same files (inode and mtime), are ones a
 * killed git left: the caller knows nothing else of this process can hold them meanwhile. They are
 * removed and `work` is tried once more; left there, they would fail every later try. A lock taken since
 * `work` began is a live git's: it stays, and the failure stands (retried). A failure for good stands too.
 */
export async function clearingLeftLocks<T>(locks: readonly string[], work: () => Promise<T>): Promise<T> {
  const before = await Promise.all(locks.map(statOf));
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    const left: string[] = [];
    for (const [i, lock] of locks.entries()) {
      const was = before[i];
      const now = was && (await statOf(lock));
      if (now && now.ino === was.ino && now.mtimeMs === was.mtimeMs) left.push(lock);
    }
    if (left.length === 0) throw err;
    await Promise.all(left.map((lock) => rm(lock, { force: true })));
    return work();
  }
}
