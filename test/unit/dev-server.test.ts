import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { devServerArgs, startDevServer, type DevServerOptions } from '../../src/temporal/dev-server';
import { freePort } from '../../src/net/free-port';

/**
 * A stand-in for the `temporal` binary: counts its starts in `<db file>.starts`, exits as a dev server
 * whose port was taken does for its first `failures` starts, then listens on `--port`.
 */
const FAKE_SERVER = `#!/usr/bin/env node
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:net');
const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const counter = arg('--db-filename') + '.starts';
const starts = (existsSync(counter) ? Number(readFileSync(counter, 'utf8')) : 0) + 1;
writeFileSync(counter, String(starts));
if (starts <= Number(process.env.FAKE_FAILURES)) {
  console.error('listen tcp 127.0.0.1:7243: bind: address already in use');
  process.exit(2);
}
createServer().listen(Number(arg('--port')), '127.0.0.1');
`;

describe('startDevServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-dev-server-'));
  const binary = join(dir, 'temporal.cjs');
  writeFileSync(binary, FAKE_SERVER);
  chmodSync(binary, 0o755);
  after(() => rmSync(dir, { recursive: true, force: true }));

  const options = async (name: string): Promise<DevServerOptions> => ({
    binary,
    dbFile: join(dir, `${name}.sqlite`),
    ip: '127.0.0.1',
    port: await freePort(),
    uiPort: 0,
    namespace: 'default',
    ui: false,
  });
  const starts = (o: DevServerOptions): number => Number(readFileSync(`${o.dbFile}.starts`, 'utf8'));

  it('starts the server again when it exits before its port answers', async () => {
    process.env.FAKE_FAILURES = '2';
    const o = await options('flaky');
    const server = await startDevServer(o, 'ignore');
    server.kill('SIGKILL');
    assert.equal(starts(o), 3);
  });

  it('gives up after three starts, with the end of what the server said', async () => {
    process.env.FAKE_FAILURES = '99';
    const o = await options('broken');
    await assert.rejects(startDevServer(o, 'ignore'), /exited early \(2\): listen tcp .*address already in use/);
    assert.equal(starts(o), 3);
  });

  it('serves its metrics on the port asked for, else on one it picks', async () => {
    const o = await options('metrics');
    const args = devServerArgs({ ...o, metricsPort: 9321 });
    assert.deepEqual(args.slice(args.indexOf('--metrics-port'), args.indexOf('--metrics-port') + 2), [
      '--metrics-port',
      '9321',
    ]);
    assert.ok(!devServerArgs(o).includes('--metrics-port'));
  });
});
