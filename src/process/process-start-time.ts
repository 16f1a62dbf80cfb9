import { readProcStat } from './proc-stat';

/**
 * When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`): with its pid,
 * which process it is, since a pid passes to another process once the first is reaped. Undefined once
 * no process has the pid.
 */
export function processStartTicks(pid: number): string | undefined {
  return readProcStat(pid)?.startTicks;
}
