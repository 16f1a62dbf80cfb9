import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { processAlive } from '../../src/process/process-alive';
import { ROOT } from '../support/test-env';

describe('processAlive', () => {
  it('is true for this process and false for a pid that has exited', () => {
    assert.equal(processAlive(process.pid), true);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    assert.equal(processAlive(Number(child.stdout.toString())), false);
  });

  it("is true for another user's process (kill answers EPERM)", () => {
    // PID 1 is root's: seen from a user that may not signal it. As root, the check runs as `nobody`,
    // which may not read this checkout: it gets a copy of the compiled modules it needs.
    const copy = mkdtempSync(join(tmpdir(), 'atelier-process-alive-'));
    try {
      for (const file of ['process-alive.js', 'proc-stat.js']) {
        copyFileSync(resolve(ROOT, 'dist/src/process', file), join(copy, file));
      }
      chmodSync(copy, 0o755);
      const check = `process.stdout.write(String(require(${JSON.stringify(join(copy, 'process-alive.js'))}).processAlive(1)))`;
      const asUser =
        process.getuid?.() === 0 ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'] : [];
      const [command, ...args] = [...asUser, process.execPath, '-e', check];
      assert.equal(execFileSync(command as string, args, { cwd: '/', encoding: 'utf8' }), 'true');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
