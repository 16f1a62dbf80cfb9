import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

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
