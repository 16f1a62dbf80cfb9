import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { startDevServer, type DevServerOptions } from '../temporal/dev-server';
import { restartDelay } from './supervisor';

/** How long the dev server gets to stop on SIGTERM before its process group is killed. */
const STOP_GRACE_MS = 15_000;

/**
 * The Temporal dev server that `npm run up` starts first and stops last. One that exits while `up`
 * runs is logged as an error and started again on the same SQLite file, so workflows go on where they
 * were, as the supervisor does for the services (a server that keeps dying waits longer each time, up
 * to 10 s). If it cannot be started again (its port taken meanwhile, the binary gone), `onFailure`
 * gets the reason, and `up` stops.
 */
export class OwnTemporal {
  private child: ChildProcess | undefined;
  private starting: Promise<void> | undefined;
  private restart: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly options: DevServerOptions,
    private readonly logger: Logger,
    private readonly onFailure: (err: Error) => void,
  ) {}

  /** Starts it and resolves when its ports answer; rejects as startDevServer does. */
  start(restartDelayMs = 500): Promise<void> {
    this.starting = this.startOnce(restartDelayMs);
    return this.starting;
  }

  private async startOnce(restartDelayMs: number): Promise<void> {
    const child = await startDevServer(this.options);
    this.child = child;
    const startedAt = Date.now();
    this.logger.info({ pid: child.pid }, 'Temporal dev server started');
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      const delay = restartDelay(startedAt, restartDelayMs);
      this.logger.error(
        { code, signal, restartInMs: delay },
        'Temporal dev server exited; the workers cannot reach Temporal until it is started again',
      );
      this.restart = setTimeout(() => {
        this.restart = undefined;
        this.start(delay).catch((err: Error) => {
          if (!this.stopping) this.onFailure(err);
        });
      }, delay);
    });
  }

  /** Stops it (SIGTERM, then SIGKILL to its group after a grace period), a start in progress included. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restart);
    await this.starting?.catch(() => undefined);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.logger.warn('Temporal dev server did not stop in time; killing it');
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }, STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    this.logger.info('Temporal dev server stopped');
  }
}
