import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { AGENT_TAG_VARIABLE, agentTag, withTag } from '../../src/process/agent-leftovers';

describe('withTag', () => {
  const entry = `${AGENT_TAG_VARIABLE}=${agentTag(1, 2)}`;

  it('reads an empty environment again, as a process in the middle of an exec shows one', async () => {
    const reads = new Map<number, number>();
    const read = (path: string): string => {
      const pid = Number(/^\/proc\/(\d+)\/environ$/.exec(path)?.[1]);
      const n = (reads.get(pid) ?? 0) + 1;
      reads.set(pid, n);
      switch (pid) {
        case 10: // mid-exec for its first two reads, then the agent's tagged daemon
          return n <= 2 ? '' : `PATH=/bin\0${entry}\0`;
        case 11: // cleared its environment
          return '';
        case 12: // another run's
          return `${AGENT_TAG_VARIABLE}=${agentTag(1, 3)}\0`;
        case 13: // tagged from the first read
          return `${entry}\0HOME=/`;
        default: // gone, or not ours to read
          throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      }
    };
    const tagged = await withTag([10, 11, 12, 13, 14], entry, read);
    assert.deepEqual([...tagged].sort(), [10, 13]);
    assert.deepEqual(
      Object.fromEntries(reads),
      { 10: 3, 11: 6, 12: 1, 13: 1, 14: 1 },
      'an empty environment is read again up to 5 times; any other, once',
    );
  });

  it('finds the tag in a real process environment, and not another run’s', async () => {
    const ours = spawn('sleep', ['30'], {
      stdio: 'ignore',
      env: { ...process.env, [AGENT_TAG_VARIABLE]: agentTag(1, 2) },
    });
    const theirs = spawn('sleep', ['30'], {
      stdio: 'ignore',
      env: { ...process.env, [AGENT_TAG_VARIABLE]: agentTag(1, 3) },
    });
    try {
      await Promise.all([ours, theirs].map((child) => new Promise((resolve) => child.once('spawn', resolve))));
      const tagged = await withTag([ours.pid as number, theirs.pid as number, process.pid], entry);
      assert.deepEqual([...tagged], [ours.pid]);
    } finally {
      ours.kill('SIGKILL');
      theirs.kill('SIGKILL');
    }
  });
});
