import type { Logger } from 'pino';

/** What asks a process to stop: Ctrl-C, `kill` or an orchestrator, and a closed terminal or SSH session. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Aborts `stop` (its reason: the signal's name) on the first stop signal, and logs the ones after it.
 * The listeners stay for good: with none left, Node's default action would kill the process in the
 * middle of its ordered stop, a worker's running agents with it. One stop can bring several signals:
 * a terminal's Ctrl-C reaches the whole process group, and npm passes on the SIGINT it got too.
 * Repeats are ignored, not escalated: a drain is bounded by ATELIER_SHUTDOWN_GRACE_SECONDS anyway.
 */
export function abortOnStopSignals(stop: AbortController, logger: Logger): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      logger.info({ signal }, 'already stopping; signal ignored');
      return;
    }
    logger.info({ signal }, 'stopping');
    stop.abort(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
}
