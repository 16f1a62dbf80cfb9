import { DEATH_DEADLINE_MS } from '../../activities/agent/agent-spawner';
import type { AgentsFile } from '../config/agents-file';
import { TRANSIENT_RETRY_MS } from '../db/transient';
import { CLEANUP_DEADLINE_MS } from '../workers/run-worker-process';

/**
 * What a worker may still take once its drain ends, in seconds, besides its agents' kill grace: a killed
 * agent's time to die and the write of its attempt's end through a slow database (agent workers), then
 * the process's final cleanup (every worker), and 5 s spare. The deployment files give as much
 * (test/unit/infra-manifests.test.ts).
 */
export const STOP_MARGIN_SECONDS = (DEATH_DEADLINE_MS + TRANSIENT_RETRY_MS + CLEANUP_DEADLINE_MS) / 1000 + 5;

/**
 * How long `up` lets a service stop before it kills its process group. The agent worker takes the
 * longest: it lets running agents finish for `shutdownGraceSeconds`, then stops each one left with
 * TERM, and KILL only after its profile's `killGraceSeconds`. Killing the worker sooner would kill its
 * agents mid-stop and leave their attempts unrecorded.
 */
export function serviceStopGraceMs(shutdownGraceSeconds: number, agents: AgentsFile): number {
  const killGraceSeconds = Math.max(0, ...Object.values(agents.agents).map((p) => p.killGraceSeconds));
  return (shutdownGraceSeconds + killGraceSeconds + STOP_MARGIN_SECONDS) * 1000;
}
