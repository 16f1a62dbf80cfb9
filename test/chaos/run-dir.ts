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
 * a directory whose process is alive (another user's too), or whose pid has been reused, is left alone,
 * and so is one this process may not remove.
 */
export function removeLeftoverRunDirs(): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    const pid = RUN_DIR.exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
      removed.push(name);
    } catch (err) {
      // Not ours to remove (a run as root left files of the postgres user): it stays, and this run goes on.
      process.stderr.write(`chaos: could not remove ${name}, left by a run that died: ${(err as Error).message}\n`);
    }
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
