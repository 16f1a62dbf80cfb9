import { readProcStat } from './proc-stat';

/** The process group of process `pid` (field 5 of /proc/<pid>/stat), or undefined once it is gone. */
export function processGroupOf(pid: number): number | undefined {
  const pgrp = readProcStat(pid)?.pgrp;
  return pgrp !== undefined && Number.isInteger(pgrp) && pgrp > 0 ? pgrp : undefined;
}
