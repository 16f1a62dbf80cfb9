import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { DevServerStartCancelled, startDevServer, stopDevServer, type DevServerOptions } from '../temporal/dev-server';
import { restartDelay } from './supervisor';

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
  /** Aborted by stop(): it ends a start in progress, a restart's included. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly options: DevServerOptions,
    private readonly logger: Logger,
    private readonly onFailure: (err: Error) => void,
  ) {}

  /**
   * Starts it and resolves when its ports answer; rejects as startDevServer does. `cancel` ends the
   * start as stop() does: the server is stopped, and the start rejects with DevServerStartCancelled.
   */
  start(cancel?: AbortSignal, restartDelayMs = 500): Promise<void> {
    const until = cancel ? AbortSignal.any([cancel, this.stopping.signal]) : this.stopping.signal;
    this.starting = this.startOnce(until, restartDelayMs);
    return this.starting;
  }

  private async startOnce(cancel: AbortSignal, restartDelayMs: number): Promise<void> {
    const child = await startDevServer(this.options, 'inherit', cancel).catch((err: unknown) => {
      if (err instanceof DevServerStartCancelled) {
        this.logger.info({ killed: err.killed }, 'Temporal dev server stopped while starting');
      }
      throw err;
    });
    this.child = child;
    const startedAt = Date.now();
    this.logger.info({ pid: child.pid }, 'Temporal dev server started');
    child.once('exit', (code, signal) => {
      if (this.stopping.signal.aborted) return;
      const delay = restartDelay(startedAt, restartDelayMs);
      this.logger.error(
        { code, signal, restartInMs: delay },
        'Temporal dev server exited; the workers cannot reach Temporal until it is started again',
      );
      this.restart = setTimeout(() => {
        this.restart = undefined;
        this.start(undefined, delay).catch((err: Error) => {
          if (!this.stopping.signal.aborted) this.onFailure(err);
        });
      }, delay);
    });
  }

  /** Stops it (SIGTERM, then SIGKILL to its group after a grace period), a start in progress included. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.restart);
    await this.starting?.catch(() => undefined);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if ((await stopDevServer(child)) === 'killed') {
      this.logger.warn('Temporal dev server did not stop in time; killed it');
    }
    this.logger.info('Temporal dev server stopped');
  }
}
