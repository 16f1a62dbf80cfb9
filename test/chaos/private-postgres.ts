import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/net/free-port';

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

/**
 * A PostgreSQL cluster of the chaos run's own, on a free port: restarting it disturbs nothing else on
 * the machine. As root, the server runs as the `postgres` user (it refuses to run as root).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'atelier-chaos-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]): void => {
    const [command, prefix] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool)]] : [join(bin, tool), []];
    execFileSync(command as string, [...(prefix as string[]), ...args], { stdio: 'ignore' });
  };
  const data = join(dir, 'data');
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = (): void => run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', 'start']);
  const stop = (mode: 'fast' | 'immediate'): void => run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    start();
  } catch (err) {
    // A server pg_ctl started but did not see ready in time would run on, and hold the directory.
    try {
      stop('immediate');
    } catch {
      // none runs
    }
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    restart: async (downMs) => {
      stop('immediate');
      await new Promise((r) => setTimeout(r, downMs));
      start();
    },
    stop: async () => {
      try {
        stop('fast');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
