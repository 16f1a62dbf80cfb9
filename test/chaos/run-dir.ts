import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../../src/process/process-alive';

const PREFIX = 'atelier-chaos-';
/** A run directory's name carries the pid of the process that made it: `atelier-chaos-<pid>-XXXXXX`. */
const RUN_DIR = new RegExp(`^${PREFIX}(\\d+)-`);

/**
 * Removes the directories of chaos environments whose process has died without undoing them (a SIGKILL
 * gives it no chance). Their PostgreSQL and Temporal servers died with it (parent-death signals);
 * a directory whose process is alive, or whose pid has been reused, is left alone.
 */
export function removeLeftoverRunDirs(): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    const pid = RUN_DIR.exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * A new directory for one chaos environment's files (its PostgreSQL cluster, Temporal's file, the
 * agents' log), named after this process, once the leftovers of dead runs are gone.
 */
export function makeRunDir(): string {
  removeLeftoverRunDirs();
  return mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
}
