import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  devServerArgs,
  DevServerStartCancelled,
  startDevServer,
  type DevServerOptions,
} from '../../src/temporal/dev-server';
import { freePort } from '../../src/net/free-port';
import { processAlive, waitFor, within } from '../support/wait-for';

/**
 * A stand-in for the `temporal` binary: counts its starts in `<db file>.starts`, exits as a dev server
 * whose port was taken does for its first `FAKE_FAILURES` starts, then listens on `--port`, or with
 * `FAKE_HANGS` never does (its pid in `<db file>.pid`).
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
if (process.env.FAKE_HANGS) {
  writeFileSync(arg('--db-filename') + '.pid', String(process.pid));
  setInterval(() => undefined, 60_000);
} else createServer().listen(Number(arg('--port')), '127.0.0.1');
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

  it('stops a server that hangs in its start once cancelled, and rejects at once', async () => {
    process.env.FAKE_FAILURES = '0';
    process.env.FAKE_HANGS = '1';
    const o = await options('hangs');
    const cancel = new AbortController();
    try {
      const starting = startDevServer(o, 'ignore', cancel.signal);
      const pid = await waitFor(
        'the server to run',
        () => existsSync(`${o.dbFile}.pid`) && readFileSync(`${o.dbFile}.pid`, 'utf8'),
      );
      cancel.abort();
      await assert.rejects(
        within('the cancelled start', 5000, starting),
        (err) => err instanceof DevServerStartCancelled && !err.killed,
      );
      assert.ok(!processAlive(Number(pid)), 'the server is stopped');
      assert.equal(starts(o), 1);
    } finally {
      delete process.env.FAKE_HANGS;
    }
  });

  /** A listener of another program on `port`, until the test ends. */
  const occupy = async (port: number): Promise<Server> => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    return server;
  };

  it('leaves nothing running once a start has failed, so its process can exit at once', async () => {
    const o = await options('exits');
    const script = `require(${JSON.stringify(require.resolve('../../src/temporal/dev-server'))})
      .startDevServer(${JSON.stringify(o)}, 'ignore')
      .catch((err) => console.log(err.message));`;
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, FAKE_FAILURES: '99' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor('the process to exit', () => child.exitCode !== null, { timeoutMs: 15_000 });
    } finally {
      child.kill('SIGKILL');
    }
    assert.match(output, /exited early \(2\)/);
    assert.equal(starts(o), 3);
  });

  it('refuses a gRPC port another program listens on, naming it, and starts nothing', async () => {
    process.env.FAKE_FAILURES = '0';
    const o = await options('grpc-taken');
    const other = await occupy(o.port);
    try {
      await assert.rejects(
        startDevServer(o, 'ignore'),
        new RegExp(`gRPC port 127\\.0\\.0\\.1:${o.port} is already in use.*TEMPORAL_ADDRESS`),
      );
      assert.ok(!existsSync(`${o.dbFile}.starts`), 'the server was not started');
    } finally {
      other.close();
    }
  });

  it('refuses a Web UI port another program listens on', async () => {
    process.env.FAKE_FAILURES = '0';
    const o = { ...(await options('ui-taken')), ui: true, uiPort: await freePort() };
    const other = await occupy(o.uiPort);
    try {
      await assert.rejects(
        startDevServer(o, 'ignore'),
        new RegExp(`Web UI port 127\\.0\\.0\\.1:${o.uiPort} is already in use`),
      );
      assert.ok(!existsSync(`${o.dbFile}.starts`), 'the server was not started');
    } finally {
      other.close();
    }
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
