import { readFileSync } from 'node:fs';

/**
 * When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`): with its pid,
 * which process it is, since a pid passes to another process once the first is reaped. Undefined once
 * no process has the pid.
 */
export function processStartTicks(pid: number): string | undefined {
  try {
    // The fields after the command's name, which may hold spaces and parentheses, begin with the 3rd.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[22 - 3];
  } catch {
    return undefined;
  }
}
