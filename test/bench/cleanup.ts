import { constants } from 'node:os';
import { withinDeadline } from '../../src/async/within-deadline';
import { STOP_SIGNALS } from '../../src/process/stop-signals';

/** The most one cleanup may take on a stop signal before the next one runs. */
const CLEANUP_DEADLINE_MS = 60_000;

/** What the benchmark has started and not stopped yet, in the order started. */
const pending: { what: string; run: () => Promise<void> }[] = [];

/**
 * Registers the stopping of something just started (the stack, the services, a scratch directory), to
 * be done on a stop signal. Returns the stop for the normal path: it runs once, whichever asks first.
 */
export function stopLater(what: string, stop: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const entry = {
    what,
    run: () => {
      const index = pending.indexOf(entry);
      if (index >= 0) pending.splice(index, 1);
      done ??= stop();
      return done;
    },
  };
  pending.push(entry);
  return entry.run;
}

/**
 * On SIGINT, SIGTERM or SIGHUP: stops what is still running, last started first, each within a
 * deadline, then exits as the signal would have (128 + its number). Without it, the `up` process, its
 * services, the dev server, the benchmark's database and its temporary directories would outlive a
 * stopped benchmark. A SIGKILL leaves no such chance: `up` and the dev server are then stopped by
 * their parent-death signal, and the database and directories stay.
 */
export function stopAllOnSignals(): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`bench: ${signal}: already stopping\n`);
      return;
    }
    stopping = true;
    process.stderr.write(`bench: ${signal}: stopping what the benchmark started\n`);
    void (async () => {
      for (const entry of [...pending].reverse()) {
        await withinDeadline(entry.run(), CLEANUP_DEADLINE_MS, `stopping ${entry.what}`).catch((err: unknown) =>
          process.stderr.write(`bench: ${(err as Error).message}\n`),
        );
      }
      process.exit(128 + constants.signals[signal]);
    })();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
}
