import { status } from '@grpc/grpc-js';
import { FRESH_START_MS } from '../../activities/agent/agent.activities';
import type { CutOff } from '../../activities/agent/run-process';
import { AGENT_HEARTBEAT_TIMEOUT_SECONDS } from '../../workflows/definitions';

/** How often the agent worker asks Temporal whether it still answers. */
const PROBE_INTERVAL_MS = 1000;
/** How long one probe may take before it counts as unanswered. */
const PROBE_TIMEOUT_MS = 2000;
/** Probes may hang on a dead line (the SDK retries them); no more than these are left waiting. */
const PROBES_IN_FLIGHT = 2;
/** How often the time since the last answer is looked at. */
const CHECK_INTERVAL_MS = 250;
/** A check this late means the process itself stood still (an event-loop stall), not the line. */
const STALL_MS = 1000;
/**
 * How much older than the last answered probe Temporal's last heartbeat of a running agent may be: an
 * agent starts at most `FRESH_START_MS` after its attempt's start or last heartbeat, then heartbeats
 * every 2 s (agent-worker.ts), and the SDK sends each within a second.
 */
const HEARTBEAT_LAG_MS = FRESH_START_MS + 2000 + 1000;
/**
 * Temporal takes an attempt for lost `AGENT_HEARTBEAT_TIMEOUT_SECONDS` after the last heartbeat it
 * got, and that heartbeat may be up to `HEARTBEAT_LAG_MS` older than the last answered probe: a cut-off
 * worker's agents must be dead by then, with half a second to spare, so that the next attempt does not
 * run beside them.
 */
export const CUT_OFF_KILL_BY_MS = AGENT_HEARTBEAT_TIMEOUT_SECONDS * 1000 - HEARTBEAT_LAG_MS - 500;
/** Unanswered for this long, the worker stops its agents (a Temporal restart of a few seconds is not a cut). */
export const CUT_OFF_AFTER_MS = CUT_OFF_KILL_BY_MS - 1250;

/**
 * gRPC codes only a server sends: such an error is an answer. Anything else (no answer in time, no
 * connection, a transport error) counts as silence.
 */
const ANSWERS = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
  status.FAILED_PRECONDITION,
  status.UNIMPLEMENTED,
  status.UNAUTHENTICATED,
]);
const isAnswer = (err: unknown): boolean =>
  typeof (err as { code?: unknown })?.code === 'number' && ANSWERS.has((err as { code: number }).code);

/**
 * Whether this agent worker process still reaches Temporal. A worker cut off from Temporal (a network
 * partition, a frozen route) but otherwise alive would keep its agents running after Temporal has
 * taken their attempts for lost and started the next ones elsewhere: two agents on one task. So the
 * worker probes Temporal over its own connection every second, and when no probe has been answered for
 * `CUT_OFF_AFTER_MS` it aborts `signal`, which stops every agent it runs (run-process.ts). Contact
 * back, a new signal serves the next attempts.
 */
export class TemporalContact implements CutOff {
  private reachedAt: number;
  private cut = new AbortController();
  private probeTimer: NodeJS.Timeout | undefined;
  private checker: NodeJS.Timeout | undefined;
  private checkedAt: number;
  private inFlight = 0;
  private stopped = true;

  /**
   * `probe(deadline)` asks Temporal something cheap, giving up at `deadline` (epoch ms); `now` is a
   * monotonic clock (ms), so that a step of the wall clock neither cuts nor stretches anything.
   */
  constructor(
    private readonly probe: (deadline: number) => Promise<unknown>,
    private readonly onChange: (event: 'cut_off' | 'back', silentMs: number) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.reachedAt = this.checkedAt = now();
  }

  get signal(): AbortSignal {
    return this.cut.signal;
  }

  killGraceMs(): number {
    return Math.max(0, this.reachedAt + CUT_OFF_KILL_BY_MS - this.now());
  }

  /** For an attempt that arrives while cut off (its arrival hints that the line is back): asks once more. */
  async confirm(): Promise<void> {
    if (this.cut.signal.aborted) await this.probeOnce();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.reachedAt = this.checkedAt = this.now();
    this.checker = setInterval(() => this.check(), CHECK_INTERVAL_MS);
    this.checker.unref();
    this.probeLoop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.probeTimer);
    clearInterval(this.checker);
  }

  private check(): void {
    const now = this.now();
    const stalled = now - this.checkedAt > CHECK_INTERVAL_MS + STALL_MS;
    this.checkedAt = now;
    // After a stall the answers that came meanwhile are still queued behind this check: wait for them.
    if (stalled) return;
    const silentMs = now - this.reachedAt;
    if (silentMs < CUT_OFF_AFTER_MS || this.cut.signal.aborted) return;
    this.cut.abort(new Error(`cut off from Temporal for ${Math.round(silentMs)} ms`));
    this.onChange('cut_off', silentMs);
  }

  private probeLoop(): void {
    if (this.stopped) return;
    if (this.inFlight < PROBES_IN_FLIGHT) void this.probeOnce();
    this.probeTimer = setTimeout(() => this.probeLoop(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private async probeOnce(): Promise<void> {
    const sentAt = this.now();
    this.inFlight += 1;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in time')), PROBE_TIMEOUT_MS);
    });
    const asked = this.probe(Date.now() + PROBE_TIMEOUT_MS);
    asked.finally(() => (this.inFlight -= 1)).catch(() => undefined);
    try {
      await Promise.race([asked, giveUp]);
      this.answered(sentAt);
    } catch (err) {
      if (isAnswer(err)) this.answered(sentAt);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Temporal answered a probe sent at `sentAt`: it heard from this worker then, at least. */
  private answered(sentAt: number): void {
    this.reachedAt = Math.max(this.reachedAt, sentAt);
    const silentMs = this.now() - this.reachedAt;
    // A late answer to an old probe is no contact now.
    if (!this.cut.signal.aborted || silentMs >= CUT_OFF_AFTER_MS) return;
    this.cut = new AbortController();
    this.onChange('back', silentMs);
  }
}
