import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../support/test-env';
import { within } from '../support/wait-for';

const BOOTSTRAP = resolve(ROOT, 'infra/bootstrap.mjs');
const BUILD_INFO = resolve(ROOT, 'dist/.tsbuildinfo');

describe('npm run up (infra/bootstrap.mjs) beside a service already running', () => {
  it('stops before it installs or builds anything when its API port already answers', async () => {
    const other = createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const { port } = other.address() as { port: number };
    const builtAt = statSync(BUILD_INFO).mtimeMs;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      HOST: '127.0.0.1',
    };
    delete env.npm_lifecycle_event;
    const child = spawn(process.execPath, [BOOTSTRAP, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const code = await within(
        'bootstrap to stop',
        30_000,
        new Promise<number | null>((r) => child.once('close', (c) => r(c))),
      );
      assert.equal(code, 1, output);
      assert.match(output, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use .*set PORT; nothing was built`));
      assert.doesNotMatch(output, /installing|building/);
      assert.equal(statSync(BUILD_INFO).mtimeMs, builtAt, 'the build did not run');
    } finally {
      // Gone on to build and start (the check broke), it would rewrite dist/ under other tests.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      other.close();
    }
  });
});
