import { accessSync, constants, statSync } from 'node:fs';

/** True when `path` exists and is a directory (following links). */
export const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/**
 * What keeps this process's user from working in the directory `path` (an agent's start there would
 * fail as if its program were missing), or undefined when they may list and enter it.
 */
export function workdirProblem(path: string): string | undefined {
  if (!isDirectory(path)) return 'is not a directory';
  try {
    accessSync(path, constants.R_OK | constants.X_OK);
    return undefined;
  } catch {
    return `cannot be entered by the agent worker's user (uid ${process.getuid?.() ?? '?'})`;
  }
}
