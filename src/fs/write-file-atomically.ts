import { renameSync, writeFileSync } from 'node:fs';

/**
 * Writes `path` whole or not at all: into a file beside it, then renamed over it. A process that reads
 * it meanwhile (a running service restarted while a build runs) reads the old content or the new one,
 * never a truncated file.
 */
export function writeFileAtomically(path: string, data: string | Uint8Array): void {
  const next = `${path}.${process.pid}.tmp`;
  writeFileSync(next, data);
  renameSync(next, path);
}
