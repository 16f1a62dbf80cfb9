import { accessSync, constants, statSync } from 'node:fs';

/** True when `path` exists and is a directory (following links). */
export const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** True when this process's user may list the directory `path` and enter it (work in it). */
export const canEnter = (path: string): boolean => {
  try {
    accessSync(path, constants.R_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
