import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../../src/net/free-port';
import { childPids, descendantPids, stopStackCleanly } from '../support/process-tree';
import { spawnUp, startStack, type UpProcess } from '../support/stack';
import { ROOT } from '../support/test-env';
import { processAlive, waitFor } from '../support/wait-for';

const UP = resolve(ROOT, 'dist/src/up/main.js');
/** `up` with a dev server of its own, on the ports and SQLite file the test gives it. */
const UP_OWN_TEMPORAL = resolve(ROOT, 'dist/test/support/up-own-temporal.js');
/** infra/bootstrap.mjs once it has installed and built: runs the command, passing on signals. */
const FORWARD_SIGNALS = resolve(ROOT, 'infra/forward-signals.mjs');

interface LogLine {
  name?: string;
  level?: number;
  msg?: string;
  service?: string;
  signal?: string;
}

/** The JSON log lines of `up` itself (not of its services), in order. */
const upLog = (output: string): LogLine[] =>
  output
    .split(/\r?\n/)
    .filter((l) => l.includes('{'))
    .flatMap((l): LogLine[] => {
      try {
        // From the first brace: a terminal echoes a Ctrl-C as ^C before the next line.
        return [JSON.parse(l.slice(l.indexOf('{'))) as LogLine];
      } catch {
        return [];
      }
    })
    .filter((l) => l.name === 'up');

/** Live processes whose command line contains `text`, wherever they are in the process tree. */
function processesWith(text: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text);
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number)
    .filter((pid) => pid !== process.pid && processAlive(pid));
}

const exitedWithin = async (up: UpProcess, timeoutMs: number): Promise<number | null> => {
  await waitFor('up to exit', () => up.process.exitCode !== null || up.process.signalCode !== null, {
    timeoutMs,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n--- up output ---\n${up.output()}`);
  });
  return up.exited;
};

/** The scripts of package.json, as `npm run` runs them. */
const SCRIPTS = (JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;
/** `npm run SCRIPT` of the package.json in `dir`, as a user types it. */
const npmRun = (script: string, dir = ROOT): string[] => ['npm', '--prefix', dir, 'run', '--silent', script];
/** npm looks for its own new versions in the background otherwise. */
const NPM_ENV = { npm_config_update_notifier: 'false' };

/** A shell command line of `argv`, for script(1). */
const shellLine = (argv: string[]): string => argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');

describe('npm run up: stopping and start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-up-'));
  const ups: UpProcess[] = [];
  const leftovers: number[] = [];
  /** `up` and the processes it started, to kill after a failed test: a failure must not leave them running. */
  const track = <T extends UpProcess>(up: T): T => {
    ups.push(up);
    leftovers.push(...descendantPids(up.process.pid as number));
    return up;
  };
  after(() => {
    const running = ups.filter((u) => u.process.exitCode === null && u.process.signalCode === null);
    // What they started since they were tracked too (a test that failed before it listed them): a child
    // left running holds the test's pipes open, and the test file would never exit.
    const started = running.flatMap((u) => descendantPids(u.process.pid as number));
    for (const pid of [
      ...running.map((u) => u.process.pid as number),
      ...started,
      ...leftovers,
      ...processesWith(dir),
    ]) {
      if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Environment of an `up` that starts its own dev server; `dbFile` names it among the processes. */
  const ownTemporal = async (name: string): Promise<{ env: NodeJS.ProcessEnv; dbFile: string }> => {
    const dbFile = join(dir, name, 'temporal.sqlite');
    const env = {
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      ATELIER_TEST_DEV_DB_FILE: dbFile,
      ATELIER_TEST_DEV_UI_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
    };
    return { env, dbFile };
  };

  it('Ctrl-C to the whole process group stops the workers, then the dev server, and leaves nothing', async () => {
    const { env, dbFile } = await ownTemporal('ctrl-c');
    // What a terminal runs: bootstrap (past its build) and `up` under it, in one process group.
    const stack = track(
      await startStack(env, { argv: [process.execPath, FORWARD_SIGNALS, UP_OWN_TEMPORAL], detached: true }),
    );
    const pgid = stack.process.pid as number;
    const tree = descendantPids(pgid);
    assert.equal(processesWith(dbFile).length, 1, 'up runs its own dev server');

    process.kill(-pgid, 'SIGINT');
    const code = await exitedWithin(stack, 60_000);

    const output = stack.output();
    assert.equal(code, 0, `up stops cleanly on Ctrl-C\n--- output ---\n${output}`);
    const log = upLog(output).map((l) => (l.service ? `${l.msg}: ${l.service}` : l.msg));
    const at = (msg: string): number => {
      const i = log.indexOf(msg);
      assert.ok(i >= 0, `up logs "${msg}"; it logged:\n${log.join('\n')}`);
      return i;
    };
    const devServerStopped = at('Temporal dev server stopped');
    for (const service of ['api', 'workflow-worker', 'agent-worker']) {
      assert.ok(at(`service stopped: ${service}`) < devServerStopped, `${service} stops before the dev server`);
    }
    assert.equal(log.at(-1), 'stopped');
    assert.deepEqual(
      tree.filter((p) => processAlive(p)),
      [],
      'no process of the tree survives',
    );
    assert.deepEqual(processesWith(dbFile), [], 'the dev server is gone');
  });

  for (const how of ['typed on its terminal', 'sent to bootstrap alone'] as const) {
    it(`a SIGINT ${how} stops up once, in order`, async () => {
      // script(1) runs bootstrap and `up` on a terminal of their own; ETX typed into it is a Ctrl-C, which
      // reaches the whole foreground group, bootstrap too, which passes it on: up takes the two as one.
      // Sent to bootstrap's pid alone (an IDE's stop button), it reaches up through bootstrap only. Its
      // shell (sh without $SHELL) must exec bootstrap: dash waits for a lone command, dies of the Ctrl-C
      // itself, and script answers 130 for it.
      const stack = track(
        await startStack(
          { LOG_LEVEL: 'info' },
          {
            argv: ['script', '-qfec', `exec ${shellLine([process.execPath, FORWARD_SIGNALS, UP])}`, '/dev/null'],
            detached: true,
            stdin: true,
          },
        ),
      );

      if (how === 'typed on its terminal') stack.process.stdin?.write('\x03');
      else {
        const [bootstrap] = childPids(stack.process.pid as number);
        assert.ok(bootstrap !== undefined, 'script runs bootstrap');
        process.kill(bootstrap, 'SIGINT');
      }
      const code = await exitedWithin(stack, 60_000);

      const output = stack.output();
      assert.equal(code, 0, `up stops cleanly on SIGINT\n--- output ---\n${output}`);
      const signals = upLog(output).filter((l) => l.msg === 'stopping' || l.msg?.startsWith('already stopping'));
      assert.equal(signals[0] && `${signals[0].msg} (${signals[0].signal})`, 'stopping (SIGINT)', output);
      assert.deepEqual(
        signals.slice(1).map((l) => l.msg),
        signals.slice(1).map(() => 'already stopping; signal ignored'),
        `up stopped once\n--- output ---\n${output}`,
      );
      assert.equal(upLog(output).at(-1)?.msg, 'stopped');
    });
  }

  it('a dev server that dies while up runs is logged as an error and started again', async () => {
    const { env, dbFile } = await ownTemporal('dies');
    const stack = track(await startStack(env, { argv: [process.execPath, UP_OWN_TEMPORAL] }));
    const [first] = processesWith(dbFile);
    assert.ok(first !== undefined, 'up runs its own dev server');

    process.kill(first, 'SIGKILL');
    await waitFor('up to log the dev server exit as an error', () =>
      upLog(stack.output()).some((l) => l.level === 50 && l.msg?.startsWith('Temporal dev server exited')),
    );
    await waitFor('a new dev server', () => processesWith(dbFile).find((p) => p !== first));
    await waitFor(
      'the new dev server to answer',
      () => upLog(stack.output()).filter((l) => l.msg === 'Temporal dev server started').length === 2,
    );

    await stopStackCleanly(stack);
    assert.deepEqual(processesWith(dbFile), [], 'the new dev server is stopped with up');
  });

  it('a start-up error (PostgreSQL unreachable) stops the dev server and exits 1 promptly', async () => {
    const { env, dbFile } = await ownTemporal('no-postgres');
    const closedPort = await freePort();
    const up = track(
      await spawnUp(
        { ...env, DATABASE_URL: `postgresql://postgres@127.0.0.1:${closedPort}/atelier` },
        { argv: [process.execPath, UP_OWN_TEMPORAL] },
      ),
    );

    const code = await exitedWithin(up, 60_000);

    const output = up.output();
    assert.equal(code, 1, output);
    assert.match(output, new RegExp(`up: .*ECONNREFUSED 127\\.0\\.0\\.1:${closedPort}`));
    assert.ok(
      upLog(output).some((l) => l.msg === 'Temporal dev server started'),
      `the dev server had started\n${output}`,
    );
    assert.deepEqual(processesWith(dbFile), [], 'no dev server is left running');
  });

  it('a HOST other machines reach without a token stops start-up at once, naming ATELIER_API_TOKENS', async () => {
    const { env, dbFile } = await ownTemporal('open-host');
    const up = track(await spawnUp({ ...env, HOST: '0.0.0.0' }, { argv: [process.execPath, UP_OWN_TEMPORAL] }));

    const code = await exitedWithin(up, 30_000);

    const output = up.output();
    assert.equal(code, 1, output);
    assert.match(output, /ATELIER_API_TOKENS: is required when HOST \(0\.0\.0\.0\) is not a loopback address/);
    assert.deepEqual(upLog(output), [], 'nothing was started');
    assert.deepEqual(processesWith(dbFile), []);
  });

  it('SIGTERM while the dev server starts stops it, and starts no service', async () => {
    const { env, dbFile } = await ownTemporal('stopped-early');
    const up = track(await spawnUp(env, { argv: [process.execPath, UP_OWN_TEMPORAL] }));
    await waitFor('the dev server to be starting', () =>
      upLog(up.output()).some((l) => l.msg === 'starting Temporal dev server'),
    );

    up.process.kill('SIGTERM');
    const code = await exitedWithin(up, 60_000);

    const output = up.output();
    assert.equal(code, 0, output);
    assert.deepEqual(
      upLog(output).filter((l) => l.msg === 'service started'),
      [],
      'no service is started once up is stopping',
    );
    assert.deepEqual(processesWith(dbFile), [], 'no dev server is left running');
  });

  it('Ctrl-C while the dev server hangs in its start stops it at once, and starts no service', async () => {
    const { env, dbFile } = await ownTemporal('hangs');
    // A dev server that never opens its ports: up would wait for them 120 s.
    const hanging = join(dir, 'hanging-temporal.cjs');
    writeFileSync(hanging, '#!/usr/bin/env node\nsetInterval(() => undefined, 60_000);\n');
    chmodSync(hanging, 0o755);
    const up = track(
      await spawnUp({ ...env, ATELIER_TEST_DEV_BINARY: hanging }, { argv: [process.execPath, UP_OWN_TEMPORAL] }),
    );
    await waitFor('the hanging dev server to run', () => processesWith(dbFile).length === 1);

    up.process.kill('SIGINT');
    const code = await exitedWithin(up, 15_000);

    const output = up.output();
    assert.equal(code, 0, output);
    const log = upLog(output).map((l) => l.msg);
    assert.ok(log.includes('Temporal dev server stopped while starting'), output);
    assert.ok(!log.includes('service started'), `no service is started once up is stopping\n${output}`);
    assert.equal(log.at(-1), 'stopped');
    assert.deepEqual(processesWith(dbFile), [], 'the hanging dev server is gone');
  });

  /**
   * `npm run up` in a package of its own: bootstrap installs and builds, then runs `up` as forward-signals
   * does, so the package's script is the project's with that last step only.
   */
  const startNpmUp = async (name: string) => {
    assert.match(SCRIPTS.up ?? '', / infra\/bootstrap\.mjs up$/);
    const pkg = join(dir, name);
    mkdirSync(pkg);
    const up = SCRIPTS.up?.replace('infra/bootstrap.mjs up', `${FORWARD_SIGNALS} ${UP}`);
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'npm-up', private: true, scripts: { up } }));
    return track(await startStack({ ...NPM_ENV, LOG_LEVEL: 'info' }, { argv: npmRun('up', pkg) }));
  };

  it('SIGTERM to npm alone stops `npm run up` and every process under it', async () => {
    const stack = await startNpmUp('npm-up');
    const npm = stack.process.pid as number;
    const tree = descendantPids(npm);
    assert.ok(tree.length >= 5, `npm runs up, up runs its services: ${tree.join(', ')}`);

    process.kill(npm, 'SIGTERM');
    const code = await exitedWithin(stack, 60_000);

    assert.equal(code, 0, stack.output());
    await waitFor('every process under npm to exit', () => tree.every((p) => !processAlive(p)), { timeoutMs: 10_000 });
    assert.deepEqual(
      upLog(stack.output())
        .filter((l) => l.msg === 'stopping')
        .map((l) => l.signal),
      ['SIGTERM'],
    );
  });

  for (const victim of ['npm', 'bootstrap'] as const) {
    it(`SIGKILL to ${victim}, which can pass nothing on, stops up in order and every process under it`, async () => {
      const stack = await startNpmUp(`npm-up-kill-${victim}`);
      const npm = stack.process.pid as number;
      const tree = descendantPids(npm);
      const [bootstrap] = tree.filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(FORWARD_SIGNALS));
      assert.ok(bootstrap !== undefined, `npm runs bootstrap: ${tree.join(', ')}`);

      process.kill(victim === 'npm' ? npm : bootstrap, 'SIGKILL');
      await waitFor('every process under npm to exit', () => tree.every((p) => !processAlive(p)), {
        timeoutMs: 60_000,
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n--- output ---\n${stack.output()}`);
      });
      const log = upLog(stack.output());
      assert.deepEqual(
        log.filter((l) => l.msg === 'stopping').map((l) => l.signal),
        ['SIGTERM'],
      );
      assert.equal(log.at(-1)?.msg, 'stopped', 'up stopped its services in order');
    });
  }

  it('SIGTERM to npm alone stops `npm run api`, `npm run worker:workflows` and `npm run worker:agents`', async () => {
    const started = await Promise.all(
      ['api', 'worker:workflows', 'worker:agents'].map(async (script) => {
        const run = track(await spawnUp({ ...NPM_ENV, LOG_LEVEL: 'info' }, { argv: npmRun(script) }));
        // Three Node services starting at once on a busy machine: their start is not what is tested here.
        await waitFor(
          `npm run ${script} to serve`,
          async () => {
            if (run.process.exitCode !== null) throw new Error(`npm run ${script} exited: ${run.output()}`);
            if (script !== 'api') return run.output().includes('"msg":"worker polling"');
            return (await fetch(`${run.baseUrl}/health/live`)).ok;
          },
          { timeoutMs: 60_000 },
        );
        const tree = descendantPids(run.process.pid as number);
        leftovers.push(...tree);
        return { script, run, tree };
      }),
    );

    for (const { script, run, tree } of started) {
      assert.ok(tree.length >= 1, `npm runs node for ${script}`);
      process.kill(run.process.pid as number, 'SIGTERM');
    }
    for (const { script, run, tree } of started) {
      await waitFor(`every process of npm run ${script} to exit`, () => tree.every((p) => !processAlive(p)), {
        timeoutMs: 30_000,
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n--- output ---\n${run.output()}`);
      });
    }
  });

  it('SIGHUP (a closed terminal) stops up in order, as SIGTERM does', async () => {
    const stack = track(await startStack({ LOG_LEVEL: 'info' }, { argv: [process.execPath, FORWARD_SIGNALS, UP] }));
    const tree = descendantPids(stack.process.pid as number);

    // To bootstrap alone, which passes it on: its process group is not a terminal's here.
    stack.process.kill('SIGHUP');
    const code = await exitedWithin(stack, 60_000);

    const output = stack.output();
    assert.equal(code, 0, output);
    const log = upLog(output);
    assert.deepEqual(
      log.filter((l) => l.msg === 'stopping').map((l) => l.signal),
      ['SIGHUP'],
    );
    const stopped = log.flatMap((l) => (l.msg === 'service stopped' ? [l.service] : []));
    assert.deepEqual(stopped.sort(), ['agent-worker', 'api', 'workflow-worker'], 'each service was stopped by up');
    assert.equal(log.at(-1)?.msg, 'stopped');
    assert.deepEqual(
      tree.filter((p) => processAlive(p)),
      [],
      'no process of the tree survives',
    );
  });

  describe('refuses at once, before starting anything, what would make a service fail at every start', () => {
    /** `env` on top of the dev server's settings (or made from them). */
    const refused = async (
      env: NodeJS.ProcessEnv | ((own: NodeJS.ProcessEnv) => NodeJS.ProcessEnv),
      message: RegExp,
    ): Promise<void> => {
      const { env: own, dbFile } = await ownTemporal(`refused-${Math.random().toString(36).slice(2)}`);
      const extra = typeof env === 'function' ? env(own) : env;
      const up = track(await spawnUp({ ...own, ...extra }, { argv: [process.execPath, UP_OWN_TEMPORAL] }));
      const code = await exitedWithin(up, 30_000);
      const output = up.output();
      assert.equal(code, 1, output);
      assert.match(output, message);
      assert.deepEqual(upLog(output), [], 'nothing was started');
      assert.deepEqual(processesWith(dbFile), []);
    };

    it('a PORT another program listens on', async () => {
      const other = createServer();
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
      const { port } = other.address() as { port: number };
      try {
        await refused(
          { PORT: String(port) },
          new RegExp(`up: PORT: 127\\.0\\.0\\.1:${port} is already in use by another program`),
        );
      } finally {
        other.close();
      }
    });

    it('a metrics port that PORT names already', async () => {
      const port = await freePort();
      await refused(
        { PORT: String(port), ATELIER_AGENT_WORKER_METRICS_PORT: String(port) },
        new RegExp(`up: ATELIER_AGENT_WORKER_METRICS_PORT: port ${port} is PORT already`),
      );
    });

    it("a PORT that is the dev server's Web UI port", async () => {
      await refused(
        (own) => ({ PORT: own.ATELIER_TEST_DEV_UI_PORT }),
        /up: PORT: port \d+ is the Temporal dev server's Web UI port already/,
      );
    });

    it('an ATELIER_AGENT_SPAWNER that is not an executable file', async () => {
      const notExecutable = join(dir, 'spawner');
      writeFileSync(notExecutable, '');
      chmodSync(notExecutable, 0o644);
      await refused(
        { ATELIER_AGENT_SPAWNER: notExecutable },
        /up: ATELIER_AGENT_SPAWNER: .*spawner is not an executable file/,
      );
    });

    it('TEMPORAL_TLS_CERT_FILE without TEMPORAL_TLS_KEY_FILE', async () => {
      await refused(
        { TEMPORAL_TLS_CERT_FILE: join(dir, 'cert.pem') },
        /up: TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together/,
      );
    });
  });
});
