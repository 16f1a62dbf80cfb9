import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from 'pg';
import { removeLeftoverRunDirs } from '../chaos/run-dir';
import { ROOT } from '../support/test-env';
import { processAlive, waitFor, within } from '../support/wait-for';

/** Makes a chaos environment's directory and starts its PostgreSQL cluster, then waits to be killed. */
const HOLDER = `
const { makeRunDir } = require(${JSON.stringify(resolve(ROOT, 'dist/test/chaos/run-dir.js'))});
const { startPrivatePostgres } = require(${JSON.stringify(resolve(ROOT, 'dist/test/chaos/private-postgres.js'))});
const dir = makeRunDir();
startPrivatePostgres(dir).then((pg) => {
  process.stdout.write(JSON.stringify({ dir, url: pg.url('postgres') }) + '\\n');
  setInterval(() => undefined, 60_000);
});
`;

describe('chaos: a run killed with SIGKILL', { timeout: 120_000 }, () => {
  it('takes its PostgreSQL cluster with it, and the next run removes its files', async () => {
    const holder = spawn(process.execPath, ['-e', HOLDER], { stdio: ['ignore', 'pipe', 'inherit'] });
    let postmaster: number | undefined;
    try {
      const [line] = await within(
        'the private PostgreSQL to start',
        60_000,
        (async () => {
          for await (const l of createInterface({ input: holder.stdout })) return [l];
          throw new Error('the holder exited before its PostgreSQL started');
        })(),
      );
      const { dir, url } = JSON.parse(line as string) as { dir: string; url: string };
      const client = new Client({ connectionString: url });
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      postmaster = Number(readFileSync(resolve(dir, 'postgres/data/postmaster.pid'), 'utf8').split('\n')[0]);
      assert.ok(processAlive(postmaster), 'the postmaster runs');

      assert.deepEqual(removeLeftoverRunDirs(), [], 'a live run keeps its directory');
      assert.ok(existsSync(dir));

      const exited = new Promise((r) => holder.once('exit', r));
      holder.kill('SIGKILL');
      await exited;
      await waitFor('the postmaster to die with the run', () => !processAlive(postmaster as number), {
        timeoutMs: 10_000,
      });

      assert.ok(removeLeftoverRunDirs().includes(resolve(dir).split('/').pop() as string));
      assert.equal(existsSync(dir), false, 'the dead run directory is removed');
    } finally {
      holder.kill('SIGKILL');
      if (postmaster !== undefined && processAlive(postmaster)) process.kill(postmaster, 'SIGKILL'); // the test failed
    }
  });
});
