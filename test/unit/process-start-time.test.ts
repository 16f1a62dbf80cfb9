import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { processStartTicks } from '../../src/process/process-start-time';

describe('processStartTicks', () => {
  it('tells a process by its start, whatever its name holds, and nothing once it is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atelier-start-ticks-'));
    try {
      // A name with the ") " that ends the name field in /proc/<pid>/stat.
      const program = join(dir, 'a) b (c');
      symlinkSync('/bin/sleep', program);
      const child = spawn(program, ['30'], { stdio: 'ignore' });
      const pid = child.pid as number;
      const ticks = processStartTicks(pid);
      assert.match(ticks ?? '', /^\d+$/);
      assert.equal(processStartTicks(pid), ticks, 'the same process, the same start');
      assert.match(processStartTicks(process.pid) ?? '', /^\d+$/);
      assert.ok(Number(processStartTicks(process.pid)) <= Number(ticks), 'this process started before its child');
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      assert.equal(processStartTicks(pid), undefined, 'reaped: no process has the pid');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
