import { readProcStat } from './proc-stat';

/** True while a process with this pid exists and has not exited (a zombie its parent has yet to reap has). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, another user's.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = readProcStat(pid)?.state;
  return state !== undefined && state !== 'Z';
}
