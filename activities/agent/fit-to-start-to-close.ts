/**
 * Kept at the end of an attempt's start-to-close timeout for what follows its agent's KILL: the drain
 * of its output (3 s when a process that left the agent's group holds it) and the attempt's records.
 * A quarter of what is left, when that is less: a start-to-close timeout Temporal cut short to the
 * workflow's own deadline must still leave the agent most of it.
 */
export const FINAL_WRITES_MS = 10_000;

/** Of the kill grace, what a cut time limit still leaves the agent to shut down cleanly on its TERM. */
const KEPT_GRACE_MS = 2_000;

/** How long an agent may run, and how long it may take to go once stopped. */
export interface StopLimits {
  /** The agent's own time limit, from its start. */
  timeoutMs: number;
  /** Between its TERM and its KILL. */
  killGraceMs: number;
}

/**
 * `wanted`, cut to fit in `leftMs`, what is left of the attempt's start-to-close timeout, less the
 * time kept for the final writes (FINAL_WRITES_MS). Once that timeout passes, Temporal runs the next
 * attempt (or the chain's next agent) in the same workdir whether or not this agent still runs, so the
 * agent's process group must have had its KILL by then. The kill grace is cut first (the timeout's
 * margin is there for it, and only a long grace overruns it), then the time limit (left short by a
 * long wait for a slot, or by the workflow's own run timeout), which keeps up to KEPT_GRACE_MS of the
 * grace.
 */
export function fitToStartToClose(wanted: StopLimits, leftMs: number): StopLimits {
  const usable = leftMs - Math.min(FINAL_WRITES_MS, leftMs / 4);
  const timeoutMs = Math.max(0, Math.min(wanted.timeoutMs, usable - Math.min(wanted.killGraceMs, KEPT_GRACE_MS)));
  return { timeoutMs, killGraceMs: Math.max(0, Math.min(wanted.killGraceMs, usable - timeoutMs)) };
}
