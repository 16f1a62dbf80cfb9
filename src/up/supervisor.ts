import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { parentDeathPrefix } from '../process/parent-death-signal';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** Children die with the supervisor, even when it is killed with SIGKILL. */
const PDEATHSIG = parentDeathPrefix('TERM');
const MAX_RESTART_DELAY_MS = 10_000;
/** A process that ran this long before it exited was up, not failing to start. */
const RAN_MS = 30_000;
/**
 * Exits in a row, each sooner than RAN_MS after its start, that make a service given up on: about
 * 20 s of restarts with the backoff below. Such a service fails for a reason a restart does not cure
 * (a bad setting, a port another program holds).
 */
export const QUICK_EXITS_TO_GIVE_UP = 5;

/**
 * How long to wait before starting again a process that was started at `startedAt` and has exited: a
 * process that ran for a while gets a fresh backoff; one that keeps dying waits longer each time.
 */
export const restartDelay = (startedAt: number, previousMs: number): number =>
  Date.now() - startedAt > RAN_MS ? 500 : Math.min(previousMs * 2, MAX_RESTART_DELAY_MS);

/**
 * Runs a set of processes, each in its own process group (so a terminal's Ctrl-C reaches only the
 * supervisor, which then stops them in order), restarts one that dies with growing backoff, and stops
 * them all on request: SIGTERM, then SIGKILL after a grace period. A service that keeps exiting soon
 * after its start (QUICK_EXITS_TO_GIVE_UP times in a row) is not started again: `onGiveUp` gets why.
 */
export class Supervisor {
  private readonly running = new Map<string, ChildProcess>();
  private readonly restarts = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(
    private readonly logger: Logger,
    private readonly onGiveUp: (err: Error) => void,
  ) {}

  /**
   * Starts a service; once `stop` has been called, does nothing (a stop during start-up starts no more).
   * `restartDelayMs` and `quickExits` carry the backoff and the count of quick exits across restarts.
   */
  start(spec: ServiceSpec, restartDelayMs = 500, quickExits = 0): void {
    if (this.stopping) return;
    const argv = [...PDEATHSIG, spec.command, ...spec.args];
    const startedAt = Date.now();
    let ended = false;
    /** Once per start: a process that exited, or one that could not be started (counted as a quick exit). */
    const end = (code: number | null, signal: NodeJS.Signals | null, failure?: Error): void => {
      if (ended) return;
      ended = true;
      if (this.running.get(spec.name) === child) this.running.delete(spec.name);
      if (this.stopping) {
        this.logger.info({ service: spec.name, code, signal }, 'service stopped');
        return;
      }
      const exits = Date.now() - startedAt < RAN_MS ? quickExits + 1 : 0;
      const how = failure ? `could not be started: ${failure.message}` : `exited (${code ?? signal})`;
      if (exits >= QUICK_EXITS_TO_GIVE_UP) {
        const err = new Error(
          `${spec.name} ended ${exits} times in a row, each within ${RAN_MS / 1000} s of its start ` +
            `(last: ${how}); not starting it again: its output above says why`,
        );
        this.logger.error({ service: spec.name, code, signal }, err.message);
        this.onGiveUp(err);
        return;
      }
      const delay = restartDelay(startedAt, restartDelayMs);
      this.logger.warn({ service: spec.name, code, signal, restartInMs: delay }, `service ${how}; restarting`);
      const timer = setTimeout(() => {
        this.restarts.delete(timer);
        this.start(spec, delay, exits);
      }, delay);
      this.restarts.add(timer);
    };
    let child: ChildProcess | undefined;
    try {
      child = spawn(argv[0] as string, argv.slice(1), { env: spec.env, stdio: 'inherit', detached: true });
    } catch (err) {
      // Out of memory or of process slots, thrown rather than emitted: backed off like any other failure.
      end(null, null, err as Error);
      return;
    }
    this.running.set(spec.name, child);
    this.logger.info({ service: spec.name, pid: child.pid }, 'service started');
    child.once('error', (err) => end(null, null, err));
    child.once('exit', (code, signal) => end(code, signal));
  }

  pid(name: string): number | undefined {
    return this.running.get(name)?.pid;
  }

  /** Stops the named services (all, by default) and resolves when every one has exited. */
  async stop(graceMs: number, names = [...this.running.keys()]): Promise<void> {
    this.stopping = true;
    // A pending restart would hold the process open until it fired, and then start nothing.
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    await Promise.all(
      names.map(async (name) => {
        const child = this.running.get(name);
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          this.logger.warn({ service: name }, 'service did not stop in time; killing');
          if (child.pid !== undefined) {
            try {
              process.kill(-child.pid, 'SIGKILL');
            } catch {
              child.kill('SIGKILL');
            }
          }
        }, graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
