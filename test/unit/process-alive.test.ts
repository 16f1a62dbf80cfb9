import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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
    // which may not read this checkout: the compiled module reaches it on stdin.
    const script = `${readFileSync(resolve(ROOT, 'dist/src/process/process-alive.js'), 'utf8')}
process.stdout.write(String(exports.processAlive(1)));`;
    const asUser =
      process.getuid?.() === 0 ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'] : [];
    const [command, ...args] = [...asUser, process.execPath, '-'];
    assert.equal(execFileSync(command as string, args, { input: script, cwd: '/', encoding: 'utf8' }), 'true');
  });
});
