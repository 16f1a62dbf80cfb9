import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentDeathPrefix } from '../process/parent-death-signal';

/** SQLite settings of the dev server's store: WAL for concurrent reads, fewer fsyncs, room for contention. */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal', 'busy_timeout=10000'];

/**
 * Dynamic config of the dev server. One task-queue partition: with a handful of pollers, tasks written
 * to a partition no poller is on wait to be forwarded, which costs up to a second of dispatch latency.
 * The new matcher honours task priority (1 highest). The search-attribute cache on again (the CLI turns
 * it off, so attributes added by hand show at once): without it the server reads its cluster metadata
 * and namespace from SQLite six times per task. Atelier defines no search attributes; one added by hand
 * shows within a minute. The transfer queue, which hands each workflow task and attempt to matching,
 * read up to 100 times a second instead of 20: the limit is per history shard, and the dev server has
 * one, so under a steady 20 tasks/s each hand-over waited up to 50 ms for the next read.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'matching.useNewMatcher=true',
  'system.forceSearchAttributesCacheRefreshOnRead=false',
  'history.transferProcessorMaxPollRPS=100',
];

export interface DevServerOptions {
  binary: string;
  /** Persistent SQLite file; state survives restarts. */
  dbFile: string;
  ip: string;
  port: number;
  uiPort: number;
  namespace: string;
  /** false: no Web UI (tests). */
  ui: boolean;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** More dynamic config (`key=value`), after the defaults. */
  dynamicConfig?: string[];
  /** Port of the server's Prometheus metrics (`/metrics`); a random free one when unset. */
  metricsPort?: number;
}

export const devServerArgs = (o: DevServerOptions): string[] => [
  'server',
  'start-dev',
  '--db-filename',
  o.dbFile,
  '--ip',
  o.ip,
  '--port',
  String(o.port),
  ...(o.ui ? ['--ui-port', String(o.uiPort)] : ['--headless']),
  ...(o.metricsPort === undefined ? [] : ['--metrics-port', String(o.metricsPort)]),
  '--namespace',
  o.namespace,
  '--log-level',
  o.logLevel ?? 'warn',
  ...DEV_SERVER_SQLITE_PRAGMAS.flatMap((p) => ['--sqlite-pragma', p]),
  ...[...DEV_SERVER_DYNAMIC_CONFIG, ...(o.dynamicConfig ?? [])].flatMap((v) => ['--dynamic-config-value', v]),
];

/** Whether something accepts a TCP connection on host:port now. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves once something accepts TCP connections on host:port, or rejects at the deadline, or when
 * `cancel` aborts (so a wait that lost a race polls no longer).
 */
export async function waitForPort(host: string, port: number, timeoutMs: number, cancel?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    cancel?.throwIfAborted();
    if (await accepts(host, port)) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(200, undefined, { signal: cancel });
  }
}

/** A port the dev server is to listen on answers before it starts: another program's, maybe another Temporal. */
export class DevServerPortInUse extends Error {}

/**
 * Refuses to start on a port that already answers: the server would fail to bind it and exit, while
 * waiting for the port would find the other program's listener and take it for ours.
 */
async function refuseTakenPorts(o: DevServerOptions): Promise<void> {
  const ports = [{ port: o.port, what: 'gRPC' }, ...(o.ui ? [{ port: o.uiPort, what: 'Web UI' }] : [])];
  for (const { port, what } of ports) {
    if (await accepts(o.ip, port)) {
      throw new DevServerPortInUse(
        `cannot start the Temporal dev server: its ${what} port ${o.ip}:${port} is already in use by another ` +
          'program. Stop that program, or, to use a Temporal server that is already running, set ' +
          'TEMPORAL_ADDRESS to its host:port.',
      );
    }
  }
}

/** The dev server exited before its gRPC port answered. */
class EarlyExit extends Error {}

/** How long the dev server gets to stop on SIGTERM before its process group is killed. */
const STOP_GRACE_MS = 15_000;

/**
 * Stops a dev server: SIGTERM, then SIGKILL to its process group if it has not exited after the grace
 * period. Resolves once it has exited: `'killed'` when the grace ran out, else `'stopped'`.
 */
export async function stopDevServer(child: ChildProcess): Promise<'stopped' | 'killed'> {
  // No pid: it never ran (its program missing), and no 'exit' would come.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return 'stopped';
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let killed = false;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    killed = true;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }, STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  return killed ? 'killed' : 'stopped';
}

/**
 * A start that `cancel` ended; the server it had started is stopped (`killed`: only once the grace
 * period ran out), so nothing of it runs.
 */
export class DevServerStartCancelled extends Error {
  constructor(readonly killed: boolean) {
    super('the Temporal dev server start was cancelled');
  }
}

/**
 * Starts: the dev server picks some of its ports itself (HTTP, metrics, its internal services), each
 * free when it asks and possibly taken by another process by the time it binds it. Such a start
 * exits at once and is tried again.
 */
const START_ATTEMPTS = 3;

/**
 * Starts the Temporal CLI dev server as a child process in its own process group (a terminal's Ctrl-C
 * must not stop it before the workers have drained) that dies with its parent, and waits until its
 * gRPC port and, with `ui`, its Web UI port answer. Rejects with DevServerPortInUse, before starting
 * anything, when one of those ports already answers. With `stdio: 'ignore'` its output is dropped,
 * except the end of it when it exits early, which the error carries. When `cancel` aborts before the
 * ports answer, it stops the server it started as stopDevServer does and rejects with
 * DevServerStartCancelled: a server that hangs in its start must not hold up a stop for the whole wait.
 */
export async function startDevServer(
  o: DevServerOptions,
  stdio: 'inherit' | 'ignore' = 'inherit',
  cancel?: AbortSignal,
): Promise<ChildProcess> {
  mkdirSync(dirname(o.dbFile), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    await refuseTakenPorts(o);
    if (cancel?.aborted) throw new DevServerStartCancelled(false);
    try {
      return await startOnce(o, stdio, cancel);
    } catch (err) {
      if (!(err instanceof EarlyExit) || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

async function startOnce(
  o: DevServerOptions,
  stdio: 'inherit' | 'ignore',
  cancel?: AbortSignal,
): Promise<ChildProcess> {
  const [command, ...args] = [...parentDeathPrefix('TERM'), o.binary, ...devServerArgs(o)];
  const output = stdio === 'inherit' ? 'inherit' : 'pipe';
  const child = spawn(command as string, args, { stdio: ['ignore', output, output], detached: true });
  let tail = '';
  const keepTail = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-2000);
  };
  // Read for the server's whole life, so a full pipe never blocks it.
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  const exitMessage = (code: number | null, signal: NodeJS.Signals | null): string =>
    `Temporal dev server exited early (${code ?? signal})${tail ? `: ${tail.trim()}` : ''}`;
  const exited = new Promise<never>((_, reject) => {
    child.once('close', (code, signal) => reject(new EarlyExit(exitMessage(code, signal))));
    // Its program missing or not executable: no 'close' may follow, and unheard, the error would end this process.
    child.once('error', (err) => reject(new EarlyExit(`Temporal dev server could not start: ${err.message}`)));
  });
  exited.catch(() => undefined);
  const polling = new AbortController();
  const pollUntil = cancel ? AbortSignal.any([polling.signal, cancel]) : polling.signal;
  const ports = Promise.all([
    waitForPort(o.ip, o.port, 120_000, pollUntil),
    o.ui ? waitForPort(o.ip, o.uiPort, 120_000, pollUntil) : undefined,
  ]);
  ports.catch(() => undefined);
  try {
    await Promise.race([ports, exited]);
    // The ports answer, but our server has exited: they are another program's, bound between the
    // check and the start, and the next attempt's check names them.
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EarlyExit(exitMessage(child.exitCode, child.signalCode));
    }
  } catch (err) {
    if (cancel?.aborted) throw new DevServerStartCancelled((await stopDevServer(child)) === 'killed');
    if (!(err instanceof EarlyExit) && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    throw err;
  } finally {
    // A server that exited leaves the port waits behind: they would poll on until their deadline.
    polling.abort();
  }
  return child;
}
