import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/net/free-port';
import { parentDeathPrefix } from '../../src/process/parent-death-signal';

const execFileAsync = promisify(execFile);

/** The newest PostgreSQL server binaries installed (Debian keeps them under /usr/lib/postgresql/N/bin). */
function postgresBin(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

export interface PrivatePostgres {
  url: (database: string) => string;
  /** Crash-restarts the server (immediate shutdown, as a power cut would), down for `downMs`. */
  restart: (downMs: number) => Promise<void>;
  stop: () => Promise<void>;
}

/** setpriv's options that run a program as the `postgres` user. */
const AS_POSTGRES = ['--reuid=postgres', '--regid=postgres', '--init-groups'];
/** How long the server gets to accept connections, and to stop before it is killed. */
const START_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 30_000;

/**
 * A PostgreSQL cluster of the chaos run's own, in `parent` (the environment's directory, which the
 * caller removes) on a free port: restarting it disturbs nothing else on the machine. The postmaster
 * runs as this process's child under a parent-death signal, not as pg_ctl's daemon, so that it dies
 * with this process even by SIGKILL. As root, it runs as the `postgres` user (it refuses root).
 */
export async function startPrivatePostgres(parent: string): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const port = await freePort();
  const dir = join(parent, 'postgres');
  mkdirSync(dir);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
    chmodSync(parent, 0o711); // the postgres user passes through to its own directory, and sees nothing else
  }
  // setpriv drops to postgres and sets the parent-death signal after it (a change of user clears it).
  const prefix = (deathSignal: boolean): string[] => {
    if (!asRoot) return deathSignal ? parentDeathPrefix('KILL') : [];
    return ['setpriv', ...AS_POSTGRES, ...(deathSignal ? ['--pdeathsig=KILL'] : []), '--'];
  };
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const [initdb, ...initArgs] = [...prefix(false), join(bin, 'initdb')];
  execFileSync(initdb as string, [...initArgs, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    stdio: 'ignore',
  });

  let server: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const [command, ...args] = [
      ...prefix(true),
      join(bin, 'postgres'),
      ...['-D', data, '-p', String(port), '-k', dir],
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'],
    ];
    const log = openSync(logFile, 'a');
    // Detached: a Ctrl-C at the terminal reaches the run, which stops the service before the database.
    const child = spawn(command as string, args, { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    server = child;
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    const logTail = (): string => readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' | ');
    const ready = (): Promise<boolean> =>
      execFileAsync(join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]).then(
        () => true,
        () => false,
      );
    const deadline = Date.now() + START_DEADLINE_MS;
    for (;;) {
      if (spawnError) throw new Error(`PostgreSQL could not start: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`PostgreSQL exited (${child.exitCode ?? child.signalCode}): ${logTail()}`);
      }
      if (await ready()) return;
      if (Date.now() > deadline) {
        await stop('SIGQUIT');
        throw new Error(`PostgreSQL did not accept connections within ${START_DEADLINE_MS} ms: ${logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** SIGINT: fast shutdown; SIGQUIT: immediate (no checkpoint, crash recovery at the next start). */
  const stop = async (signal: 'SIGINT' | 'SIGQUIT'): Promise<void> => {
    const child = server;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await gone;
    clearTimeout(timer);
  };
  try {
    await start();
  } catch (err) {
    throw new Error(`cannot start a private PostgreSQL: ${(err as Error).message}`);
  }
  return {
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    restart: async (downMs) => {
      await stop('SIGQUIT');
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    stop: () => stop('SIGINT'),
  };
}
