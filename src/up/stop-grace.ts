import type { AgentsFile } from '../config/agents-file';

/** For what follows an agent's kill: its attempt recorded, the worker's connections closed. */
const MARGIN_SECONDS = 10;

/**
 * How long `up` lets a service stop before it kills its process group. The agent worker takes the
 * longest: it lets running agents finish for `shutdownGraceSeconds`, then stops each one left with
 * TERM, and KILL only after its profile's `killGraceSeconds`. Killing the worker sooner would kill its
 * agents mid-stop and leave their attempts unrecorded.
 */
export function serviceStopGraceMs(shutdownGraceSeconds: number, agents: AgentsFile): number {
  const killGraceSeconds = Math.max(0, ...Object.values(agents.agents).map((p) => p.killGraceSeconds));
  return (shutdownGraceSeconds + killGraceSeconds + MARGIN_SECONDS) * 1000;
}
