import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Opens, read-only, a file holding `content` that no directory names any more: it is written in a
 * directory only this user may enter, opened, and removed with that directory. Its content lives as
 * long as a descriptor of it is open, and no longer, even if this process is killed. The caller closes
 * the descriptor.
 */
export function openUnlinkedFile(content: string): number {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-'));
  try {
    const path = join(dir, 'file');
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
    return openSync(path, 'r');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
