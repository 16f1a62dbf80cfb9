import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AgentSpawner } from '../../activities/agent/agent-spawner';
import { runProcess } from '../../activities/agent/run-process';
import { DEFAULT_SPAWNER_BINARY } from '../../src/workers/agent-spawn';

describe('AgentSpawner, environment', { timeout: 30_000 }, () => {
  const spawner = new AgentSpawner(DEFAULT_SPAWNER_BINARY);
  after(() => spawner.close());

  it("starts its helper with no environment: an agent finds none of the worker's variables in its parent's", async () => {
    const secret = 'worker-only-secret-0123';
    process.env.ATELIER_TEST_WORKER_SECRET = secret;
    let stdout = '';
    const end = await runProcess({
      invocation: {
        file: '/bin/sh',
        args: ['-c', 'tr "\\0" "\\n" < /proc/$PPID/environ; echo "parent read"'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdin: '',
      },
      spawn: spawner.spawn,
      timeoutMs: 20_000,
      killGraceMs: 2_000,
      signal: new AbortController().signal,
      onOutput: (stream, text) => {
        if (stream === 'stdout') stdout += text;
      },
    });
    delete process.env.ATELIER_TEST_WORKER_SECRET;
    assert.deepEqual(end, { kind: 'exited', exitCode: 0 });
    assert.match(stdout, /parent read/);
    assert.ok(!stdout.includes(secret), `the helper's environment holds the worker's: ${stdout}`);
    assert.equal(stdout.trim(), 'parent read');
  });
});
