import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../../src/net/free-port';
import { ROOT, TEST_AGENTS_FILE, testEnv } from '../support/test-env';
import { waitFor } from '../support/wait-for';

/** `node dist/src/api/main.js` as the Docker image runs it (HOST=0.0.0.0), with `env` on top. */
async function startApi(env: NodeJS.ProcessEnv) {
  const port = await freePort();
  const child = spawn(process.execPath, [resolve(ROOT, 'dist/src/api/main.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOST: '0.0.0.0',
      PORT: String(port),
      DATABASE_URL: testEnv.databaseUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, port, exited, stderr: () => stderr };
}

describe('the API on a non-loopback HOST', () => {
  it('refuses to start without ATELIER_API_TOKENS, naming it', async () => {
    const api = await startApi({});
    try {
      await waitFor('the API to exit', () => api.child.exitCode !== null, { timeoutMs: 20_000 });
    } finally {
      api.child.kill('SIGKILL');
    }
    assert.equal(await api.exited, 1, api.stderr());
    assert.match(api.stderr(), /ATELIER_API_TOKENS: is required when HOST \(0\.0\.0\.0\) is not a loopback address/);
    assert.match(api.stderr(), /ATELIER_API_AUTH=none/);
  });

  it('starts with ATELIER_API_AUTH=none, the explicit opt-out', async () => {
    const api = await startApi({ ATELIER_API_AUTH: 'none' });
    try {
      await waitFor(
        'the API to serve',
        async () =>
          api.child.exitCode === null &&
          (await fetch(`http://127.0.0.1:${api.port}/health/live`).then(
            (r) => r.ok,
            () => false,
          )),
        { timeoutMs: 20_000 },
      );
    } finally {
      api.child.kill('SIGTERM');
      await api.exited;
    }
    assert.doesNotMatch(api.stderr(), /ATELIER_API_TOKENS/);
  });
});
