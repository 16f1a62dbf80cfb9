import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, resolve } from 'node:path';

/**
 * Whether `path` is a file this process may execute. Most PATH entries do not hold the program: a
 * missing file is answered without an exception (building one costs more than the look-up itself, and
 * this runs for every agent started).
 */
const isExecutableFile = (path: string): boolean => {
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isFile() !== true) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Finds the agent program the way execvp would, on the PATH the agent will get, as an absolute path.
 * Relative paths, a name with a slash or a relative PATH entry (`node_modules/.bin`), resolve from
 * `cwd`, the worker's directory, never from the task's workdir, whose files are a repository's. Returns
 * undefined when there is nothing to run, so a missing CLI is a clear error rather than an exit code to
 * guess at.
 */
export function resolveProgram(file: string, pathVariable: string | undefined, cwd: string): string | undefined {
  if (file.includes('/')) {
    const candidate = isAbsolute(file) ? file : resolve(cwd, file);
    return isExecutableFile(candidate) ? candidate : undefined;
  }
  for (const dir of (pathVariable ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = resolve(cwd, dir, file);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}
