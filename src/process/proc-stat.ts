import { readFileSync } from 'node:fs';

/** What Atelier reads of /proc/<pid>/stat (proc(5)). */
export interface ProcStat {
  pid: number;
  /** Field 3: R, S, D, Z (a zombie its parent has yet to reap), T, … */
  state: string;
  /** Field 4. */
  ppid: number;
  /** Field 5: the process group. */
  pgrp: number;
  /** Field 6: the session. */
  session: number;
  /**
   * Field 22: when the process started, in clock ticks since boot. With its pid, which process it is,
   * since a pid passes to another process once the first is reaped.
   */
  startTicks: string | undefined;
}

/** Process `pid`'s /proc/<pid>/stat, or undefined once no process has the pid (or it cannot be read). */
export function readProcStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp session …": comm may hold spaces and parentheses; it ends at the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state = '', ppid, pgrp, session] = fields;
  return {
    pid,
    state,
    ppid: Number(ppid),
    pgrp: Number(pgrp),
    session: Number(session),
    startTicks: fields[22 - 3],
  };
}
